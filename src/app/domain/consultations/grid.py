"""The week grid a viewer sees: slots grouped by local day, each with its free places and the viewer's state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from functools import cached_property, lru_cache
from operator import attrgetter
from typing import Any, NamedTuple
from uuid import UUID
from zoneinfo import ZoneInfo

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Uuid, bindparam, exists, false, func, null, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User
from app.domain.consultations.capacity import booked_places, holds_a_place
from app.domain.consultations.courses import open_to, reserved_for_titles
from app.domain.consultations.models import (
    ACTIVE,
    Booking,
    ConsultationSlot,
    Course,
    SlotStatus,
    WaitlistEntry,
    WaitlistStatus,
    slot_course,
)
from app.domain.consultations.slots import SLOT_COLUMNS, SLOT_FIELDS, SlotRow
from app.lib.clock import day_bounds, monday_of, offset_label, utcnow
from app.lib.database import run_core

MOST_SLOTS_IN_A_WEEK = 1000


@dataclass(frozen=True)
class SlotCell:
    """A cell never changes once made (a later state is a new cell), so what it derives is worked out once: the
    templates ask for `state` and `bookable` several times per cell."""

    slot: ConsultationSlot | SlotRow
    booked: int
    mine: str | None  # the viewer's own active booking here: "pending" or "confirmed"
    now: datetime
    timezone: str  # the zone the viewer reads times in
    professor_timezone: str
    offer_until: datetime | None = None  # a waitlist place held for the viewer
    waiting: bool = False  # the viewer is on this slot's waitlist
    closed: bool = False  # reserved for courses the viewer does not belong to
    course_titles: tuple[str | None, ...] = ()  # the courses it is reserved for (none: open to every student)

    @property
    def appearance(self) -> tuple[Any, ...]:
        """Everything the cell's template can read from it: cells that look alike render alike (the key of a memo of
        renderings). Every column of the slot and every field of the cell, a new one included, but the moment, which
        counts only as past or not. (Read once per cell: not cached, as Python 3.11's cached_property takes a lock.)"""
        slot = self.slot
        return (slot if isinstance(slot, SlotRow) else slot_values(slot), cell_values(self), self.is_past)

    @cached_property
    def reserved_for(self) -> str:
        return reserved_for_titles(self.course_titles) if self.course_titles else ""

    @cached_property
    def places_left(self) -> int:
        return max(self.slot.capacity - self.booked, 0)

    @property
    def is_past(self) -> bool:
        return self.slot.start_time <= self.now or self.slot.status == SlotStatus.COMPLETED

    @cached_property
    def is_cancelled(self) -> bool:
        return self.slot.status == SlotStatus.CANCELLED

    @cached_property
    def bookable(self) -> bool:
        return not (self.mine or self.is_past or self.is_cancelled or self.closed) and self.places_left > 0

    @cached_property
    def state(self) -> str:
        """One word for styling and for screen readers: colour is never the only signal."""
        if self.is_cancelled:
            return "cancelled"
        if self.mine == "pending":
            return "requested"  # the viewer asked; the professor has not answered yet
        if self.mine:
            return "booked"
        if self.is_past:
            return "past"
        if self.closed:
            return "reserved"
        if self.offer_until is not None:
            return "offered"
        return "free" if self.places_left else "full"


CELL_FIELDS = tuple(field.name for field in fields(SlotCell) if field.name not in ("slot", "now"))
slot_values, cell_values = attrgetter(*SLOT_FIELDS), attrgetter(*CELL_FIELDS)  # one call each, a tuple each


class WeekProfessor(NamedTuple):
    """A professor as their week's page shows them, read as columns (a user object with its profile cost twice as
    much to load)."""

    id: UUID
    full_name: str
    department: str
    bio: str
    timezone: str
    first_name: str
    username: str


@dataclass(frozen=True)
class GridDay:
    day: date
    cells: tuple[SlotCell, ...]


@dataclass(frozen=True)
class SlotGrid:
    """A professor's week as a viewer sees it: all that its template (components/week_grid.html) reads, so grids that
    are alike render alike (`appearance`, the key of a memo of renderings). Derived values the template shows are
    worked out here, where the moment is known: a zone's offset now, the day whose offsets the zone picker lists."""

    professor_id: UUID
    professor_name: str  # how the grid names them: first name, else username
    professor_timezone: str
    professor_offset: str  # the professor's zone's UTC offset now
    week_start: date
    this_week: date  # the week of today, in the zone shown
    timezone: str  # the zone the times are shown in
    offset: str  # its UTC offset now
    zone_switched: bool  # the viewer picked this zone for this view (not their own)
    zone_options_day: date  # the zone picker shows each zone's offset on this day
    for_student: bool  # what the cells offer depends on it (a student books)
    days: tuple[GridDay, ...]

    @property
    def previous_week(self) -> date:
        return self.week_start - timedelta(days=7)

    @property
    def next_week(self) -> date:
        return self.week_start + timedelta(days=7)

    @property
    def is_empty(self) -> bool:
        return not any(day.cells for day in self.days)

    @property
    def appearance(self) -> tuple[Any, ...]:
        """Every field (a new one included), the days by their cells' appearances."""
        days = tuple((day.day, tuple(cell.appearance for cell in day.cells)) for day in self.days)
        return (grid_values(self), days)


GRID_FIELDS = tuple(field.name for field in fields(SlotGrid) if field.name != "days")
grid_values = attrgetter(*GRID_FIELDS)


# The grid's statements are built once and run with parameters: `viewer` (the student's id) and `now`.
VIEWER = bindparam("viewer", type_=Uuid)
NOW = bindparam("now", type_=DateTimeUTC(timezone=True))


def cell_columns(student: bool) -> list[Any]:
    """What a cell shows besides its slot, as columns correlated with `ConsultationSlot.id`: places booked and held,
    the courses it is reserved for, and for a student viewer (`student`) their booking, held offer, waitlist place and
    whether the slot is closed to them. One query answers a whole grid; nothing is cached (a place shows free only
    while it is). Parameters: `now`, and `viewer` for a student."""
    slot_id = ConsultationSlot.id
    held = select(func.count()).where(WaitlistEntry.offered_slot_id == slot_id, holds_a_place(NOW))
    titles = (
        select(func.array_agg(aggregate_order_by(Course.title, Course.title)))
        .select_from(slot_course.join(Course, Course.id == slot_course.c.course_id))
        .where(slot_course.c.slot_id == slot_id)
    )
    columns: list[Any] = [
        booked_places(slot_id).label("booked"),
        held.scalar_subquery().label("held"),
        titles.scalar_subquery().label("course_titles"),
    ]
    if not student:
        return [*columns, null().label("mine"), null().label("offer_until"), false().label("waiting"), false()]
    mine = select(Booking.status).where(
        Booking.slot_id == slot_id, Booking.student_id == VIEWER, Booking.status.in_(ACTIVE)
    )
    offer = select(func.max(WaitlistEntry.hold_expires_at)).where(
        WaitlistEntry.offered_slot_id == slot_id, WaitlistEntry.student_id == VIEWER, holds_a_place(NOW)
    )
    waiting = exists().where(
        WaitlistEntry.slot_id == slot_id,
        WaitlistEntry.student_id == VIEWER,
        WaitlistEntry.status == WaitlistStatus.WAITING.value,
    )
    return [
        *columns,
        mine.limit(1).scalar_subquery().label("mine"),
        offer.scalar_subquery().label("offer_until"),
        waiting.label("waiting"),
        (~open_to(VIEWER)).label("closed"),
    ]


@lru_cache(maxsize=2)
def cells_query(student: bool) -> Any:
    """The cells of the slots `ids`."""
    return select(ConsultationSlot.id, *cell_columns(student)).where(
        ConsultationSlot.id.in_(bindparam("ids", expanding=True))
    )


@lru_cache(maxsize=2)
def week_query(student: bool) -> Any:
    """A professor's slots overlapping [start, end), not cancelled, with their cells' columns."""
    return (
        select(*SLOT_COLUMNS, *cell_columns(student))
        .where(
            ConsultationSlot.professor_id == bindparam("professor"),
            ConsultationSlot.end_time > bindparam("start"),
            ConsultationSlot.start_time < bindparam("end"),
            ConsultationSlot.status != SlotStatus.CANCELLED.value,
        )
        .order_by(ConsultationSlot.start_time)
        .limit(MOST_SLOTS_IN_A_WEEK)
    )


def viewer_parameters(viewer: User | None, now: datetime) -> tuple[bool, dict[str, Any]]:
    student = viewer is not None and viewer.is_student
    return student, ({"now": now, "viewer": viewer.id} if student and viewer is not None else {"now": now})


def make_cell(
    slot: ConsultationSlot | SlotRow, values: Sequence[Any], now: datetime, timezone: str, professor_timezone: str
) -> SlotCell:
    """A cell from its slot and the values of `cell_columns`, in their order."""
    booked, held, titles, mine, offer_until, waiting, closed = values
    return SlotCell(
        slot=slot,
        booked=(booked or 0) + (held or 0),
        mine=mine,
        now=now,
        timezone=timezone,
        professor_timezone=professor_timezone,
        offer_until=offer_until,
        waiting=bool(waiting),
        closed=bool(closed),
        course_titles=tuple(titles or ()),
    )


async def build_cells(
    session: AsyncSession, rows: list[ConsultationSlot], viewer: User | None, timezone: str | None = None
) -> list[SlotCell]:
    """The cells as `viewer` sees them, times in `timezone` (else the viewer's own, else the professor's)."""
    if not rows:
        return []
    now = utcnow()
    student, parameters = viewer_parameters(viewer, now)
    parameters["ids"] = [slot.id for slot in rows]
    values = {row[0]: row[1:] for row in (await run_core(session, cells_query(student), parameters)).all()}
    return [
        make_cell(
            slot,
            values[slot.id],
            now,
            timezone or (viewer.timezone if viewer else slot.professor.timezone),
            slot.professor.timezone,
        )
        for slot in rows
        if slot.id in values
    ]


@dataclass(frozen=True)
class WeekFrame:
    """Which week a viewer sees and how, worked out before it is read: the moment, the zone, its Monday and this
    week's, the week's bounds, and the parameters of `week_query` (but the professor's id)."""

    now: datetime
    timezone: str
    own_zone: str  # the viewer's own
    this_week: date
    week_start: date
    student: bool
    parameters: dict[str, Any]


def week_frame(viewer: User, week: date | None, timezone: str | None = None) -> WeekFrame:
    """The week holding the day `week` (None: this week) as `viewer` sees it, times in `timezone` (else their own
    zone)."""
    own_zone = viewer.timezone
    timezone = timezone or own_zone
    zone = ZoneInfo(timezone)
    now = utcnow()
    this_week = monday_of(now.astimezone(zone).date())
    week_start = monday_of(week) if week else this_week
    start, end = day_bounds(week_start, week_start + timedelta(days=6), timezone)
    student, parameters = viewer_parameters(viewer, now)
    parameters.update(start=start, end=end)
    return WeekFrame(now, timezone, own_zone, this_week, week_start, student, parameters)


def assemble_week(frame: WeekFrame, professor: WeekProfessor, rows: Sequence[Sequence[Any]]) -> SlotGrid:
    """The grid from the rows of `week_query` (each a slot's columns, then its cell's)."""
    now, timezone = frame.now, frame.timezone
    zone = ZoneInfo(timezone)
    width = len(SLOT_FIELDS)
    cells = [make_cell(SlotRow._make(row[:width]), row[width:], now, timezone, professor.timezone) for row in rows]
    by_day: dict[date, list[SlotCell]] = {}
    for cell in cells:
        by_day.setdefault(cell.slot.start_time.astimezone(zone).date(), []).append(cell)
    days = [frame.week_start + timedelta(days=offset) for offset in range(7)]
    return SlotGrid(
        professor_id=professor.id,
        professor_name=professor.first_name or professor.username,
        professor_timezone=professor.timezone,
        professor_offset=offset_label(professor.timezone, now),
        week_start=frame.week_start,
        this_week=frame.this_week,
        timezone=timezone,
        offset=offset_label(timezone, now),
        zone_switched=timezone != frame.own_zone,
        zone_options_day=now.date(),
        for_student=frame.student,
        days=tuple(GridDay(day=day, cells=tuple(by_day.get(day, ()))) for day in days),
    )
