"""Time: the current instant, days and time zones (lib/formatting writes instants as a person reads them)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

# Every service reads "now" through utcnow(). Tests fix or move it: in this process with `fixed_clock`, and for
# app and worker processes they start through TEST_CLOCK_FILE (refused in production, see app.config): the file
# holds an ISO 8601 instant (time stands still there) or a signed number of seconds added to the real time.
_override: Callable[[], datetime] | None = None


def utcnow() -> datetime:
    if _override is not None:
        return _override()
    path = os.environ.get("TEST_CLOCK_FILE")
    if path and os.environ.get("APP_ENV") != "production":
        return _from_clock_file(Path(path))
    return datetime.now(UTC)


def _from_clock_file(path: Path) -> datetime:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = ""
    if not text:
        return datetime.now(UTC)
    if text[0] in "+-" or (text[0].isdigit() and "T" not in text):
        return datetime.now(UTC) + timedelta(seconds=float(text))
    return datetime.fromisoformat(text).astimezone(UTC)


@contextmanager
def fixed_clock(at: datetime | Callable[[], datetime]) -> Iterator[None]:
    """In this process, "now" is `at` (an instant, or a function giving one) until the block ends."""
    global _override
    kept = _override
    _override = at if callable(at) else (lambda: at)
    try:
        yield
    finally:
        _override = kept


def today_in(timezone: str) -> date:
    return utcnow().astimezone(ZoneInfo(timezone)).date()


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def day_bounds(first: date, last: date, timezone: str) -> tuple[datetime, datetime]:
    """From local midnight starting `first` to local midnight ending `last`, in UTC."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def clock_change_problem(local: datetime, timezone: str) -> str | None:
    """Whether a wall-clock time (naive) can name one instant in `timezone`: "skipped" when the clocks jump over
    it (spring forward), "repeated" when they show it twice (fall back), None when it is an ordinary time."""
    zone = ZoneInfo(timezone)
    first, second = local.replace(tzinfo=zone, fold=0), local.replace(tzinfo=zone, fold=1)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != local:
        return "skipped"
    if first.utcoffset() != second.utcoffset():
        return "repeated"
    return None


ZONE_REGIONS = (
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)


def offset_label(timezone: str, at: datetime | None = None) -> str:
    """ "UTC+01:00": the zone's offset now (or at `at`)."""
    offset = (at or utcnow()).astimezone(ZoneInfo(timezone)).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "−"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@lru_cache(maxsize=2)
def zone_groups(day: date) -> list[tuple[str, list[tuple[str, str]]]]:
    """The IANA zones people live in, grouped by region, each labelled with its city and today's offset."""
    at = datetime.combine(day, time(12), tzinfo=UTC)
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(available_timezones()):
        region, _, place = name.partition("/")
        if region in ZONE_REGIONS and place:
            label = f"{place.replace('_', ' ').replace('/', ' – ')} ({offset_label(name, at)})"
            groups.setdefault(region, []).append((name, label))
    return [("UTC", [("UTC", "UTC (UTC+00:00)")]), *groups.items()]
