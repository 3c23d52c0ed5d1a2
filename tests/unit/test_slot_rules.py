"""Slot rules: what a weekly rule makes, in the professor's time zone, across clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime

from app.domain.consultations.rules import SlotRule


def rule(**fields: object) -> SlotRule:
    values: dict[str, object] = {
        "start_date": date(2026, 3, 23),
        "end_date": date(2026, 3, 31),
        "weekdays": [0, 1, 2, 3, 4, 5, 6],
        "day_start": "10:00",
        "day_end": "10:30",
        "duration_minutes": 30,
    }
    return SlotRule(**{**values, **fields})  # type: ignore[arg-type]


def test_a_ten_oclock_slot_stays_at_ten_local_time_across_the_spring_clock_change() -> None:
    times = rule(start_date=date(2026, 3, 28), end_date=date(2026, 3, 30)).local_times("Europe/Berlin")
    assert [start for start, _ in times] == [
        datetime(2026, 3, 28, 9, 0, tzinfo=UTC),  # CET, UTC+1
        datetime(2026, 3, 29, 8, 0, tzinfo=UTC),  # CEST from this Sunday, UTC+2
        datetime(2026, 3, 30, 8, 0, tzinfo=UTC),
    ]


def test_a_slot_that_starts_or_ends_in_the_hour_skipped_in_spring_is_not_made() -> None:
    day = date(2026, 3, 29)  # Berlin jumps from 02:00 to 03:00: 01:00-02:00 and 02:00-03:00 cannot be kept
    times = rule(start_date=day, end_date=day, day_start="00:00", day_end="05:00", duration_minutes=60)
    assert [start for start, _ in times.local_times("Europe/Berlin")] == [
        datetime(2026, 3, 28, 23, 0, tzinfo=UTC),  # 00:00 CET
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # 03:00 CEST
        datetime(2026, 3, 29, 2, 0, tzinfo=UTC),  # 04:00 CEST
    ]


def test_a_slot_in_the_hour_repeated_in_autumn_is_made_once_at_its_first_occurrence() -> None:
    day = date(2026, 10, 25)  # Berlin goes back from 03:00 to 02:00
    times = rule(start_date=day, end_date=day, day_start="02:00", day_end="02:30").local_times("Europe/Berlin")
    assert times == [(datetime(2026, 10, 25, 0, 0, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC))]


def test_new_york_changes_its_clocks_on_its_own_date() -> None:
    times = rule(start_date=date(2026, 3, 7), end_date=date(2026, 3, 9)).local_times("America/New_York")
    assert [start.hour for start, _ in times] == [15, 14, 14]  # EST (UTC-5), then EDT (UTC-4) from 8 March


def test_only_the_chosen_weekdays_get_slots() -> None:
    times = rule(weekdays=[0, 2]).local_times("UTC")  # Mondays and Wednesdays, 23 to 31 March 2026
    assert [start.date() for start, _ in times] == [date(2026, 3, 23), date(2026, 3, 25), date(2026, 3, 30)]


def test_the_buffer_spaces_slots_within_the_daily_window() -> None:
    times = rule(
        start_date=date(2026, 3, 23),
        end_date=date(2026, 3, 23),
        day_start="09:00",
        day_end="11:00",
        duration_minutes=30,
        buffer_minutes=15,
    ).local_times("UTC")
    assert [f"{start:%H:%M}-{end:%H:%M}" for start, end in times] == ["09:00-09:30", "09:45-10:15", "10:30-11:00"]


def test_a_valid_rule_has_no_problems() -> None:
    assert rule().problems() == {}


def test_a_rule_ending_before_it_starts_names_the_end_date() -> None:
    assert rule(end_date=date(2026, 3, 1)).problems() == {"end_date": "The end date must not be before the start date."}


def test_a_rule_over_more_than_a_year_is_refused() -> None:
    assert rule(start_date=date(2026, 1, 1), end_date=date(2027, 1, 1)).problems() == {}  # 366 days
    problems = rule(start_date=date(2026, 1, 1), end_date=date(2027, 1, 2)).problems()
    assert problems == {"end_date": "Generate at most one year of slots at once."}


def test_a_rule_without_weekdays_names_the_weekdays() -> None:
    assert rule(weekdays=[]).problems() == {"weekdays": "Pick at least one weekday."}


def test_a_weekday_outside_monday_to_sunday_is_refused() -> None:
    assert rule(weekdays=[7]).problems() == {"weekdays": "Weekdays are numbers from 0 (Monday) to 6 (Sunday)."}


def test_a_time_that_is_not_hh_mm_names_its_field() -> None:
    assert rule(day_start="9am").problems() == {"day_start": "Use HH:MM, e.g. 09:30."}


def test_a_daily_window_that_ends_before_it_starts_is_refused() -> None:
    assert rule(day_start="12:00", day_end="11:00").problems() == {
        "day_end": "The daily window must end after it starts."
    }


def test_a_slot_longer_than_the_daily_window_is_refused() -> None:
    problems = rule(day_start="10:00", day_end="10:20", duration_minutes=30).problems()
    assert problems == {"duration_minutes": "The slot length does not fit in the daily window."}


def test_capacity_is_a_whole_number_from_one_to_five_hundred() -> None:
    assert rule(capacity=0).problems() == {"capacity": "Capacity must be a whole number from 1 to 500."}


def test_a_meeting_link_must_be_a_web_address() -> None:
    assert rule(meeting_url="zoom me").problems() == {"meeting_url": "Enter a link starting with http:// or https://"}
