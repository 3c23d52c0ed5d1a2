"""Dates, times and numbers as the reader writes them: one module for pages, fragments, live events, e-mails and
exports. A style names what is shown ("day_time": "Tue 1 Dec, 10:00" in English, "Di., 1. Dez., 10:00" in German);
the locale is the current one (lib/i18n) unless given.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_skeleton, format_timedelta, get_day_names
from babel.lists import format_list
from babel.numbers import format_decimal

from app.lib.i18n import babel_locale

# CLDR skeletons: each language orders and punctuates them its own way.
SKELETONS = {
    "time": "Hm",
    "day": "MMMEd",  # Tue 1 Dec
    "short_date": "MMMd",  # 1 Dec
    "date": "yMMMd",  # 1 Dec 2026
    "day_year": "yMMMEd",  # Tue, 1 Dec 2026
    "month_year": "yMMMM",  # December 2026
}
# A weekday and date in full, without the year, as each language writes it.
LONG_DAY = {"en": "EEEE d MMMM", "de": "EEEE, d. MMMM"}
# Day and time joined as the language joins them ("{date}, {time}" in both English and German).
WITH_TIME = {"day_time": "day", "date_time": "date", "day_year_time": "day_year", "full_time": "full"}


def format_day(value: date | datetime, style: str, locale: str | None = None) -> str:
    # Keyed by the wall-clock reading: aware datetimes of one instant in two zones are equal, their texts are not.
    # No style writes a zone's name, so the reading alone decides the text.
    wall = value.replace(tzinfo=None) if isinstance(value, datetime) else value
    return _formatted(wall, style, babel_locale(locale))


# A page shows the same few instants many times (every cell's times, the week's days); formatting one is pure.
@lru_cache(maxsize=4096)
def _formatted(value: date | datetime, style: str, where: Locale) -> str:
    if style == "full":
        return format_date(value, "full", locale=where)  # Tuesday, 1 December 2026
    if style == "weekday":
        return format_date(value, "EEEE", locale=where)  # Tuesday (a skeleton would shorten it)
    if style == "long_day":
        return format_date(value, LONG_DAY[where.language], locale=where)  # Tuesday 1 December
    if style == "iso":
        return value.strftime("%Y-%m-%d")
    return format_skeleton(SKELETONS[style], value, locale=where)


def local_time(value: datetime, timezone: str, style: str = "day_year_time", locale: str | None = None) -> str:
    """The instant in `timezone`, written in `style` (see SKELETONS and WITH_TIME)."""
    local = value.astimezone(ZoneInfo(timezone))
    if style in WITH_TIME:
        pattern = babel_locale(locale).datetime_formats["medium"]  # "{1}, {0}": date, then time
        return str(pattern).format(format_day(local, "time", locale), format_day(local, WITH_TIME[style], locale))
    return format_day(local, style, locale)


def describe_time(start: datetime, end: datetime, timezone: str, locale: str | None = None) -> str:
    """ "Tue, 1 Dec 2026, 10:00–10:30 (Europe/Berlin)": a span as a person in `timezone` reads it."""
    first = local_time(start, timezone, "day_year_time", locale)
    return f"{first}–{local_time(end, timezone, 'time', locale)} ({timezone})"


def number(value: float, digits: int = 1, locale: str | None = None) -> str:
    """3.7 in English, 3,7 in German."""
    return format_decimal(round(value, digits), locale=babel_locale(locale))


def duration(length: timedelta, locale: str | None = None) -> str:
    """ "2 hours", "2 Stunden": a length of time as a person says it."""
    return format_timedelta(length, threshold=1.0, locale=babel_locale(locale))


def weekday_names(width: Literal["abbreviated", "wide"] = "abbreviated", locale: str | None = None) -> list[str]:
    """Monday first: ["Mon", "Tue", ...] or ["Mo.", "Di.", ...]; width "wide" for "Monday"."""
    names = get_day_names(width, locale=babel_locale(locale))
    return [names[day] for day in range(7)]


def percent(value: float, locale: str | None = None) -> str:
    """ "12.5 %" / "12,5 %": a share already in percent, one decimal."""
    return format_decimal(round(value, 1), format="#,##0.0", locale=babel_locale(locale)) + "\u00a0%"


def one_of(items: list[str], locale: str | None = None) -> str:
    """Alternatives as the language lists them: "A, B or C" / "A, B oder C"."""
    return format_list(items, style="or", locale=babel_locale(locale)) if items else ""
