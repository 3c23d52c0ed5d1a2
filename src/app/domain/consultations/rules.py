"""The pure rules of consultations: what a valid slot, slot rule, topic or reason is; how long a held place lasts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec

from app.domain.accounts.models import Profile
from app.domain.consultations.models import ConsultationSlot, Course
from app.lib.i18n import gettext as _
from app.lib.text import control_character_problem

MAX_CAPACITY = 500
MAX_RANGE_DAYS = 366
MAX_SLOT_LENGTH = timedelta(hours=12)
TIME_PATTERN = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
URL_PATTERN = re.compile(r"^https?://[^\s]+$")
TEXT_LIMITS = {"location": 200, "meeting_url": 500, "title": 200, "notes": 5000, "topic": 500, "reason": 1000}
TEXT_FIELDS = ("location", "meeting_url", "title", "notes")
MULTILINE_FIELDS = frozenset({"notes", "topic", "reason"})
FEEDBACK_EDIT_WINDOW = timedelta(days=7)
MIN_RATINGS_SHOWN = 3
# A freed place is held at least this long (unless the slot starts sooner), at most the professor's hold time.
MIN_HOLD = timedelta(minutes=10)
MAX_WAIT_WINDOW = timedelta(days=14)


def text_problems(values: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name, limit in TEXT_LIMITS.items():
        if name in values and len(str(values[name])) > limit:
            errors[name] = _("Use at most %(limit)s characters.", limit=limit)
        elif problem := control_character_problem(values.get(name), multiline=name in MULTILINE_FIELDS):
            errors[name] = problem
    url = values.get("meeting_url")
    if url and not URL_PATTERN.match(str(url)):
        errors["meeting_url"] = _("Enter a link starting with http:// or https://")
    return errors


def time_problems(start: Any, end: Any, *, now: datetime) -> dict[str, str]:
    """Aware timestamps only (a naive one has no meaning across time zones), end after start, start ahead."""
    errors: dict[str, str] = {}
    for name, value in (("start_time", start), ("end_time", end)):
        if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
            errors[name] = _("Give a timestamp with a UTC offset, e.g. 2026-12-01T10:00:00+01:00.")
    if errors:
        return errors
    if end <= start:
        errors["end_time"] = _("The end must be after the start.")
    elif end - start > MAX_SLOT_LENGTH:
        errors["end_time"] = _("A slot lasts at most 12 hours.")
    if start <= now:
        errors["start_time"] = _("The slot must start in the future.")
    return errors


def capacity_problem(capacity: Any) -> str | None:
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= MAX_CAPACITY:
        return _("Capacity must be a whole number from 1 to %(most)s.", most=MAX_CAPACITY)
    return None


def overlaps(start: datetime, end: datetime, other_start: datetime, other_end: datetime) -> bool:
    return start < other_end and other_start < end


def hold_until(slot: ConsultationSlot, profile: Profile, now: datetime) -> datetime:
    """The professor's hold window, shorter when the slot is near: never past half the time left."""
    hold = timedelta(minutes=profile.waitlist_hold_minutes)
    return now + max(min(hold, (slot.start_time - now) / 2), min(MIN_HOLD, slot.start_time - now))


class SlotRule(msgspec.Struct, forbid_unknown_fields=True):
    """Many slots at once, in the professor's time zone. Weekdays: 0 = Monday .. 6 = Sunday.

    The one definition of a slot rule: the API's body, the dashboard's generator form and the service all use it.
    """

    start_date: date
    end_date: date
    weekdays: list[int]
    day_start: str
    day_end: str
    duration_minutes: int
    buffer_minutes: int = 0
    capacity: int = 1
    location: str = ""
    meeting_url: str = ""
    title: str = ""
    notes: str = ""
    course_ids: list[UUID] = msgspec.field(default_factory=list)  # reserve the slots for these courses' students

    def problems(self) -> dict[str, str]:
        errors = text_problems(
            {"location": self.location, "meeting_url": self.meeting_url, "title": self.title, "notes": self.notes}
        )
        if self.end_date < self.start_date:
            errors["end_date"] = _("The end date must not be before the start date.")
        elif (self.end_date - self.start_date).days >= MAX_RANGE_DAYS:
            errors["end_date"] = _("Generate at most one year of slots at once.")
        if not self.weekdays:
            errors["weekdays"] = _("Pick at least one weekday.")
        elif any(not isinstance(day, int) or not 0 <= day <= 6 for day in self.weekdays):
            errors["weekdays"] = _("Weekdays are numbers from 0 (Monday) to 6 (Sunday).")
        for name in ("day_start", "day_end"):
            if not TIME_PATTERN.match(getattr(self, name)):
                errors[name] = _("Use HH:MM, e.g. 09:30.")
        if not 5 <= self.duration_minutes <= 480:
            errors["duration_minutes"] = _("A slot lasts from 5 to 480 minutes.")
        if not 0 <= self.buffer_minutes <= 240:
            errors["buffer_minutes"] = _("The buffer is from 0 to 240 minutes.")
        if problem := capacity_problem(self.capacity):
            errors["capacity"] = problem
        if not errors:
            window = _minutes(self.day_end) - _minutes(self.day_start)
            if window <= 0:
                errors["day_end"] = _("The daily window must end after it starts.")
            elif self.duration_minutes > window:
                errors["duration_minutes"] = _("The slot length does not fit in the daily window.")
        return errors

    def local_times(self, timezone: str) -> list[tuple[datetime, datetime]]:
        """(start, end) in UTC for every slot the rule makes; a 10:00 slot stays 10:00 local across DST."""
        zone = ZoneInfo(timezone)
        length = timedelta(minutes=self.duration_minutes)
        step = length + timedelta(minutes=self.buffer_minutes)
        day_start, day_end = _parse_time(self.day_start), _parse_time(self.day_end)
        times: list[tuple[datetime, datetime]] = []
        day = self.start_date
        while day <= self.end_date:
            if day.weekday() in self.weekdays:
                cursor, closing = datetime.combine(day, day_start), datetime.combine(day, day_end)
                while cursor + length <= closing:
                    start, end = _aware(cursor, zone), _aware(cursor + length, zone)
                    if start is not None and end is not None:  # None: the clock skips this time (spring forward)
                        times.append((start.astimezone(UTC), end.astimezone(UTC)))
                    cursor += step
            day += timedelta(days=1)
        return times


def _minutes(value: str) -> int:
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _parse_time(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _aware(local: datetime, zone: ZoneInfo) -> datetime | None:
    aware = local.replace(tzinfo=zone)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local:
        return None
    return aware


@dataclass
class BulkResult:
    """What a slot rule makes: created (or, in a preview, free) times and those skipped, with why."""

    created: list[ConsultationSlot] = field(default_factory=list)
    clashes: list[tuple[datetime, datetime, ConsultationSlot]] = field(default_factory=list)
    skipped_past: list[datetime] = field(default_factory=list)
    busy: list[tuple[datetime, datetime]] = field(default_factory=list)  # collide with the professor's calendar
    free: list[tuple[datetime, datetime]] = field(default_factory=list)  # would be (or were) created
    courses: list[Course] = field(default_factory=list)  # the slots are reserved for these courses' students
