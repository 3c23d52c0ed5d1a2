"""Bookings: taking a place (capacity decided under the slot's lock), and each party's moves on it afterwards."""

from __future__ import annotations

from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User
from app.domain.consultations.admission import professor_profile, require_bookable, require_eligible, take_place
from app.domain.consultations.capacity import is_full, lock_slot, places_of, refresh_slot_status
from app.domain.consultations.choices import StudentChoices, cancellation_deadline, student_choices
from app.domain.consultations.events import NotificationKind, booking_changed
from app.domain.consultations.links import (
    PROFESSOR_ACTIONS,
    ActionLink,
    LinkExpired,
    LinkForAnotherAccount,
    LinkInvalid,
    LinkUsed,
)
from app.domain.consultations.models import (
    ACTIVE,
    Booking,
    BookingStatus,
    ConsultationNote,
    ConsultationSlot,
    WaitlistEntry,
)
from app.domain.consultations.rules import text_problems
from app.domain.consultations.states import status_word
from app.domain.consultations.waitlist import accepted, open_offer, place_freed
from app.domain.notifications.services import NotificationService
from app.lib.clock import utcnow
from app.lib.errors import INTEGRITY_ERRORS, ConflictError, FieldErrors, Forbidden, NotFound
from app.lib.formatting import describe_time
from app.lib.i18n import gettext as _
from app.lib.live import announce
from app.lib.metrics import BOOKING_CONFLICTS
from app.lib.unit_of_work import savepoint


async def claim_place(session: AsyncSession, slot: ConsultationSlot, student: User) -> tuple[WaitlistEntry | None, int]:
    """Whether the student gets a place on the locked slot: the one held for them (a waitlist offer), else a free
    one (or the slot is full). Returns their offer, if any, and the places taken once they have booked."""
    places = await places_of(session, slot)
    offer = await open_offer(session, slot, student) if places.held else None  # held places are counted above
    if offer is None and places.taken >= slot.capacity:
        raise slot_full()
    return offer, places.taken if offer is not None else places.taken + 1


class BookingService(SQLAlchemyAsyncRepositoryService[Booking]):
    class Repository(SQLAlchemyAsyncRepository[Booking]):
        model_type = Booking

    repository_type = Repository

    @property
    def notifications(self) -> NotificationService:
        return NotificationService(session=self.repository.session)

    async def book_slot(self, student: User, slot_id: UUID, topic: str = "") -> Booking:
        """Book a place, deciding capacity under a lock on the slot row: no rush can overbook it.

        A refusal raises ConflictError (or FieldErrors) and may leave the transaction unusable (a constraint caught a
        race) and the slot locked until it ends: a caller that goes on after a refusal makes the attempt a savepoint
        (lib/unit_of_work), which undoes it and releases the slot at once. An API request just ends, undone; that
        spares each booking of a rush two round trips under the lock.
        """
        topic = topic.strip()
        try:
            if errors := text_problems({"topic": topic}):
                raise FieldErrors(errors)
            if not student.is_student:
                raise ConflictError(_("Only students can book consultation slots."))
            if await is_full(self.repository.session, slot_id):
                raise slot_full()
            return await self._book(student, slot_id, topic)
        except INTEGRITY_ERRORS as exc:  # the partial unique index or the exclusion constraint caught a race
            BOOKING_CONFLICTS.inc()
            raise ConflictError(_("You already hold a booking at this time.")) from exc
        except ConflictError:
            BOOKING_CONFLICTS.inc()
            raise

    async def _book(self, student: User, slot_id: UUID, topic: str) -> Booking:
        """The booking decision, under the slot's lock."""
        session = self.repository.session
        slot = await lock_slot(session, slot_id)
        profile = professor_profile(slot)
        require_bookable(slot, profile)
        offer, taken = await claim_place(session, slot, student)
        await require_eligible(session, student, slot, profile)
        if offer is not None:
            accepted(offer)  # before the booking, so the held place is not counted twice
        return await take_place(session, slot, student, topic, profile, acknowledge=True, taken=taken)

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
            raise NotFound(_("Booking not found."))
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

    async def _transition(
        self, user: User, booking_id: UUID, sequence: int | None = None
    ) -> tuple[Booking, ConsultationSlot]:
        """Lock the slot first, then the booking: the same order as booking, so no deadlock.

        `sequence`: the version of the booking an e-mailed link was made for; any other version refuses (LinkUsed).
        """
        booking = await self.get_visible(user, booking_id)
        slot = await lock_slot(self.repository.session, booking.slot_id)
        await self._lock(booking, sequence)
        return booking, slot

    async def _lock(self, booking: Booking, sequence: int | None) -> None:
        """Lock the booking's row (its slot is locked already) and read it afresh."""
        await self.repository.session.execute(select(Booking.id).where(Booking.id == booking.id).with_for_update())
        await self.repository.session.refresh(booking)
        if sequence is not None and booking.sequence != sequence:
            raise LinkUsed()

    async def confirm(self, professor: User, booking_id: UUID, *, sequence: int | None = None) -> Booking:
        booking, slot = await self._transition(professor, booking_id, sequence)
        require_professor(professor, slot)
        if booking.status != BookingStatus.PENDING:
            raise ConflictError(
                _(
                    "Only a pending booking can be confirmed; this one is %(status)s.",
                    status=status_word(booking.status),
                )
            )
        if slot.start_time <= utcnow():
            raise ConflictError(_("This consultation has started; it can no longer be confirmed."))
        booking.status, booking.confirmed_at = BookingStatus.CONFIRMED.value, utcnow()
        booking.sequence += 1
        await self.notifications.record(
            user_id=booking.student_id, booking_id=booking.id, kind=NotificationKind.BOOKING_CONFIRMED
        )
        booking_changed.send(self.repository.session, booking.id)
        await announce(self.repository.session, "booking_changed", slot.professor_id, slot.id, booking.id)
        return booking

    async def cancel(
        self,
        user: User,
        booking_id: UUID,
        reason: str = "",
        *,
        sequence: int | None = None,
        closing_account: bool = False,
    ) -> Booking:
        """`closing_account`: the student's account is being erased, so the cancellation notice does not apply."""
        booking, slot = await self._transition(user, booking_id, sequence)
        reason = reason.strip()
        if errors := text_problems({"reason": reason}):
            raise FieldErrors(errors)
        if booking.status not in ACTIVE:
            raise ConflictError(
                _(
                    "Only a pending or confirmed booking can be cancelled; this one is %(status)s.",
                    status=status_word(booking.status),
                )
            )
        by_professor = slot.professor_id == user.id
        if by_professor and not reason:
            raise FieldErrors.single("reason", _("Tell the student why you cancel."))
        if not by_professor and not closing_account and utcnow() > cancellation_deadline(slot):
            notice = professor_profile(slot).cancellation_notice_hours
            raise ConflictError(_("Bookings can be cancelled up to %(notice)s hours before the start.", notice=notice))
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
            await self._withdraw_from_calendar(booking, {"reason": reason})
        await self.notifications.record(user_id=recipient, booking_id=booking.id, kind=kind, context={"reason": reason})
        booking_changed.send(self.repository.session, booking.id)
        await announce(self.repository.session, "booking_changed", slot.professor_id, slot.id, booking.id)
        return booking

    async def decline(
        self, professor: User, booking_id: UUID, reason: str = "", *, sequence: int | None = None
    ) -> Booking:
        """pending -> declined, by the professor, with a reason for the student."""
        booking, slot = await self._transition(professor, booking_id, sequence)
        require_professor(professor, slot)
        if booking.status != BookingStatus.PENDING:
            raise ConflictError(
                _("Only a pending request can be declined; this one is %(status)s.", status=status_word(booking.status))
            )
        if not reason.strip():
            raise FieldErrors.single("reason", _("Tell the student why you decline the request."))
        return await self.cancel(professor, booking_id, reason)

    async def reschedule(
        self, student: User, booking_id: UUID, slot_id: UUID, *, sequence: int | None = None
    ) -> Booking:
        """Move the student's booking to another free slot of the same professor, in one step.

        The current place is kept until the new one is taken: both slots are locked (in id order, so two moves
        between the same slots cannot deadlock), the new place is taken under the usual rules, then the old booking
        is cancelled ("Moved to ..."). Anything refused undoes the whole move (a savepoint); nothing changes.
        """
        try:
            async with savepoint(self.repository.session):
                return await self._reschedule(student, booking_id, slot_id, sequence)
        except INTEGRITY_ERRORS as exc:  # the partial unique index or the exclusion constraint caught a race
            raise ConflictError(_("You already hold a booking at this time.")) from exc

    async def _reschedule(self, student: User, booking_id: UUID, slot_id: UUID, sequence: int | None) -> Booking:
        session = self.repository.session
        booking = await self.get_visible(student, booking_id)
        if booking.student_id != student.id:
            raise NotFound(_("Booking not found."))
        if slot_id == booking.slot_id:
            raise ConflictError(_("Your booking is at this time already; choose another time."))
        locked = {each: await lock_slot(session, each) for each in sorted((booking.slot_id, slot_id))}
        old_slot, new_slot = locked[booking.slot_id], locked[slot_id]
        await self._lock(booking, sequence)
        if booking.status not in ACTIVE:
            raise ConflictError(
                _(
                    "Only a pending or confirmed booking can be moved; this one is %(status)s.",
                    status=status_word(booking.status),
                )
            )
        profile = professor_profile(old_slot)
        if not profile.students_may_reschedule:
            raise Forbidden(
                _(
                    "%(full_name)s does not let students move bookings; cancel it and book again.",
                    full_name=old_slot.professor.full_name,
                )
            )
        if utcnow() > cancellation_deadline(old_slot):
            raise ConflictError(
                _(
                    "Bookings can be moved up to %(cancellation_notice_hours)s hours before the start.",
                    cancellation_notice_hours=profile.cancellation_notice_hours,
                )
            )
        if new_slot.professor_id != old_slot.professor_id:
            raise ConflictError(_("A booking moves only to another time of the same professor."))
        require_bookable(new_slot, profile)
        offer, taken = await claim_place(session, new_slot, student)
        await require_eligible(session, student, new_slot, profile, moving=booking)
        if offer is not None:
            accepted(offer)
        moved = await take_place(
            session, new_slot, student, booking.topic, profile, acknowledge=True, moved_from=booking, taken=taken
        )
        when = describe_time(new_slot.start_time, new_slot.end_time, student.timezone)
        booking.status, booking.cancelled_by, booking.cancelled_at = BookingStatus.CANCELLED.value, student.id, utcnow()
        booking.cancel_reason = _("Moved to %(when)s", when=when)  # in the mover's language, as they read it
        booking.sequence += 1
        # The e-mail says it again in its reader's language, from the new times kept with it.
        moved_to = {"moved_to_start": new_slot.start_time.isoformat(), "moved_to_end": new_slot.end_time.isoformat()}
        await self._withdraw_from_calendar(booking, {"reason": booking.cancel_reason, "moved": True, **moved_to})
        # The professor's notes for the consultation go with it.
        await session.execute(
            update(ConsultationNote).where(ConsultationNote.booking_id == booking.id).values(booking_id=moved.id)
        )
        await place_freed(session, old_slot)
        await refresh_slot_status(session, old_slot)
        booking_changed.send(session, booking.id)
        await announce(session, "booking_changed", old_slot.professor_id, old_slot.id, booking.id)
        return moved

    async def _withdraw_from_calendar(self, booking: Booking, context: dict[str, object]) -> None:
        """The student cancelled or moved a booking they had an invitation (iCalendar REQUEST) for: they get the
        CANCEL, so that their calendar app removes the event too."""
        if booking.confirmed_at is not None:
            await self.notifications.record(
                user_id=booking.student_id,
                booking_id=booking.id,
                kind=NotificationKind.BOOKING_CANCELLED,
                context=context,
            )

    async def for_link(self, link: ActionLink, viewer: User | None) -> tuple[User, Booking]:
        """The person an e-mailed link acts for, and the booking it names, while the link still holds.

        Refused: while someone else is signed in (LinkForAnotherAccount), once it expired or the consultation began
        (LinkExpired), once the booking changed since the link was made or left the state it was made for (LinkUsed).
        """
        if viewer is not None and viewer.id != link.user_id:
            raise LinkForAnotherAccount()
        now = utcnow()
        if link.expired(now):
            raise LinkExpired()
        actor = await self.repository.session.get(User, link.user_id)
        if actor is None or not actor.is_active:
            raise LinkInvalid()
        try:
            booking = await self.get_visible(actor, link.booking_id)
        except NotFound as exc:
            raise LinkInvalid() from exc
        party = booking.slot.professor_id if link.action in PROFESSOR_ACTIONS else booking.student_id
        if party != actor.id:
            raise LinkInvalid()
        if booking.start_time <= now:
            raise LinkExpired()
        if booking.sequence != link.sequence or booking.status not in ACTIVE:
            raise LinkUsed()
        if link.action in PROFESSOR_ACTIONS and booking.status != BookingStatus.PENDING:
            raise LinkUsed()
        return actor, booking

    async def student_choices(self, student: User, booking: Booking) -> StudentChoices:
        """Whether the student may still cancel or move `booking`, and the free slots it could move to."""
        return await student_choices(self.repository.session, student, booking)

    async def mark_outcome(self, professor: User, booking_id: UUID, outcome: BookingStatus) -> Booking:
        """confirmed -> completed | no_show, by the professor, once the consultation has started."""
        booking, slot = await self._transition(professor, booking_id)
        require_professor(professor, slot)
        if booking.status != BookingStatus.CONFIRMED:
            raise ConflictError(
                _(
                    "Only a confirmed booking can be marked %(outcome)s; this one is %(status)s.",
                    outcome=status_word(outcome.value),
                    status=status_word(booking.status),
                )
            )
        if slot.start_time > utcnow():
            raise ConflictError(_("The consultation has not started yet."))
        booking.status = outcome.value
        await announce(self.repository.session, "booking_changed", slot.professor_id, slot.id, booking.id)
        return booking


def require_professor(user: User, slot: ConsultationSlot) -> None:
    if slot.professor_id != user.id:
        # The student of the booking may see it, but only its professor decides on it.
        raise Forbidden(_("Only the professor of this slot can do that."))


def slot_full() -> ConflictError:
    return ConflictError(_("This slot is full."))
