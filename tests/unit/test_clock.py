"""Instants as a person in a time zone reads them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from app.lib.clock import clock_change_problem, day_bounds, monday_of
from app.lib.formatting import describe_time, local_time


def test_a_span_is_described_in_the_readers_zone_and_names_the_zone() -> None:
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    end = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert describe_time(start, end, "Europe/Berlin") == "Tue, 1 Dec 2026, 10:00–10:30 (Europe/Berlin)"


def test_the_same_instant_reads_differently_in_new_york() -> None:
    assert local_time(datetime(2026, 12, 1, 9, 0, tzinfo=UTC), "America/New_York", "time") == "04:00"


def test_a_day_with_the_spring_clock_change_lasts_twenty_three_hours() -> None:
    start, end = day_bounds(date(2026, 3, 29), date(2026, 3, 29), "Europe/Berlin")
    assert (start, end - start) == (datetime(2026, 3, 28, 23, 0, tzinfo=UTC), end - start)
    assert (end - start).total_seconds() == 23 * 3600


def test_a_week_starts_on_monday() -> None:
    assert monday_of(date(2026, 12, 6)) == date(2026, 11, 30)
    assert monday_of(date(2026, 11, 30)) == date(2026, 11, 30)


def test_a_fixed_clock_is_now_inside_its_block_only() -> None:
    from app.lib.clock import fixed_clock, utcnow

    at = datetime(2027, 10, 1, 12, 0, tzinfo=UTC)
    with fixed_clock(at):
        assert utcnow() == at
    assert utcnow() > datetime(2026, 1, 1, tzinfo=UTC)
    assert utcnow() != at


def test_a_clock_file_with_an_instant_stands_time_still_there(tmp_path: Any, monkeypatch: Any) -> None:
    from app.lib.clock import utcnow

    clock = tmp_path / "clock"
    clock.write_text("2027-03-01T09:30:00+00:00")
    monkeypatch.setenv("TEST_CLOCK_FILE", str(clock))
    assert utcnow() == datetime(2027, 3, 1, 9, 30, tzinfo=UTC)


def test_a_clock_file_with_seconds_moves_the_real_time_on(tmp_path: Any, monkeypatch: Any) -> None:
    from app.lib.clock import utcnow

    clock = tmp_path / "clock"
    clock.write_text("+86400")
    monkeypatch.setenv("TEST_CLOCK_FILE", str(clock))
    ahead = utcnow() - datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < ahead <= timedelta(days=1)


def test_production_ignores_and_refuses_a_clock_file(tmp_path: Any, monkeypatch: Any) -> None:
    import pytest

    from app.config import SettingsError, load_settings
    from app.lib.clock import utcnow

    clock = tmp_path / "clock"
    clock.write_text("2027-03-01T09:30:00+00:00")
    monkeypatch.setenv("TEST_CLOCK_FILE", str(clock))
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 48)
    assert utcnow() != datetime(2027, 3, 1, 9, 30, tzinfo=UTC)
    with pytest.raises(SettingsError, match="TEST_CLOCK_FILE"):
        load_settings()


def test_a_time_the_spring_clock_change_jumps_over_is_skipped() -> None:
    assert clock_change_problem(datetime(2035, 3, 25, 2, 30), "Europe/Berlin") == "skipped"


def test_a_time_the_autumn_clock_change_shows_twice_is_repeated() -> None:
    assert clock_change_problem(datetime(2035, 10, 28, 2, 30), "Europe/Berlin") == "repeated"


def test_the_minute_after_a_clock_change_is_an_ordinary_time() -> None:
    assert clock_change_problem(datetime(2035, 3, 25, 3, 0), "Europe/Berlin") is None
    assert clock_change_problem(datetime(2035, 10, 28, 3, 0), "Europe/Berlin") is None


def test_a_zone_without_clock_changes_has_no_problem_times() -> None:
    assert clock_change_problem(datetime(2035, 3, 25, 2, 30), "UTC") is None
