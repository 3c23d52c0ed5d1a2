"""A week grid's appearance: the key under which its rendering is shared (views.week_grid)."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date, timedelta
from typing import Any
from uuid import uuid4

import pytest

from app.domain.consultations.grid import GridDay, SlotGrid
from tests.unit.test_slot_cell import NOW, a_cell

MONDAY = date(2030, 5, 6)
PROFESSOR = uuid4()

# Another value for each field of a grid: a field added to SlotGrid without one here fails these tests until it is
# given one (and so is shown to be part of the appearance).
OTHER_VALUES: dict[str, Any] = {
    "professor_id": uuid4(),
    "professor_name": "Grace",
    "professor_timezone": "Asia/Tokyo",
    "professor_offset": "UTC+09:00",
    "week_start": MONDAY + timedelta(days=7),
    "this_week": MONDAY + timedelta(days=7),
    "timezone": "America/New_York",
    "offset": "UTC−04:00",
    "zone_switched": True,
    "zone_options_day": NOW.date() + timedelta(days=1),
    "for_student": False,
    "days": (),
}


def a_week(**changes: Any) -> SlotGrid:
    days = tuple(GridDay(day=MONDAY + timedelta(days=n), cells=(a_cell(),) if n == 1 else ()) for n in range(7))
    grid = SlotGrid(
        professor_id=PROFESSOR,
        professor_name="Ada",
        professor_timezone="Europe/Berlin",
        professor_offset="UTC+02:00",
        week_start=MONDAY,
        this_week=MONDAY,
        timezone="Europe/Berlin",
        offset="UTC+02:00",
        zone_switched=False,
        zone_options_day=NOW.date(),
        for_student=True,
        days=days,
    )
    return replace(grid, **changes)


@pytest.mark.parametrize("name", [f.name for f in fields(SlotGrid)])
def test_weeks_that_differ_in_any_field_do_not_look_alike(name: str) -> None:
    assert a_week(**{name: OTHER_VALUES[name]}).appearance != a_week().appearance


def test_weeks_whose_cells_differ_do_not_look_alike() -> None:
    booked = tuple(
        GridDay(day=day.day, cells=tuple(replace(cell, booked=cell.booked + 1) for cell in day.cells))
        for day in a_week().days
    )
    assert a_week(days=booked).appearance != a_week().appearance


def test_weeks_read_at_two_moments_look_alike_while_nothing_changed() -> None:
    later = tuple(
        GridDay(day=day.day, cells=tuple(replace(cell, now=NOW + timedelta(minutes=5)) for cell in day.cells))
        for day in a_week().days
    )
    assert a_week(days=later).appearance == a_week().appearance
