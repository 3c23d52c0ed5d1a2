"""How long a freed place is held for the next student on the waitlist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from app.domain.consultations.rules import hold_until

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def hold(minutes_setting: int, starts_in: timedelta) -> timedelta:
    slot: Any = SimpleNamespace(start_time=NOW + starts_in)
    profile: Any = SimpleNamespace(waitlist_hold_minutes=minutes_setting)
    return hold_until(slot, profile, NOW) - NOW


def test_a_place_is_held_for_the_professors_hold_time_when_the_slot_is_far_away() -> None:
    assert hold(120, timedelta(days=3)) == timedelta(minutes=120)


def test_a_hold_never_runs_past_half_the_time_left_before_the_slot() -> None:
    assert hold(120, timedelta(hours=2)) == timedelta(hours=1)


def test_a_hold_lasts_at_least_ten_minutes_when_the_slot_allows() -> None:
    assert hold(120, timedelta(minutes=15)) == timedelta(minutes=10)


def test_a_hold_ends_at_the_start_when_less_than_ten_minutes_remain() -> None:
    assert hold(120, timedelta(minutes=6)) == timedelta(minutes=6)
