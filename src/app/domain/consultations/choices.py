"""What a student may still do with a booking: cancel it (until the professor's deadline) or move it to another
free slot of the same professor."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User
from app.domain.consultations.admission import professor_profile
from app.domain.consultations.courses import open_to
from app.domain.consultations.models import ACTIVE, Booking, ConsultationSlot, SlotStatus
from app.lib.clock import utcnow
from app.lib.errors import NotFound
from app.lib.i18n import gettext as _

# How far ahead a student is offered other times to move their booking to.
MOVE_WINDOW = timedelta(days=14)


@dataclass(frozen=True)
class StudentChoices:
    """What the student may still do with their booking (and why not): cancel it, or move it to a free slot."""

    cancel_until: datetime | None = None
    cancel_problem: str | None = None
    move_problem: str | None = None
    free_slots: list[ConsultationSlot] = field(default_factory=list)

    @property
    def can_cancel(self) -> bool:
        return self.cancel_problem is None

    @property
    def can_move(self) -> bool:
        return self.move_problem is None


def cancellation_deadline(slot: ConsultationSlot) -> datetime:
    """Until when the student may cancel (or move) a booking on this slot."""
    return slot.start_time - timedelta(hours=professor_profile(slot).cancellation_notice_hours)


async def student_choices(session: AsyncSession, student: User, booking: Booking) -> StudentChoices:
    """Whether the student may still cancel or move `booking`, and the free slots it could move to."""
    slot, profile = booking.slot, professor_profile(booking.slot)
    if booking.student_id != student.id:
        raise NotFound(_("Booking not found."))
    if booking.status not in ACTIVE:
        problem = _("This booking is no longer active: there is nothing to change.")
        return StudentChoices(cancel_problem=problem, move_problem=problem)
    deadline = cancellation_deadline(slot)
    if utcnow() > deadline:
        hours = profile.cancellation_notice_hours
        return StudentChoices(
            cancel_problem=_("Bookings can be cancelled up to %(notice)s hours before the start.", notice=hours),
            move_problem=_("Bookings can be moved up to %(notice)s hours before the start.", notice=hours),
        )
    if not profile.students_may_reschedule:
        problem = _(
            "%(full_name)s does not let students move bookings; cancel it and book again.",
            full_name=slot.professor.full_name,
        )
        return StudentChoices(cancel_until=deadline, move_problem=problem)
    return StudentChoices(cancel_until=deadline, free_slots=await free_slots_to_move_to(session, student, booking))


async def free_slots_to_move_to(session: AsyncSession, student: User, booking: Booking) -> list[ConsultationSlot]:
    """The professor's other slots of the next MOVE_WINDOW with a free place, at times the student is free."""
    now, profile = utcnow(), professor_profile(booking.slot)
    busy = exists().where(
        Booking.student_id == student.id,
        Booking.status.in_(ACTIVE),
        Booking.id != booking.id,
        Booking.start_time < ConsultationSlot.end_time,
        Booking.end_time > ConsultationSlot.start_time,
    )
    query = (
        select(ConsultationSlot)
        .where(
            ConsultationSlot.professor_id == booking.slot.professor_id,
            ConsultationSlot.status == SlotStatus.AVAILABLE.value,
            ConsultationSlot.id != booking.slot_id,
            ConsultationSlot.start_time >= now + timedelta(hours=profile.booking_notice_hours),
            ConsultationSlot.start_time < now + MOVE_WINDOW,
            open_to(student.id),
            ~busy,
        )
        .order_by(ConsultationSlot.start_time)
        .limit(200)
    )
    return list((await session.scalars(query)).unique().all())
