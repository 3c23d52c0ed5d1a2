"""The waitlist: join, leave, fair promotion (first come, first served) into held places, accept, decline, expire.

A freed place is decided under the same slot row lock as bookings, so holds and bookings together never exceed
the capacity and no place is given twice, however many cancellations happen at once.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.accounts.models import User
from app.domain.consultations.admission import (
    holds_booking_on,
    professor_profile,
    require_bookable,
    require_eligible,
    take_place,
)
from app.domain.consultations.capacity import holds_a_place, lock_slot, places_of, refresh_slot_status
from app.domain.consultations.courses import require_course_member
from app.domain.consultations.events import NotificationKind
from app.domain.consultations.models import Booking, ConsultationSlot, SlotStatus, WaitlistEntry, WaitlistStatus
from app.domain.consultations.rules import MAX_WAIT_WINDOW, hold_until
from app.domain.notifications.services import NotificationService
from app.lib.clock import utcnow
from app.lib.errors import INTEGRITY_ERRORS, ConflictError, FieldErrors, NotFound
from app.lib.formatting import describe_time
from app.lib.i18n import gettext as _
from app.lib.live import announce
from app.lib.metrics import promotion_after_commit
from app.lib.unit_of_work import savepoint


def matching_entries(slot: ConsultationSlot) -> Any:
    """Waiting entries this slot can serve: for the slot itself, or for its professor's window around it."""
    return or_(
        WaitlistEntry.slot_id == slot.id,
        (WaitlistEntry.slot_id.is_(None))
        & (WaitlistEntry.professor_id == slot.professor_id)
        & (WaitlistEntry.window_start <= slot.start_time)
        & (WaitlistEntry.window_end >= slot.end_time),
    )


async def open_offer(session: AsyncSession, slot: ConsultationSlot, student: User) -> WaitlistEntry | None:
    """The student's live offer of a held place on this slot, if any."""
    query = select(WaitlistEntry).where(
        WaitlistEntry.offered_slot_id == slot.id,
        WaitlistEntry.student_id == student.id,
        holds_a_place(utcnow()),
    )
    entry: WaitlistEntry | None = (await session.scalars(query)).unique().first()
    return entry


def accepted(offer: WaitlistEntry) -> None:
    offer.status, offer.offer_nonce = WaitlistStatus.ACCEPTED.value, None


async def place_freed(session: AsyncSession, slot: ConsultationSlot) -> None:
    """Give free places (the caller holds the slot lock) to the first eligible waiting students."""
    profile = professor_profile(slot)
    now = utcnow()
    if slot.status in (SlotStatus.CANCELLED, SlotStatus.COMPLETED) or slot.start_time <= now:
        return
    await session.flush()  # the change that freed the place counts
    free = slot.capacity - (await places_of(session, slot)).taken
    if free <= 0:
        return
    # Locked in creation order: concurrent promotions on other slots wait, then skip whom we took.
    candidates = (
        await session.scalars(
            select(WaitlistEntry)
            .where(WaitlistEntry.status == WaitlistStatus.WAITING.value, matching_entries(slot))
            .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
            .with_for_update(of=WaitlistEntry)
        )
    ).unique()
    notifications = NotificationService(session=session)
    for entry in candidates:
        if free <= 0:
            break
        try:
            await require_eligible(session, entry.student, slot, profile)
        except ConflictError:
            continue  # busy then, booked already or at the limit: the next in line gets it
        if profile.waitlist_auto_book:
            booking = await take_place(session, slot, entry.student, "", profile)
            entry.status, entry.offered_slot_id = WaitlistStatus.ACCEPTED.value, slot.id
            await notifications.record(
                user_id=entry.student_id,
                booking_id=booking.id,
                kind=NotificationKind.WAITLIST_BOOKED,
                variant=str(entry.id),
            )
            promotion_after_commit(session, "booked")
        else:
            entry.status, entry.offered_slot_id = WaitlistStatus.OFFERED.value, slot.id
            entry.hold_expires_at, entry.offer_nonce = hold_until(slot, profile, now), secrets.token_urlsafe(24)
            await notifications.record(
                user_id=entry.student_id,
                booking_id=None,
                kind=NotificationKind.WAITLIST_OFFER,
                variant=f"{entry.id}:{slot.id}",
                context=offer_context(entry, slot),
            )
            promotion_after_commit(session, "offered")
        free -= 1
    await session.flush()
    await announce(session, "slot_changed", slot.professor_id, slot.id)


def offer_context(entry: WaitlistEntry, slot: ConsultationSlot) -> dict[str, Any]:
    settings = get_settings()
    return {
        "slot_id": str(slot.id),
        "professor": slot.professor.full_name,
        "start": slot.start_time.isoformat(),
        "end": slot.end_time.isoformat(),
        "location": slot.location,
        "hold_expires_at": entry.hold_expires_at.isoformat() if entry.hold_expires_at else "",
        "accept_url": f"{settings.app_url}/waitlist/{entry.id}/accept?t={entry.offer_nonce}",
    }


class WaitlistService(SQLAlchemyAsyncRepositoryService[WaitlistEntry]):
    class Repository(SQLAlchemyAsyncRepository[WaitlistEntry]):
        model_type = WaitlistEntry

    repository_type = Repository

    async def join_slot(self, student: User, slot_id: UUID) -> WaitlistEntry:
        session = self.repository.session
        slot = await lock_slot(session, slot_id)  # the same lock as booking
        require_bookable(slot, professor_profile(slot))
        await require_course_member(session, student, slot)
        if (await places_of(session, slot)).taken < slot.capacity:
            raise ConflictError(_("This slot has free places: book it instead."))
        if await holds_booking_on(session, slot, student):
            raise ConflictError(_("You have booked this slot already."))
        if await self.get_one_or_none(slot_id=slot.id, student_id=student.id, status=WaitlistStatus.WAITING.value):
            raise ConflictError(_("You are on this slot's waitlist already."))
        try:
            async with savepoint(session):
                return await self.create(
                    {
                        "professor_id": slot.professor_id,
                        "student_id": student.id,
                        "slot_id": slot.id,
                        "window_start": slot.start_time,
                        "window_end": slot.end_time,
                    },
                )
        except INTEGRITY_ERRORS as exc:
            raise ConflictError(_("You are on this slot's waitlist already.")) from exc

    async def join_window(self, student: User, professor: User, start: datetime, end: datetime) -> WaitlistEntry:
        """Wait for any free slot of the professor between start and end (e.g. "Tue–Thu")."""
        errors: dict[str, str] = {}
        for name, value in (("start", start), ("end", end)):
            if value.tzinfo is None:
                errors[name] = _("Give a timestamp with a UTC offset.")
        if not errors and end <= start:
            errors["end"] = _("The end must be after the start.")
        elif not errors and end - start > MAX_WAIT_WINDOW:
            errors["end"] = _("Wait for at most two weeks at once.")
        elif not errors and end <= utcnow():
            errors["end"] = _("The window has passed.")
        if errors:
            raise FieldErrors(errors)
        return await self.create(
            {
                "professor_id": professor.id,
                "student_id": student.id,
                "slot_id": None,
                "window_start": start.astimezone(UTC),
                "window_end": end.astimezone(UTC),
            },
        )

    async def leave(self, student: User, slot_id: UUID) -> None:
        entry = await self.get_one_or_none(slot_id=slot_id, student_id=student.id, status=WaitlistStatus.WAITING.value)
        if entry is None:
            raise NotFound(_("You are not on this slot's waitlist."))
        entry.status = WaitlistStatus.LEFT.value

    async def leave_entry(self, student: User, entry_id: UUID) -> None:
        """Leave a waiting place (for a slot or a window) by its id."""
        entry = await self.get_one_or_none(id=entry_id, student_id=student.id, status=WaitlistStatus.WAITING.value)
        if entry is None:
            raise NotFound(_("You are not waiting there."))
        entry.status = WaitlistStatus.LEFT.value

    async def position(self, entry: WaitlistEntry) -> int | None:
        """1 for the next in line; None once the entry is no longer waiting."""
        if entry.status != WaitlistStatus.WAITING:
            return None
        same_queue = (
            WaitlistEntry.slot_id == entry.slot_id
            if entry.slot_id is not None
            else (WaitlistEntry.slot_id.is_(None)) & (WaitlistEntry.professor_id == entry.professor_id)
        )
        ahead = await self.repository.session.scalar(
            select(func.count())
            .select_from(WaitlistEntry)
            .where(
                same_queue,
                WaitlistEntry.status == WaitlistStatus.WAITING.value,
                (WaitlistEntry.created_at < entry.created_at)
                | ((WaitlistEntry.created_at == entry.created_at) & (WaitlistEntry.id < entry.id)),
            )
        )
        return int(ahead or 0) + 1

    async def entries_of(self, student: User) -> list[WaitlistEntry]:
        query = (
            select(WaitlistEntry)
            .where(WaitlistEntry.student_id == student.id)
            .order_by(WaitlistEntry.created_at.desc())
        )
        return list((await self.repository.session.scalars(query.limit(200))).unique().all())

    async def _open_offer(self, student: User, entry_id: UUID) -> tuple[WaitlistEntry, ConsultationSlot]:
        entry = await self.get_one_or_none(id=entry_id, student_id=student.id)
        if entry is None or entry.offered_slot_id is None:
            raise NotFound(_("Waitlist offer not found."))
        slot = await lock_slot(self.repository.session, entry.offered_slot_id)  # the same lock as booking
        await self.repository.session.refresh(entry)
        if entry.status != WaitlistStatus.OFFERED:
            raise ConflictError(_("This offer is no longer open."))
        if entry.hold_expires_at is None or entry.hold_expires_at <= utcnow():
            raise ConflictError(_("This offer has expired; the place went to the next student."))
        return entry, slot

    async def accept(self, student: User, entry_id: UUID, nonce: str | None = None) -> Booking:
        """Take the held place. With a link, its single-use nonce must match."""
        session = self.repository.session
        entry, slot = await self._open_offer(student, entry_id)
        if nonce is not None and not secrets.compare_digest(nonce, entry.offer_nonce or ""):
            raise ConflictError(_("This link is not valid (it may have been used already)."))
        profile = professor_profile(slot)
        await require_eligible(session, student, slot, profile)
        accepted(entry)  # before the booking, so the held place is not counted twice
        return await take_place(session, slot, student, "", profile)

    async def decline(self, student: User, entry_id: UUID) -> WaitlistEntry:
        entry, slot = await self._open_offer(student, entry_id)
        entry.status, entry.offer_nonce = WaitlistStatus.LEFT.value, None
        await place_freed(self.repository.session, slot)
        await refresh_slot_status(self.repository.session, slot)
        return entry

    async def slots_with_expired_holds(self) -> list[UUID]:
        """Slots whose held places are past their time (each is settled on its own: `expire_holds_on`)."""
        query = (
            select(WaitlistEntry.offered_slot_id)
            .distinct()
            .where(WaitlistEntry.status == WaitlistStatus.OFFERED.value, WaitlistEntry.hold_expires_at <= utcnow())
        )
        return [slot_id for slot_id in (await self.repository.session.scalars(query)).all() if slot_id is not None]

    async def expire_holds_on(self, slot_id: UUID) -> int:
        """Holds on this slot past their time pass to the next student in line."""
        session = self.repository.session
        slot = await lock_slot(session, slot_id)  # the same lock as booking
        entries = (
            await session.scalars(
                select(WaitlistEntry)
                .where(
                    WaitlistEntry.offered_slot_id == slot_id,
                    WaitlistEntry.status == WaitlistStatus.OFFERED.value,
                    WaitlistEntry.hold_expires_at <= utcnow(),
                )
                .with_for_update(of=WaitlistEntry)
            )
        ).unique()
        expired = 0
        for entry in entries:
            entry.status, entry.offer_nonce = WaitlistStatus.EXPIRED.value, None
            expired += 1
        await place_freed(session, slot)
        await refresh_slot_status(session, slot)
        return expired

    async def lengths(self, slot_ids: list[UUID]) -> dict[UUID, int]:
        if not slot_ids:
            return {}
        query = (
            select(WaitlistEntry.slot_id, func.count())
            .where(WaitlistEntry.slot_id.in_(slot_ids), WaitlistEntry.status == WaitlistStatus.WAITING.value)
            .group_by(WaitlistEntry.slot_id)
        )
        return {slot_id: count for slot_id, count in (await self.repository.session.execute(query)).all()}


def describe_offer(entry: WaitlistEntry, timezone: str) -> str:
    if entry.offered_slot is None:
        return ""
    return describe_time(entry.offered_slot.start_time, entry.offered_slot.end_time, timezone)
