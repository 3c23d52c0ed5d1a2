"""A grid cell's appearance: the key under which its rendering is shared (views.cell_html)."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import pytest

from app.domain.consultations.grid import SLOT_FIELDS, SlotCell
from app.domain.consultations.models import ConsultationSlot
from app.domain.consultations.slots import SlotRow

NOW = datetime(2030, 5, 6, 9, 0, tzinfo=UTC)

# Another value for each field of a cell: a field added to SlotCell without one here fails these tests until it is
# given one (and so is shown to be part of the appearance).
OTHER_VALUES: dict[str, Any] = {
    "booked": 2,
    "mine": "pending",
    "timezone": "America/New_York",
    "professor_timezone": "Asia/Tokyo",
    "offer_until": NOW + timedelta(hours=1),
    "waiting": True,
    "closed": True,
    "course_titles": ("Algebra",),
}


def a_slot(**changes: Any) -> Any:
    """A slot as the grid reads it: an object with the slot's columns."""
    columns = {name: None for name in SLOT_FIELDS} | {
        "id": uuid4(),
        "start_time": NOW + timedelta(days=1),
        "end_time": NOW + timedelta(days=1, minutes=30),
        "capacity": 3,
        "status": "available",
        "title": "Office hours",
        "location": "Room 1",
    }
    return SimpleNamespace(**(columns | changes))


SLOT = a_slot()


def a_cell(**changes: Any) -> SlotCell:
    cell = SlotCell(
        slot=SLOT, booked=1, mine=None, now=NOW, timezone="Europe/Berlin", professor_timezone="Europe/Berlin"
    )
    return replace(cell, **changes)


@pytest.mark.parametrize("name", [f.name for f in fields(SlotCell) if f.name not in ("slot", "now")])
def test_cells_that_differ_in_any_field_do_not_look_alike(name: str) -> None:
    assert a_cell(**{name: OTHER_VALUES[name]}).appearance != a_cell().appearance


def another(value: Any) -> Any:
    if isinstance(value, datetime):
        return value + timedelta(minutes=1)
    if isinstance(value, int):
        return value + 1
    return "something else"


@pytest.mark.parametrize("name", [name for name in SLOT_FIELDS if name != "id"])
def test_cells_of_slots_that_differ_in_any_column_do_not_look_alike(name: str) -> None:
    changed = a_slot(**{**vars(SLOT), name: another(getattr(SLOT, name))})
    assert a_cell(slot=changed).appearance != a_cell().appearance


def test_cells_read_at_two_moments_look_alike_while_the_slot_is_ahead() -> None:
    assert a_cell(now=NOW).appearance == a_cell(now=NOW + timedelta(minutes=5)).appearance


def test_a_cell_looks_different_once_its_slot_has_begun() -> None:
    assert a_cell(now=NOW + timedelta(days=2)).appearance != a_cell(now=NOW).appearance


def test_a_slot_row_holds_every_column_of_a_slot() -> None:
    columns = {prop.key for prop in ConsultationSlot.__mapper__.column_attrs if not prop.key.startswith("_")}
    assert set(SlotRow._fields) == columns


def test_a_cell_of_a_slots_row_looks_like_a_cell_of_the_slot_itself() -> None:
    row = SlotRow(**{name: getattr(SLOT, name) for name in SLOT_FIELDS})
    assert a_cell(slot=row).appearance == a_cell().appearance
