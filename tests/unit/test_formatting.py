"""Dates and times as each language writes them (lib/formatting), in the locale of the reader (lib/i18n)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.lib.formatting import describe_time, duration, local_time, number
from app.lib.i18n import from_accept_language, use_locale

TUESDAY = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("style", "english", "german"),
    [
        ("time", "10:00", "10:00"),
        ("day", "Tue 1 Dec", "Di., 1. Dez."),
        ("day_time", "Tue 1 Dec, 10:00", "Di., 1. Dez., 10:00"),
        ("date", "1 Dec 2026", "1. Dez. 2026"),
        ("full", "Tuesday, 1 December 2026", "Dienstag, 1. Dezember 2026"),
        ("long_day", "Tuesday 1 December", "Dienstag, 1. Dezember"),
        ("weekday", "Tuesday", "Dienstag"),
        ("iso", "2026-12-01", "2026-12-01"),
    ],
)
def test_an_instant_is_written_as_each_language_writes_it(style: str, english: str, german: str) -> None:
    with use_locale("en"):
        assert local_time(TUESDAY, "Europe/Berlin", style) == english
    with use_locale("de"):
        assert local_time(TUESDAY, "Europe/Berlin", style) == german


def test_a_span_names_the_zone_in_either_language() -> None:
    with use_locale("de"):
        assert describe_time(TUESDAY, TUESDAY + timedelta(minutes=30), "Europe/Berlin") == (
            "Di., 1. Dez. 2026, 10:00–10:30 (Europe/Berlin)"
        )


def test_numbers_and_lengths_of_time_follow_the_language() -> None:
    with use_locale("de"):
        assert (number(3.666), duration(timedelta(hours=2))) == ("3,7", "2 Stunden")
    with use_locale("en"):
        assert (number(3.666), duration(timedelta(hours=2))) == ("3.7", "2 hours")


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("de-AT", "de"),
        ("fr-FR, en-US;q=0.5", "en"),
        ("en;q=0.4, de;q=0.9", "de"),
        ("fr", "en"),
        ("", "en"),
    ],
)
def test_the_browsers_languages_choose_a_supported_one(header: str, language: str) -> None:
    assert from_accept_language(header) == language
