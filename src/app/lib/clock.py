"""Time: the current instant, and instants shown in a person's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DISPLAY_FORMAT = "%a %d %b %Y, %H:%M"


def utcnow() -> datetime:
    return datetime.now(UTC)


def local_time(value: datetime, timezone: str, fmt: str = DISPLAY_FORMAT) -> str:
    return value.astimezone(ZoneInfo(timezone)).strftime(fmt)


def describe_time(start: datetime, end: datetime, timezone: str) -> str:
    """ "Tue 01 Dec 2026, 10:00–10:30 (Europe/Berlin)": a span as a person in `timezone` reads it."""
    zone = ZoneInfo(timezone)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    return f"{local_start:{DISPLAY_FORMAT}}–{local_end:%H:%M} ({timezone})"


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
