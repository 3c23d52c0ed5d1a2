"""Bookings: taking a place (capacity decided under the slot's lock), and each party's moves on it afterwards."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import ColumnElement, func, or_, select

from app.domain.accounts.models import User
from app.domain.consultations.admission import professor_profile, require_bookable, require_eligible, take_place
from app.domain.consultations.capacity import lock_slot, places_of, refresh_slot_status
from app.domain.consultations.events import NotificationKind, booking_changed
from app.domain.consultations.models import ACTIVE, Booking, BookingStatus, ConsultationSlot
from app.domain.consultations.rules import text_problems
from app.domain.consultations.waitlist import accepted, open_offer, place_freed
from app.domain.notifications.services import NotificationService
from app.lib.clock import utcnow
from app.lib.errors import INTEGRITY_ERRORS, ConflictError, FieldErrors, Forbidden, NotFound
from app.lib.live import announce
from app.lib.unit_of_work import savepoint


class BookingService(SQLAlchemyAsyncRepositoryService[Booking]):
    class Repository(SQLAlchemyAsyncRepository[Booking]):
        model_type = Booking

    repository_type = Repository

    @property
    def notifications(self) -> NotificationService:
        return NotificationService(session=self.repository.session)

    async def book_slot(self, student: User, slot_id: UUID, topic: str = "") -> Booking:
        """Book a place, deciding capacity under a lock on the slot row: no rush can overbook it.

        A refused attempt undoes itself at once (a savepoint), which also releases the slot for the next student.
        """
        try:
            async with savepoint(self.repository.session):
                return await self._book(student, slot_id, topic.strip())
        except INTEGRITY_ERRORS as exc:  # the partial unique index or the exclusion constraint caught a race
            raise ConflictError("You already hold a booking at this time.") from exc

    async def _book(self, student: User, slot_id: UUID, topic: str) -> Booking:
        if errors := text_problems({"topic": topic}):
            raise FieldErrors(errors)
        if not student.is_student:
            raise ConflictError("Only students can book consultation slots.")
        session = self.repository.session
        slot = await lock_slot(session, slot_id)
        profile = professor_profile(slot)
        require_bookable(slot, profile)
        # A student holding a waitlist offer for this slot takes the held place.
        offer = await open_offer(session, slot, student)
        if offer is None and (await places_of(session, slot)).taken >= slot.capacity:
            raise ConflictError("This slot is full.")
        await require_eligible(session, student, slot, profile)
        if offer is not None:
            accepted(offer)  # before the booking, so the held place is not counted twice
        return await take_place(session, slot, student, topic, profile)

    async def get_visible(self, user: User, booking_id: UUID) -> Booking:
        """A booking its student or its slot's professor may see; anyone else gets NotFound."""
        query = (
            select(Booking)
            .join(ConsultationSlot, Booking.slot_id == ConsultationSlot.id)
            .where(
                Booking.id == booking_id,
                or_(Booking.student_id == user.id, ConsultationSlot.professor_id == user.id),
            )
        )
        booking: Booking | None = (await self.repository.session.scalars(query)).unique().one_or_none()
        if booking is None:
            raise NotFound("Booking not found.")
        return booking

    def _filters(self, user: User, status: str | None, upcoming: bool | None) -> list[ColumnElement[bool]]:
        """A student's own bookings, or the bookings on a professor's slots."""
        owner = ConsultationSlot.professor_id == user.id if user.is_professor else Booking.student_id == user.id
        filters: list[ColumnElement[bool]] = [owner]
        if status is not None:
            filters.append(Booking.status == status)
        if upcoming is True:
            filters.append(Booking.end_time > utcnow())
        elif upcoming is False:
            filters.append(Booking.end_time <= utcnow())
        return filters

    async def list_for(
        self, user: User, *, status: str | None = None, upcoming: bool | None = None, limit: int = 100, offset: int = 0
    ) -> list[Booking]:
        base = select(Booking).join(ConsultationSlot, Booking.slot_id == ConsultationSlot.id)
        order = Booking.start_time.asc() if upcoming is not False else Booking.start_time.desc()
        query = base.where(*self._filters(user, status, upcoming)).order_by(order).limit(limit).offset(offset)
        return list((await self.repository.session.scalars(query)).unique().all())

    async def count_for(self, user: User, *, status: str | None = None, upcoming: bool | None = None) -> int:
        query = (
            select(func.count())
            .select_from(Booking)
            .join(ConsultationSlot, Booking.slot_id == ConsultationSlot.id)
            .where(*self._filters(user, status, upcoming))
        )
        return int(await self.repository.session.scalar(query) or 0)

    async def _transition(self, user: User, booking_id: UUID) -> tuple[Booking, ConsultationSlot]:
        """Lock the slot first, then the booking: the same order as booking, so no deadlock."""
        booking = await self.get_visible(user, booking_id)
        slot = await lock_slot(self.repository.session, booking.slot_id)
        await self.repository.session.execute(select(Booking.id).where(Booking.id == booking.id).with_for_update())
        await self.repository.session.refresh(booking)
        return booking, slot

    async def confirm(self, professor: User, booking_id: UUID) -> Booking:
        booking, slot = await self._transition(professor, booking_id)
        require_professor(professor, slot)
        if booking.status != BookingStatus.PENDING:
            raise ConflictError(f"Only a pending booking can be confirmed; this one is {booking.status}.")
        if slot.start_time <= utcnow():
            raise ConflictError("This consultation has started; it can no longer be confirmed.")
        booking.status, booking.confirmed_at = BookingStatus.CONFIRMED.value, utcnow()
        booking.sequence += 1
        await self.notifications.record(
            user_id=booking.student_id, booking_id=booking.id, kind=NotificationKind.BOOKING_CONFIRMED
        )
        booking_changed.send(self.repository.session, booking.id)
        await announce(self.repository.session, "booking_changed", slot.professor_id, slot.id, booking.id)
        return booking

    async def cancel(self, user: User, booking_id: UUID, reason: str = "") -> Booking:
        booking, slot = await self._transition(user, booking_id)
        reason = reason.strip()
        if errors := text_problems({"reason": reason}):
            raise FieldErrors(errors)
        if booking.status not in ACTIVE:
            raise ConflictError(f"Only a pending or confirmed booking can be cancelled; this one is {booking.status}.")
        by_professor = slot.professor_id == user.id
        if by_professor and not reason:
            raise FieldErrors.single("reason", "Tell the student why you cancel.")
        if not by_professor:
            notice = professor_profile(slot).cancellation_notice_hours
            if utcnow() > slot.start_time - timedelta(hours=notice):
                raise ConflictError(f"Bookings can be cancelled up to {notice} hours before the start.")
        # A professor saying no to a request declines it: an outcome of its own, in wording and in the data.
        declined = by_professor and booking.status == BookingStatus.PENDING
        booking.status = (BookingStatus.DECLINED if declined else BookingStatus.CANCELLED).value
        booking.cancelled_by, booking.cancel_reason, booking.cancelled_at = user.id, reason, utcnow()
        booking.sequence += 1
        await place_freed(self.repository.session, slot)
        await refresh_slot_status(self.repository.session, slot)
        if by_professor:
            kind = NotificationKind.BOOKING_DECLINED if declined else NotificationKind.BOOKING_CANCELLED
            recipient = booking.student_id
        else:
            kind, recipient = NotificationKind.BOOKING_CANCELLED, slot.professor_id
        await self.notifications.record(user_id=recipient, booking_id=booking.id, kind=kind, context={"reason": reason})
        booking_changed.send(self.repository.session, booking.id)
        await announce(self.repository.session, "booking_changed", slot.professor_id, slot.id, booking.id)
        return booking

    async def decline(self, professor: User, booking_id: UUID, reason: str = "") -> Booking:
        """pending -> declined, by the professor, with a reason for the student."""
        booking = await self.get_visible(professor, booking_id)
        if booking.slot.professor_id != professor.id:
            raise Forbidden("Only the professor of this slot can do that.")
        if booking.status != BookingStatus.PENDING:
            raise ConflictError(f"Only a pending request can be declined; this one is {booking.status}.")
        return await self.cancel(professor, booking_id, reason)

    async def mark_outcome(self, professor: User, booking_id: UUID, outcome: BookingStatus) -> Booking:
        """confirmed -> completed | no_show, by the professor, once the consultation has started."""
        booking, slot = await self._transition(professor, booking_id)
        require_professor(professor, slot)
        if booking.status != BookingStatus.CONFIRMED:
            raise ConflictError(
                f"Only a confirmed booking can be marked {outcome.value}; this one is {booking.status}."
            )
        if slot.start_time > utcnow():
            raise ConflictError("The consultation has not started yet.")
        booking.status = outcome.value
        await announce(self.repository.session, "booking_changed", slot.professor_id, slot.id, booking.id)
        return booking


def require_professor(user: User, slot: ConsultationSlot) -> None:
    if slot.professor_id != user.id:
        # The student of the booking may see it, but only its professor decides on it.
        raise Forbidden("Only the professor of this slot can do that.")
