"""The week grid a viewer sees: slots grouped by local day, each with its free places and the viewer's state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User
from app.domain.consultations.capacity import places_on
from app.domain.consultations.courses import closed_to, reserved_for
from app.domain.consultations.models import (
    ACTIVE,
    Booking,
    ConsultationSlot,
    SlotStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from app.domain.consultations.slots import SlotService, slot_filters
from app.lib.clock import day_bounds, utcnow


@dataclass(frozen=True)
class SlotCell:
    slot: ConsultationSlot
    booked: int
    mine: str | None  # the viewer's own active booking here: "pending" or "confirmed"
    now: datetime
    timezone: str  # the zone the viewer reads times in
    offer_until: datetime | None = None  # a waitlist place held for the viewer
    waiting: bool = False  # the viewer is on this slot's waitlist
    closed: bool = False  # reserved for courses the viewer does not belong to

    @property
    def reserved_for(self) -> str:
        return reserved_for(self.slot) if self.slot.courses else ""

    @property
    def places_left(self) -> int:
        return max(self.slot.capacity - self.booked, 0)

    @property
    def is_past(self) -> bool:
        return self.slot.start_time <= self.now or self.slot.status == SlotStatus.COMPLETED

    @property
    def is_cancelled(self) -> bool:
        return self.slot.status == SlotStatus.CANCELLED

    @property
    def bookable(self) -> bool:
        return not (self.mine or self.is_past or self.is_cancelled or self.closed) and self.places_left > 0

    @property
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


@dataclass(frozen=True)
class GridDay:
    day: date
    cells: list[SlotCell]


@dataclass(frozen=True)
class SlotGrid:
    professor: User
    week_start: date
    timezone: str
    days: list[GridDay]

    @property
    def previous_week(self) -> date:
        return self.week_start - timedelta(days=7)

    @property
    def next_week(self) -> date:
        return self.week_start + timedelta(days=7)

    @property
    def is_empty(self) -> bool:
        return not any(day.cells for day in self.days)


async def my_bookings_on(session: AsyncSession, viewer: User | None, slot_ids: list[UUID]) -> dict[UUID, str]:
    """The viewer's active bookings on these slots: slot -> status (pending or confirmed)."""
    if viewer is None or not viewer.is_student or not slot_ids:
        return {}
    query = select(Booking.slot_id, Booking.status).where(
        Booking.student_id == viewer.id, Booking.status.in_(ACTIVE), Booking.slot_id.in_(slot_ids)
    )
    return {slot_id: status for slot_id, status in (await session.execute(query)).all()}


async def my_waitlist(
    session: AsyncSession, viewer: User | None, slot_ids: list[UUID]
) -> tuple[dict[UUID, datetime], set[UUID]]:
    """The viewer's held offers (slot -> hold end) and the slots whose waitlist they are on."""
    if viewer is None or not viewer.is_student or not slot_ids:
        return {}, set()
    query = select(
        WaitlistEntry.slot_id, WaitlistEntry.offered_slot_id, WaitlistEntry.status, WaitlistEntry.hold_expires_at
    ).where(
        WaitlistEntry.student_id == viewer.id,
        WaitlistEntry.status.in_((WaitlistStatus.WAITING.value, WaitlistStatus.OFFERED.value)),
        WaitlistEntry.slot_id.in_(slot_ids) | WaitlistEntry.offered_slot_id.in_(slot_ids),
    )
    offers: dict[UUID, datetime] = {}
    waiting: set[UUID] = set()
    now = utcnow()
    for slot_id, offered_slot_id, status, hold in (await session.execute(query)).all():
        if status == WaitlistStatus.OFFERED and offered_slot_id and hold and hold > now:
            offers[offered_slot_id] = hold
        elif status == WaitlistStatus.WAITING and slot_id:
            waiting.add(slot_id)
    return offers, waiting


async def build_cells(
    session: AsyncSession, rows: list[ConsultationSlot], viewer: User | None, timezone: str | None = None
) -> list[SlotCell]:
    """The cells as `viewer` sees them, times in `timezone` (else the viewer's own, else the professor's)."""
    ids = [slot.id for slot in rows]
    places = await places_on(session, ids)
    mine = await my_bookings_on(session, viewer, ids)
    offers, waiting = await my_waitlist(session, viewer, ids)
    closed = await closed_to(session, viewer, ids) if viewer is not None else set()
    now = utcnow()
    return [
        SlotCell(
            slot=slot,
            booked=places[slot.id].taken if slot.id in places else 0,
            mine=mine.get(slot.id),
            now=now,
            timezone=timezone or (viewer.timezone if viewer else slot.professor.timezone),
            offer_until=offers.get(slot.id),
            waiting=slot.id in waiting,
            closed=slot.id in closed,
        )
        for slot in rows
    ]


async def build_week(
    slots: SlotService, professor: User, viewer: User | None, week_start: date, timezone: str | None = None
) -> SlotGrid:
    timezone = timezone or (viewer.timezone if viewer else professor.timezone)
    start, end = day_bounds(week_start, week_start + timedelta(days=6), timezone)
    rows = await slots.find_slots(slot_filters(professor.id, start, end), limit=1000)
    rows = [slot for slot in rows if slot.status != SlotStatus.CANCELLED]
    cells = await build_cells(slots.repository.session, rows, viewer, timezone)
    zone = ZoneInfo(timezone)
    days = [
        GridDay(
            day=week_start + timedelta(days=offset),
            cells=[
                c for c in cells if c.slot.start_time.astimezone(zone).date() == week_start + timedelta(days=offset)
            ],
        )
        for offset in range(7)
    ]
    return SlotGrid(professor=professor, week_start=week_start, timezone=timezone, days=days)
