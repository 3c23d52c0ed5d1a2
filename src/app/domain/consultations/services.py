"""Every rule about slots and bookings. Capacity is decided under a row lock on the slot."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from uuid import UUID
from zoneinfo import ZoneInfo

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import ModelDictT, SQLAlchemyAsyncRepositoryService, is_dict
from sqlalchemy import ColumnElement, func, or_, select, update

from app.domain.accounts.models import Profile, User
from app.domain.consultations.models import (
    ACTIVE_BOOKING_STATUSES,
    Booking,
    BookingStatus,
    ConsultationNote,
    ConsultationSlot,
    SlotStatus,
)
from app.domain.notifications.services import NotificationKind, NotificationService
from app.lib.errors import INTEGRITY_ERRORS, ConflictError, FieldErrors, Forbidden, NotFound
from app.lib.live import announce
from app.lib.transactions import commit

MAX_CAPACITY = 500
MAX_RANGE_DAYS = 366
TIME_PATTERN = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
URL_PATTERN = re.compile(r"^https?://[^\s]+$")
TEXT_LIMITS = {"location": 200, "meeting_url": 500, "title": 200, "notes": 5000, "topic": 500, "reason": 1000}
ACTIVE = tuple(status.value for status in ACTIVE_BOOKING_STATUSES)
TEXT_FIELDS = ("location", "meeting_url", "title", "notes")


def utcnow() -> datetime:
    return datetime.now(UTC)


def describe_time(start: datetime, end: datetime, timezone: str) -> str:
    zone = ZoneInfo(timezone)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    return f"{local_start:%a %d %b %Y, %H:%M}–{local_end:%H:%M} ({timezone})"


def text_problems(values: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name, limit in TEXT_LIMITS.items():
        if name in values and len(str(values[name])) > limit:
            errors[name] = f"Use at most {limit} characters."
    url = values.get("meeting_url")
    if url and not URL_PATTERN.match(str(url)):
        errors["meeting_url"] = "Enter a link starting with http:// or https://"
    return errors


def time_problems(start: Any, end: Any, *, now: datetime) -> dict[str, str]:
    """Aware timestamps only (a naive one has no meaning across time zones), end after start, start ahead."""
    errors: dict[str, str] = {}
    for name, value in (("start_time", start), ("end_time", end)):
        if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
            errors[name] = "Give a timestamp with a UTC offset, e.g. 2026-12-01T10:00:00+01:00."
    if errors:
        return errors
    if end <= start:
        errors["end_time"] = "The end must be after the start."
    elif end - start > timedelta(hours=12):
        errors["end_time"] = "A slot lasts at most 12 hours."
    if start <= now:
        errors["start_time"] = "The slot must start in the future."
    return errors


def capacity_problem(capacity: Any) -> str | None:
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= MAX_CAPACITY:
        return f"Capacity must be a whole number from 1 to {MAX_CAPACITY}."
    return None


@dataclass(frozen=True)
class SlotRule:
    """Many slots at once, in the professor's time zone. Weekdays: 0 = Monday .. 6 = Sunday."""

    start_date: date
    end_date: date
    weekdays: Sequence[int]
    day_start: str
    day_end: str
    duration_minutes: int
    buffer_minutes: int = 0
    capacity: int = 1
    location: str = ""
    meeting_url: str = ""
    title: str = ""
    notes: str = ""

    def problems(self) -> dict[str, str]:
        errors = text_problems(
            {"location": self.location, "meeting_url": self.meeting_url, "title": self.title, "notes": self.notes}
        )
        if self.end_date < self.start_date:
            errors["end_date"] = "The end date must not be before the start date."
        elif (self.end_date - self.start_date).days >= MAX_RANGE_DAYS:
            errors["end_date"] = "Generate at most one year of slots at once."
        if not self.weekdays:
            errors["weekdays"] = "Pick at least one weekday."
        elif any(not isinstance(day, int) or not 0 <= day <= 6 for day in self.weekdays):
            errors["weekdays"] = "Weekdays are numbers from 0 (Monday) to 6 (Sunday)."
        for name in ("day_start", "day_end"):
            if not TIME_PATTERN.match(getattr(self, name)):
                errors[name] = "Use HH:MM, e.g. 09:30."
        if not 5 <= self.duration_minutes <= 480:
            errors["duration_minutes"] = "A slot lasts from 5 to 480 minutes."
        if not 0 <= self.buffer_minutes <= 240:
            errors["buffer_minutes"] = "The buffer is from 0 to 240 minutes."
        if problem := capacity_problem(self.capacity):
            errors["capacity"] = problem
        if not errors:
            window = _minutes(self.day_end) - _minutes(self.day_start)
            if window <= 0:
                errors["day_end"] = "The daily window must end after it starts."
            elif self.duration_minutes > window:
                errors["duration_minutes"] = "The slot length does not fit in the daily window."
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
    created: list[ConsultationSlot] = field(default_factory=list)
    clashes: list[tuple[datetime, datetime, ConsultationSlot]] = field(default_factory=list)
    skipped_past: list[datetime] = field(default_factory=list)
    busy: list[tuple[datetime, datetime]] = field(default_factory=list)  # collide with the professor's calendar
    free: list[tuple[datetime, datetime]] = field(default_factory=list)  # would be (or were) created


def overlaps(start: datetime, end: datetime, other_start: datetime, other_end: datetime) -> bool:
    return start < other_end and other_start < end


class SlotService(SQLAlchemyAsyncRepositoryService[ConsultationSlot]):
    class Repository(SQLAlchemyAsyncRepository[ConsultationSlot]):
        model_type = ConsultationSlot

    repository_type = Repository

    async def to_model_on_create(self, data: ModelDictT[ConsultationSlot]) -> ModelDictT[ConsultationSlot]:
        if is_dict(data):
            data = {**data, "status": SlotStatus.AVAILABLE.value}
        return data

    # -- reading -------------------------------------------------------------------------------------

    async def booked_counts(self, slot_ids: Iterable[UUID]) -> dict[UUID, int]:
        ids = list(slot_ids)
        if not ids:
            return {}
        query = (
            select(Booking.slot_id, func.count())
            .where(Booking.slot_id.in_(ids), Booking.status.in_(ACTIVE))
            .group_by(Booking.slot_id)
        )
        return {slot_id: count for slot_id, count in (await self.repository.session.execute(query)).all()}

    async def hold_counts(self, slot_ids: Iterable[UUID]) -> dict[UUID, int]:
        """Places held for waitlisted students: taken, like bookings, until accepted or expired."""
        ids = list(slot_ids)
        if not ids:
            return {}
        from app.domain.waitlist.models import WaitlistEntry, WaitlistStatus

        query = (
            select(WaitlistEntry.offered_slot_id, func.count())
            .where(
                WaitlistEntry.offered_slot_id.in_(ids),
                WaitlistEntry.status == WaitlistStatus.OFFERED.value,
                WaitlistEntry.hold_expires_at > utcnow(),
            )
            .group_by(WaitlistEntry.offered_slot_id)
        )
        return {slot_id: count for slot_id, count in (await self.repository.session.execute(query)).all()}

    async def list_slots(
        self,
        *,
        professor_id: UUID | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[ConsultationSlot], int]:
        filters: list[ColumnElement[bool]] = []
        if professor_id is not None:
            filters.append(ConsultationSlot.professor_id == professor_id)
        if start is not None:
            filters.append(ConsultationSlot.end_time > start)
        if end is not None:
            filters.append(ConsultationSlot.start_time < end)
        if status is not None:
            filters.append(ConsultationSlot.status == status)
        query = select(ConsultationSlot).where(*filters).order_by(ConsultationSlot.start_time)
        total = await self.repository.session.scalar(select(func.count()).select_from(ConsultationSlot).where(*filters))
        rows = (await self.repository.session.scalars(query.limit(limit).offset(offset))).unique().all()
        return list(rows), int(total or 0)

    async def get_owned(self, professor_id: UUID, slot_id: UUID, *, lock: bool = False) -> ConsultationSlot:
        """The professor's own slot, or NotFound (someone else's slot reads as missing)."""
        query = select(ConsultationSlot).where(
            ConsultationSlot.id == slot_id, ConsultationSlot.professor_id == professor_id
        )
        if lock:
            query = query.with_for_update(of=ConsultationSlot)
        slot: ConsultationSlot | None = (await self.repository.session.scalars(query)).unique().one_or_none()
        if slot is None:
            raise NotFound("Slot not found.")
        return slot

    async def find_clash(
        self, professor_id: UUID, start: datetime, end: datetime, exclude: UUID | None = None
    ) -> ConsultationSlot | None:
        query = select(ConsultationSlot).where(
            ConsultationSlot.professor_id == professor_id,
            ConsultationSlot.status != SlotStatus.CANCELLED.value,
            ConsultationSlot.start_time < end,
            ConsultationSlot.end_time > start,
        )
        if exclude is not None:
            query = query.where(ConsultationSlot.id != exclude)
        clash: ConsultationSlot | None = (await self.repository.session.scalars(query.limit(1))).unique().first()
        return clash

    # -- writing -------------------------------------------------------------------------------------

    async def create_slot(self, professor: User, data: dict[str, Any]) -> ConsultationSlot:
        errors = time_problems(data.get("start_time"), data.get("end_time"), now=utcnow())
        errors |= text_problems(data)
        if problem := capacity_problem(data.get("capacity", 1)):
            errors["capacity"] = problem
        if errors:
            raise FieldErrors(errors)
        start, end = data["start_time"].astimezone(UTC), data["end_time"].astimezone(UTC)
        if clash := await self.find_clash(professor.id, start, end):
            raise ConflictError(self._clash_message(clash, professor.timezone))
        values = {name: data[name] for name in ("capacity", *TEXT_FIELDS) if name in data}
        try:
            slot = await self.create({**values, "professor_id": professor.id, "start_time": start, "end_time": end})
            await announce(self.repository.session, "slots_added", professor.id, slot.id)
            await commit(self.repository.session)
        except INTEGRITY_ERRORS as exc:  # a concurrent request took the time first
            await self.repository.session.rollback()
            raise ConflictError("This time overlaps another of your slots.") from exc
        return slot

    @staticmethod
    def _clash_message(clash: ConsultationSlot, timezone: str) -> str:
        return f"This time overlaps your slot on {describe_time(clash.start_time, clash.end_time, timezone)}."

    async def plan_slots(
        self,
        professor: User,
        rule: SlotRule,
        busy_periods: Sequence[tuple[datetime, datetime]] = (),
        *,
        keep_busy: bool = False,
    ) -> BulkResult:
        """What a rule would create: free times, and those skipped as past, clashing or busy in the calendar."""
        if errors := rule.problems():
            raise FieldErrors(errors)
        now = utcnow()
        result = BulkResult()
        candidates = []
        for start, end in rule.local_times(professor.timezone):
            if start <= now:
                result.skipped_past.append(start)
            else:
                candidates.append((start, end))
        if not candidates:
            return result
        existing, _ = await self.list_slots(
            professor_id=professor.id, start=candidates[0][0], end=candidates[-1][1], limit=100_000
        )
        existing = [slot for slot in existing if slot.status != SlotStatus.CANCELLED]
        for start, end in candidates:
            clash = next((slot for slot in existing if overlaps(start, end, slot.start_time, slot.end_time)), None)
            if clash is not None:
                result.clashes.append((start, end, clash))
            elif not keep_busy and any(overlaps(start, end, b_start, b_end) for b_start, b_end in busy_periods):
                result.busy.append((start, end))
            else:
                result.free.append((start, end))
        return result

    async def generate_slots(
        self,
        professor: User,
        rule: SlotRule,
        *,
        all_or_nothing: bool = False,
        busy_periods: Sequence[tuple[datetime, datetime]] = (),
        keep_busy: bool = False,
    ) -> BulkResult:
        result = await self.plan_slots(professor, rule, busy_periods, keep_busy=keep_busy)
        series_id = uuid.uuid4()
        to_create = [
            ConsultationSlot(
                professor_id=professor.id,
                start_time=start,
                end_time=end,
                capacity=rule.capacity,
                location=rule.location,
                meeting_url=rule.meeting_url,
                title=rule.title,
                notes=rule.notes,
                status=SlotStatus.AVAILABLE.value,
                series_id=series_id,
            )
            for start, end in result.free
        ]
        if all_or_nothing and result.clashes:
            first = result.clashes[0]
            raise ConflictError(
                f"{len(result.clashes)} generated slot(s) overlap existing ones, the first on "
                f"{describe_time(first[0], first[1], professor.timezone)}; nothing was created."
            )
        if not to_create:
            return result
        try:
            result.created = list(await self.create_many(to_create))
            if result.created:
                await announce(self.repository.session, "slots_added", professor.id)
            await commit(self.repository.session)
        except INTEGRITY_ERRORS as exc:
            await self.repository.session.rollback()
            raise ConflictError("Another change overlapped these slots meanwhile; nothing was created.") from exc
        return result

    async def update_slot(self, professor: User, slot_id: UUID, changes: dict[str, Any]) -> ConsultationSlot:
        slot = await self.get_owned(professor.id, slot_id, lock=True)
        if slot.status in (SlotStatus.CANCELLED, SlotStatus.COMPLETED) or slot.end_time <= utcnow():
            raise ConflictError("Only upcoming slots that are not cancelled can be changed.")
        errors = text_problems(changes)
        moved = "start_time" in changes or "end_time" in changes
        start = changes.get("start_time", slot.start_time)
        end = changes.get("end_time", slot.end_time)
        if moved:
            errors |= time_problems(start, end, now=utcnow())
        if "capacity" in changes and (problem := capacity_problem(changes["capacity"])):
            errors["capacity"] = problem
        if errors:
            await self.repository.session.rollback()
            raise FieldErrors(errors)
        active = (await self.booked_counts([slot.id])).get(slot.id, 0)
        if changes.get("capacity", slot.capacity) < active:
            await self.repository.session.rollback()
            raise ConflictError(f"{active} students are booked; the capacity cannot go below that.")
        if moved:
            start, end = start.astimezone(UTC), end.astimezone(UTC)
            if clash := await self.find_clash(professor.id, start, end, exclude=slot.id):
                message = self._clash_message(clash, professor.timezone)  # before the rollback expires `clash`
                await self.repository.session.rollback()
                raise ConflictError(message)
            slot.start_time, slot.end_time = start, end
        for name in ("capacity", *TEXT_FIELDS):
            if name in changes:
                setattr(slot, name, changes[name])
        bookings = BookingService(session=self.repository.session)
        if changes.get("capacity", 0) > active:  # more room: the waitlist moves up
            await waitlist_hooks().place_freed(self.repository.session, slot)
        await bookings.refresh_slot_status(slot)
        if moved or any(name in changes for name in ("location", "meeting_url")):
            await self._tell_booked_students_of_move(slot)
        await announce(self.repository.session, "slot_changed", professor.id, slot.id)
        try:
            await commit(self.repository.session)
        except INTEGRITY_ERRORS as exc:  # a booked student holds another booking at the new time
            await self.repository.session.rollback()
            raise ConflictError("A booked student has another consultation at the new time.") from exc
        return slot

    async def active_bookings(self, slot_id: UUID) -> list[Booking]:
        query = select(Booking).where(Booking.slot_id == slot_id, Booking.status.in_(ACTIVE))
        return list((await self.repository.session.scalars(query)).unique().all())

    async def _tell_booked_students_of_move(self, slot: ConsultationSlot) -> None:
        bookings = await self.active_bookings(slot.id)
        notifications = NotificationService(session=self.repository.session)
        for booking in bookings:
            booking.start_time, booking.end_time = slot.start_time, slot.end_time
            booking.sequence += 1
            await notifications.record(
                user_id=booking.student_id,
                booking_id=booking.id,
                kind=NotificationKind.BOOKING_MOVED,
                variant=str(booking.sequence),
            )

    async def cancel_slot(self, professor: User, slot_id: UUID, reason: str) -> ConsultationSlot:
        """Cancel the slot and every active booking on it; each booked student is told, with the reason."""
        slot = await self.get_owned(professor.id, slot_id, lock=True)
        if errors := text_problems({"reason": reason}):
            await self.repository.session.rollback()
            raise FieldErrors(errors)
        if slot.status == SlotStatus.CANCELLED:
            await self.repository.session.rollback()
            raise ConflictError("This slot is cancelled already.")
        if slot.status == SlotStatus.COMPLETED or slot.end_time <= utcnow():
            await self.repository.session.rollback()
            raise ConflictError("A slot that has ended cannot be cancelled.")
        bookings = await self.active_bookings(slot.id)
        notifications = NotificationService(session=self.repository.session)
        now = utcnow()
        for booking in bookings:
            booking.status = BookingStatus.CANCELLED.value
            booking.cancelled_by, booking.cancel_reason, booking.cancelled_at = professor.id, reason, now
            booking.sequence += 1
            await notifications.record(
                user_id=booking.student_id,
                booking_id=booking.id,
                kind=NotificationKind.SLOT_CANCELLED,
                context={"reason": reason},
            )
        slot.status = SlotStatus.CANCELLED.value
        await announce(self.repository.session, "slot_changed", professor.id, slot.id)
        await commit(self.repository.session)
        return slot

    async def complete_ended_slots(self) -> int:
        """Slots whose end has passed become `completed` (cancelled ones stay cancelled)."""
        result = await self.repository.session.execute(
            update(ConsultationSlot)
            .where(
                ConsultationSlot.end_time <= utcnow(),
                ConsultationSlot.status.in_((SlotStatus.AVAILABLE.value, SlotStatus.BOOKED.value)),
            )
            .values(status=SlotStatus.COMPLETED.value)
        )
        await self.repository.session.commit()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


class WaitlistHooks(Protocol):
    """What booking needs from the waitlist (implemented in app.domain.waitlist.services)."""

    async def offer_for(self, session: Any, slot: ConsultationSlot, student: User) -> Any: ...
    async def holds_on(self, session: Any, slot: ConsultationSlot) -> int: ...
    async def accepted(self, session: Any, offer: Any) -> None: ...
    async def place_freed(self, session: Any, slot: ConsultationSlot) -> None: ...


def waitlist_hooks() -> WaitlistHooks:
    from app.domain.waitlist.services import hooks

    return hooks


class BookingService(SQLAlchemyAsyncRepositoryService[Booking]):
    class Repository(SQLAlchemyAsyncRepository[Booking]):
        model_type = Booking

    repository_type = Repository

    async def to_model_on_create(self, data: ModelDictT[Booking]) -> ModelDictT[Booking]:
        if is_dict(data) and "slot" in data:
            # Times are copied from the slot so the database can refuse a student's overlapping bookings.
            slot: ConsultationSlot = data.pop("slot")
            data = {**data, "slot_id": slot.id, "start_time": slot.start_time, "end_time": slot.end_time}
        return data

    @property
    def notifications(self) -> NotificationService:
        return NotificationService(session=self.repository.session)

    async def lock_slot(self, slot_id: UUID) -> ConsultationSlot:
        query = select(ConsultationSlot).where(ConsultationSlot.id == slot_id).with_for_update(of=ConsultationSlot)
        slot: ConsultationSlot | None = (await self.repository.session.scalars(query)).unique().one_or_none()
        if slot is None:
            raise NotFound("Slot not found.")
        return slot

    async def active_count(self, slot_id: UUID) -> int:
        query = select(func.count()).select_from(Booking).where(Booking.slot_id == slot_id, Booking.status.in_(ACTIVE))
        return int(await self.repository.session.scalar(query) or 0)

    async def book_slot(self, student: User, slot_id: UUID, topic: str = "") -> Booking:
        """Book a place, deciding capacity under a lock on the slot row: no rush can overbook it."""
        try:
            return await self._book(student, slot_id, topic.strip())
        except (ConflictError, FieldErrors, NotFound):
            await self.repository.session.rollback()
            raise
        except INTEGRITY_ERRORS as exc:  # the partial unique index or the exclusion constraint caught a race
            await self.repository.session.rollback()
            raise ConflictError("You already hold a booking at this time.") from exc

    async def _book(self, student: User, slot_id: UUID, topic: str) -> Booking:
        if errors := text_problems({"topic": topic}):
            raise FieldErrors(errors)
        if not student.is_student:
            raise ConflictError("Only students can book consultation slots.")
        slot = await self.lock_slot(slot_id)
        profile = self.professor_profile(slot)
        self.require_bookable(slot, profile)
        # A student holding a waitlist offer for this slot takes the held place.
        offer = await waitlist_hooks().offer_for(self.repository.session, slot, student)
        taken = await self.active_count(slot.id) + await waitlist_hooks().holds_on(self.repository.session, slot)
        if offer is None and taken >= slot.capacity:
            raise ConflictError("This slot is full.")
        await self.require_eligible(student, slot, profile)
        booking = await self.take_place(slot, student, topic, profile)
        if offer is not None:
            await waitlist_hooks().accepted(self.repository.session, offer)
        await commit(self.repository.session)
        return await self.get(booking.id)

    @staticmethod
    def professor_profile(slot: ConsultationSlot) -> Profile:
        """The professor's booking rules; loaded with the slot (slot → professor → profile are joined eagerly)."""
        return slot.professor.profile

    @staticmethod
    def require_bookable(slot: ConsultationSlot, profile: Profile) -> None:
        now = utcnow()
        if slot.status == SlotStatus.CANCELLED:
            raise ConflictError("This slot has been cancelled.")
        if slot.start_time <= now or slot.status == SlotStatus.COMPLETED:
            raise ConflictError("This slot is in the past.")
        if slot.start_time < now + timedelta(hours=profile.booking_notice_hours):
            raise ConflictError(f"Book at least {profile.booking_notice_hours} hours before the start.")

    async def require_eligible(self, student: User, slot: ConsultationSlot, profile: Profile) -> None:
        """Not booked here already, free at that time, and under the professor's per-student limit."""
        session = self.repository.session
        mine = await session.scalar(
            select(func.count())
            .select_from(Booking)
            .where(Booking.slot_id == slot.id, Booking.student_id == student.id, Booking.status.in_(ACTIVE))
        )
        if mine:
            raise ConflictError("You have booked this slot already.")
        overlapping = select(Booking).where(
            Booking.student_id == student.id,
            Booking.status.in_(ACTIVE),
            Booking.start_time < slot.end_time,
            Booking.end_time > slot.start_time,
        )
        clash = (await session.scalars(overlapping.limit(1))).unique().first()
        if clash is not None:
            when = describe_time(clash.start_time, clash.end_time, student.timezone)
            raise ConflictError(f"You already have a consultation then ({when}).")
        held = await session.scalar(
            select(func.count())
            .select_from(Booking)
            .join(ConsultationSlot, Booking.slot_id == ConsultationSlot.id)
            .where(
                Booking.student_id == student.id,
                Booking.status.in_(ACTIVE),
                ConsultationSlot.professor_id == slot.professor_id,
                Booking.end_time > utcnow(),
            )
        )
        if (held or 0) >= profile.max_active_bookings_per_student:
            raise ConflictError(
                f"You hold {held} upcoming bookings with this professor, the most allowed; cancel one to book another."
            )

    async def take_place(self, slot: ConsultationSlot, student: User, topic: str, profile: Profile) -> Booking:
        """Create the booking on a locked slot (capacity already decided), tell the parties, announce it."""
        status = BookingStatus.CONFIRMED if profile.auto_confirm else BookingStatus.PENDING
        booking = await self.create(
            {
                "slot": slot,
                "student_id": student.id,
                "topic": topic,
                "status": status.value,
                "confirmed_at": utcnow() if status == BookingStatus.CONFIRMED else None,
            },
            auto_commit=False,
            auto_refresh=False,
        )
        await self.refresh_slot_status(slot)
        await self.notifications.record(
            user_id=slot.professor_id, booking_id=booking.id, kind=NotificationKind.BOOKING_REQUESTED
        )
        if status == BookingStatus.CONFIRMED:
            await self.notifications.record(
                user_id=student.id, booking_id=booking.id, kind=NotificationKind.BOOKING_CONFIRMED
            )
        await announce(self.repository.session, "booking_created", slot.professor_id, slot.id, booking.id)
        return booking

    async def refresh_slot_status(self, slot: ConsultationSlot) -> None:
        """`booked` while bookings and held places fill the capacity, `available` otherwise."""
        if slot.status not in (SlotStatus.AVAILABLE, SlotStatus.BOOKED):
            return
        taken = await self.active_count(slot.id) + await waitlist_hooks().holds_on(self.repository.session, slot)
        slot.status = (SlotStatus.BOOKED if taken >= slot.capacity else SlotStatus.AVAILABLE).value

    async def get_visible(self, user: User, booking_id: UUID) -> Booking:
        """A booking its student or its slot's professor may see; anyone else gets NotFound."""
        query = (
            select(Booking)
            .join(ConsultationSlot, Booking.slot_id == ConsultationSlot.id)
            .where(
                Booking.id == booking_id,
                or_(Booking.student_id == user.id, ConsultationSlot.professor_id == user.id),
            )
        )
        booking: Booking | None = (await self.repository.session.scalars(query)).unique().one_or_none()
        if booking is None:
            raise NotFound("Booking not found.")
        return booking

    async def list_for(
        self, user: User, *, status: str | None = None, upcoming: bool | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[Booking], int]:
        """A student's own bookings, or the bookings on a professor's slots."""
        owner = ConsultationSlot.professor_id == user.id if user.is_professor else Booking.student_id == user.id
        filters: list[ColumnElement[bool]] = [owner]
        if status is not None:
            filters.append(Booking.status == status)
        now = utcnow()
        if upcoming is True:
            filters.append(Booking.end_time > now)
        elif upcoming is False:
            filters.append(Booking.end_time <= now)
        base = select(Booking).join(ConsultationSlot, Booking.slot_id == ConsultationSlot.id).where(*filters)
        order = Booking.start_time.asc() if upcoming is not False else Booking.start_time.desc()
        total = await self.repository.session.scalar(select(func.count()).select_from(base.subquery()))
        rows = (await self.repository.session.scalars(base.order_by(order).limit(limit).offset(offset))).unique().all()
        return list(rows), int(total or 0)

    async def _transition(self, user: User, booking_id: UUID) -> tuple[Booking, ConsultationSlot]:
        """Lock the slot first, then the booking: the same order as booking, so no deadlock."""
        booking = await self.get_visible(user, booking_id)
        slot = await self.lock_slot(booking.slot_id)
        await self.repository.session.execute(select(Booking.id).where(Booking.id == booking.id).with_for_update())
        await self.repository.session.refresh(booking)
        return booking, slot

    async def confirm(self, professor: User, booking_id: UUID) -> Booking:
        booking, slot = await self._transition(professor, booking_id)
        try:
            self._require_professor(professor, slot)
            if booking.status != BookingStatus.PENDING:
                raise ConflictError(f"Only a pending booking can be confirmed; this one is {booking.status}.")
            if slot.start_time <= utcnow():
                raise ConflictError("This consultation has started; it can no longer be confirmed.")
        except (ConflictError, Forbidden):
            await self.repository.session.rollback()
            raise
        booking.status, booking.confirmed_at = BookingStatus.CONFIRMED.value, utcnow()
        booking.sequence += 1
        await self.notifications.record(
            user_id=booking.student_id, booking_id=booking.id, kind=NotificationKind.BOOKING_CONFIRMED
        )
        await announce(self.repository.session, "booking_changed", slot.professor_id, slot.id, booking.id)
        await commit(self.repository.session)
        return booking

    async def cancel(self, user: User, booking_id: UUID, reason: str = "") -> Booking:
        booking, slot = await self._transition(user, booking_id)
        reason = reason.strip()
        try:
            if errors := text_problems({"reason": reason}):
                raise FieldErrors(errors)
            if booking.status not in ACTIVE:
                raise ConflictError(
                    f"Only a pending or confirmed booking can be cancelled; this one is {booking.status}."
                )
            by_professor = slot.professor_id == user.id
            if by_professor and not reason:
                raise FieldErrors.single("reason", "Tell the student why you cancel.")
            if not by_professor:
                profile = (
                    await self.repository.session.scalars(select(Profile).where(Profile.user_id == slot.professor_id))
                ).one()
                deadline = slot.start_time - timedelta(hours=profile.cancellation_notice_hours)
                if utcnow() > deadline:
                    raise ConflictError(
                        f"Bookings can be cancelled up to {profile.cancellation_notice_hours} hours before the start."
                    )
        except (ConflictError, FieldErrors):
            await self.repository.session.rollback()
            raise
        declined = by_professor and booking.status == BookingStatus.PENDING
        booking.status = BookingStatus.CANCELLED.value
        booking.cancelled_by, booking.cancel_reason, booking.cancelled_at = user.id, reason, utcnow()
        booking.sequence += 1
        await self.repository.session.flush()
        await waitlist_hooks().place_freed(self.repository.session, slot)
        await self.refresh_slot_status(slot)
        if by_professor:
            kind = NotificationKind.BOOKING_DECLINED if declined else NotificationKind.BOOKING_CANCELLED
            await self.notifications.record(
                user_id=booking.student_id, booking_id=booking.id, kind=kind, context={"reason": reason}
            )
        else:
            await self.notifications.record(
                user_id=slot.professor_id,
                booking_id=booking.id,
                kind=NotificationKind.BOOKING_CANCELLED,
                context={"reason": reason},
            )
        await announce(self.repository.session, "booking_changed", slot.professor_id, slot.id, booking.id)
        await commit(self.repository.session)
        return booking

    async def mark_outcome(self, professor: User, booking_id: UUID, outcome: BookingStatus) -> Booking:
        """confirmed -> completed | no_show, by the professor, once the consultation has started."""
        booking, slot = await self._transition(professor, booking_id)
        try:
            self._require_professor(professor, slot)
            if booking.status != BookingStatus.CONFIRMED:
                raise ConflictError(
                    f"Only a confirmed booking can be marked {outcome.value}; this one is {booking.status}."
                )
            if slot.start_time > utcnow():
                raise ConflictError("The consultation has not started yet.")
        except (ConflictError, Forbidden):
            await self.repository.session.rollback()
            raise
        booking.status = outcome.value
        await announce(self.repository.session, "booking_changed", slot.professor_id, slot.id, booking.id)
        await commit(self.repository.session)
        return booking

    @staticmethod
    def _require_professor(user: User, slot: ConsultationSlot) -> None:
        if slot.professor_id != user.id:
            # The student of the booking may see it, but only its professor decides on it.
            raise Forbidden("Only the professor of this slot can do that.")


FEEDBACK_EDIT_WINDOW = timedelta(days=7)
MIN_RATINGS_SHOWN = 3


@dataclass(frozen=True)
class NoteView:
    """A booking's note as one party may see it: private notes for the professor, feedback for the student."""

    booking: Booking
    note: ConsultationNote | None
    viewer_is_professor: bool

    @property
    def editable_until(self) -> datetime | None:
        if self.note is None or self.note.rated_at is None:
            return None
        return self.note.rated_at + FEEDBACK_EDIT_WINDOW


class NoteService(SQLAlchemyAsyncRepositoryService[ConsultationNote]):
    class Repository(SQLAlchemyAsyncRepository[ConsultationNote]):
        model_type = ConsultationNote

    repository_type = Repository

    async def view(self, user: User, booking_id: UUID) -> NoteView:
        booking = await BookingService(session=self.repository.session).get_visible(user, booking_id)
        note = await self.get_one_or_none(booking_id=booking.id)
        return NoteView(booking=booking, note=note, viewer_is_professor=booking.slot.professor_id == user.id)

    async def save(self, user: User, booking_id: UUID, changes: dict[str, Any]) -> NoteView:
        """The professor writes private notes; the student rates and comments once the consultation is completed."""
        current = await self.view(user, booking_id)
        booking, note = current.booking, current.note
        allowed = (
            {"professor_notes"} if current.viewer_is_professor else {"student_feedback", "rating", "feedback_signed"}
        )
        errors = {name: "This field is not yours to change." for name in changes if name not in allowed}
        if len(str(changes.get("professor_notes", ""))) > 10_000:
            errors["professor_notes"] = "Use at most 10000 characters."
        if len(str(changes.get("student_feedback", ""))) > 5000:
            errors["student_feedback"] = "Use at most 5000 characters."
        rating = changes.get("rating")
        if "rating" in changes and (not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5):
            errors["rating"] = "Rate from 1 to 5."
        if errors:
            raise FieldErrors(errors)
        if not current.viewer_is_professor:
            if booking.status != BookingStatus.COMPLETED:
                raise ConflictError("You can leave feedback once the consultation is marked completed.")
            if note is not None and note.rated_at is not None and utcnow() > note.rated_at + FEEDBACK_EDIT_WINDOW:
                raise ConflictError("Feedback can be changed for 7 days after it was given.")
            if (note is None or note.rating is None) and changes.get("rating") is None:
                raise FieldErrors.single("rating", "Rate from 1 to 5.")
        if note is None:
            note = ConsultationNote(booking_id=booking.id)
            self.repository.session.add(note)
        for name, value in changes.items():
            setattr(note, name, value)
        if not current.viewer_is_professor and note.rated_at is None:
            note.rated_at = utcnow()
        await self.repository.session.commit()
        return NoteView(booking=booking, note=note, viewer_is_professor=current.viewer_is_professor)

    async def notes_for(self, booking_ids: Iterable[UUID]) -> dict[UUID, ConsultationNote]:
        ids = list(booking_ids)
        if not ids:
            return {}
        rows = await self.repository.session.scalars(
            select(ConsultationNote).where(ConsultationNote.booking_id.in_(ids))
        )
        return {note.booking_id: note for note in rows.all()}

    async def rating_summary(self, professor_id: UUID) -> tuple[float, int] | None:
        """Average rating and count, only once MIN_RATINGS_SHOWN students rated (no single score singled out)."""
        query = (
            select(func.avg(ConsultationNote.rating), func.count(func.distinct(Booking.student_id)))
            .join(Booking, ConsultationNote.booking_id == Booking.id)
            .join(ConsultationSlot, Booking.slot_id == ConsultationSlot.id)
            .where(ConsultationSlot.professor_id == professor_id, ConsultationNote.rating.is_not(None))
        )
        average, raters = (await self.repository.session.execute(query)).one()
        if not raters or raters < MIN_RATINGS_SHOWN:
            return None
        return round(float(average), 1), int(raters)

    async def feedback_for(self, professor_id: UUID, limit: int = 50) -> list[tuple[ConsultationNote, Booking]]:
        """Feedback on the professor's consultations, newest first (the template hides unsigned names)."""
        query = (
            select(ConsultationNote, Booking)
            .join(Booking, ConsultationNote.booking_id == Booking.id)
            .join(ConsultationSlot, Booking.slot_id == ConsultationSlot.id)
            .where(ConsultationSlot.professor_id == professor_id, ConsultationNote.rating.is_not(None))
            .order_by(ConsultationNote.rated_at.desc())
            .limit(limit)
        )
        return [(note, booking) for note, booking in (await self.repository.session.execute(query)).unique().all()]
