"""Places on a slot: taken by active bookings and by places held for waitlisted students.

Whether a place is free is decided under a lock on the slot's row (`lock_slot`): bookings, holds, promotions and
expiries all take the same lock first, so no rush can give one place twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import BindParameter, ColumnElement, ScalarSelect, and_, bindparam, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app.domain.consultations.models import (
    ACTIVE,
    Booking,
    ConsultationSlot,
    SlotStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from app.lib.clock import utcnow
from app.lib.database import run_core
from app.lib.errors import NotFound
from app.lib.i18n import gettext as _


@dataclass(frozen=True)
class Places:
    booked: int = 0  # active bookings
    held: int = 0  # places held for waitlisted students, until accepted or expired

    @property
    def taken(self) -> int:
        return self.booked + self.held


def booked_places(slot_id: Any) -> ScalarSelect[int]:
    """The active bookings of the slot `slot_id` names (a column to correlate with, or a value)."""
    return select(func.count()).where(Booking.slot_id == slot_id, Booking.status.in_(ACTIVE)).scalar_subquery()


def holds_a_place(now: Any) -> ColumnElement[bool]:
    """A waitlist entry whose offered place is still held for it at `now` (a value or a parameter)."""
    return and_(WaitlistEntry.status == WaitlistStatus.OFFERED.value, WaitlistEntry.hold_expires_at > now)


# Built once, run with the slots' ids and the moment (`ids`, `now`).
_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
PLACES = (
    select(Booking.slot_id.label("slot_id"), func.count().label("booked"), literal(0).label("held"))
    .where(Booking.slot_id.in_(_IDS), Booking.status.in_(ACTIVE))
    .group_by(Booking.slot_id)
    .union_all(
        select(WaitlistEntry.offered_slot_id, literal(0), func.count())
        .where(WaitlistEntry.offered_slot_id.in_(_IDS), holds_a_place(bindparam("now")))
        .group_by(WaitlistEntry.offered_slot_id)
    )
)


async def places_on(session: AsyncSession, slot_ids: Iterable[UUID]) -> dict[UUID, Places]:
    """Booked and held places of each slot, in one query (slots with neither are left out)."""
    ids = list(slot_ids)
    if not ids:
        return {}
    places: dict[UUID, Places] = {}
    for slot_id, booked_count, held_count in (await run_core(session, PLACES, {"ids": ids, "now": utcnow()})).all():
        current = places.get(slot_id, Places())
        places[slot_id] = Places(current.booked + booked_count, current.held + held_count)
    return places


async def places_of(session: AsyncSession, slot: ConsultationSlot) -> Places:
    return (await places_on(session, [slot.id])).get(slot.id, Places())


LOCK_SLOT = (
    select(ConsultationSlot)
    .where(ConsultationSlot.id == bindparam("slot"))
    .options(joinedload(ConsultationSlot.courses))
    .with_for_update(of=ConsultationSlot)
    .execution_options(populate_existing=True)  # the values as locked, also when the slot was read before
)


async def lock_slot(session: AsyncSession, slot_id: UUID) -> ConsultationSlot:
    """The slot, locked until the transaction ends (with its professor and their booking rules, and the courses it is
    reserved for, joined: one round trip under the lock instead of two)."""
    query = LOCK_SLOT.params(slot=slot_id)
    slot: ConsultationSlot | None = (await session.scalars(query)).unique().one_or_none()
    if slot is None:
        raise NotFound(_("Slot not found."))
    return slot


async def refresh_slot_status(session: AsyncSession, slot: ConsultationSlot, taken: int | None = None) -> None:
    """`booked` while bookings and held places fill the capacity, `available` otherwise (caller holds the lock).

    `taken`: the places taken now, when the caller has just counted them under the same lock.
    """
    if slot.status not in (SlotStatus.AVAILABLE, SlotStatus.BOOKED):
        return
    if taken is None:
        taken = (await places_of(session, slot)).taken
    slot.status = (SlotStatus.BOOKED if taken >= slot.capacity else SlotStatus.AVAILABLE).value


# A slot whose every place is booked and none merely held: a booking would be refused once its lock is taken.
FULL_SLOT = select(ConsultationSlot.id).where(
    ConsultationSlot.id == bindparam("slot"),
    ConsultationSlot.status == SlotStatus.BOOKED.value,
    ConsultationSlot.start_time > bindparam("now"),
    ~exists().where(WaitlistEntry.offered_slot_id == ConsultationSlot.id, holds_a_place(bindparam("now"))),
    booked_places(ConsultationSlot.id) >= ConsultationSlot.capacity,
)


async def is_full(session: AsyncSession, slot_id: UUID) -> bool:
    """Whether every place of the slot is booked (none held for a waitlisted student, who may take theirs), read
    without the lock. In a rush most attempts meet a full slot: they are answered from this one read, instead of
    locking the slot (queueing behind the booking that holds it) and loading it with its professor and courses. Only a
    refusal is decided here; a place is still only ever given under the lock."""
    return (await run_core(session, FULL_SLOT, {"slot": slot_id, "now": utcnow()})).first() is not None
