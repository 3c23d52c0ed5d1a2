"""Who may take a place on a slot, and taking it: shared by booking and by promotion from the waitlist.

Callers hold the slot's lock (capacity.lock_slot) and have decided that a place is free.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.domain.accounts.models import Profile, User
from app.domain.consultations.capacity import refresh_slot_status
from app.domain.consultations.courses import require_course_member
from app.domain.consultations.events import NotificationKind, booking_changed
from app.domain.consultations.models import ACTIVE, Booking, BookingStatus, ConsultationSlot, SlotStatus
from app.domain.consultations.rules import overlaps
from app.domain.notifications.services import Message, NotificationService
from app.lib.clock import utcnow
from app.lib.database import run_core
from app.lib.errors import ConflictError
from app.lib.formatting import describe_time
from app.lib.i18n import gettext as _
from app.lib.live import announce
from app.lib.metrics import booking_created_after_commit


def professor_profile(slot: ConsultationSlot) -> Profile:
    """The professor's booking rules; loaded with the slot (slot → professor → profile are joined eagerly)."""
    return slot.professor.profile


def require_bookable(slot: ConsultationSlot, profile: Profile) -> None:
    now = utcnow()
    if slot.status == SlotStatus.CANCELLED:
        raise ConflictError(_("This slot has been cancelled."))
    if slot.start_time <= now or slot.status == SlotStatus.COMPLETED:
        raise ConflictError(_("This slot is in the past."))
    if slot.start_time < now + timedelta(hours=profile.booking_notice_hours):
        raise ConflictError(
            _(
                "Book at least %(booking_notice_hours)s hours before the start.",
                booking_notice_hours=profile.booking_notice_hours,
            )
        )


async def holds_booking_on(session: AsyncSession, slot: ConsultationSlot, student: User) -> bool:
    mine = await session.scalar(
        select(func.count())
        .select_from(Booking)
        .where(Booking.slot_id == slot.id, Booking.student_id == student.id, Booking.status.in_(ACTIVE))
    )
    return bool(mine)


# One question for all three eligibility rules: the student's active bookings that overlap [start, end) (this slot's
# own among them) or are still to come with this professor. Built once, run with those five values.
THEIR_ACTIVE_BOOKINGS = (
    select(Booking.id, Booking.slot_id, Booking.start_time, Booking.end_time, ConsultationSlot.professor_id)
    .join(ConsultationSlot, Booking.slot_id == ConsultationSlot.id)
    .where(
        Booking.student_id == bindparam("student"),
        Booking.status.in_(ACTIVE),
        or_(
            and_(Booking.start_time < bindparam("end"), Booking.end_time > bindparam("start")),
            and_(ConsultationSlot.professor_id == bindparam("professor"), Booking.end_time > bindparam("now")),
        ),
    )
    .order_by(Booking.start_time)
)


async def require_eligible(
    session: AsyncSession, student: User, slot: ConsultationSlot, profile: Profile, *, moving: Booking | None = None
) -> None:
    """In a course the slot is reserved for (if any), not booked here already, free at that time, and under the
    professor's per-student limit.

    `moving`: the student's booking that this place replaces (a reschedule); it is neither a clash nor counted.
    """
    await require_course_member(session, student, slot)
    now = utcnow()
    parameters = {
        "student": student.id,
        "start": slot.start_time,
        "end": slot.end_time,
        "professor": slot.professor_id,
        "now": now,
    }
    theirs = (await run_core(session, THEIR_ACTIVE_BOOKINGS, parameters)).all()
    if any(row.slot_id == slot.id for row in theirs):
        raise ConflictError(_("You have booked this slot already."))
    others = [row for row in theirs if moving is None or row.id != moving.id]
    clash = next(
        (row for row in others if overlaps(row.start_time, row.end_time, slot.start_time, slot.end_time)), None
    )
    if clash is not None:
        when = describe_time(clash.start_time, clash.end_time, student.timezone)
        raise ConflictError(_("You already have a consultation then (%(when)s).", when=when))
    held = sum(row.professor_id == slot.professor_id and row.end_time > now for row in others)
    if held >= profile.max_active_bookings_per_student:
        raise ConflictError(
            _(
                "You hold %(held)s upcoming bookings with this professor, the most allowed; cancel one to book"
                " another.",
                held=held,
            )
        )


async def take_place(
    session: AsyncSession,
    slot: ConsultationSlot,
    student: User,
    topic: str,
    profile: Profile,
    *,
    acknowledge: bool = False,
    moved_from: Booking | None = None,
    taken: int | None = None,
) -> Booking:
    """Create the booking on the locked slot, tell the parties, announce it.

    `acknowledge`: the student asked for this place themselves, so a request waiting for the professor's answer is
    acknowledged to them (a booking_received mail). `moved_from`: the student's booking this one replaces (a
    reschedule): the professor is told of the move instead of a new request. `taken`: the places taken once this
    booking exists, when the caller has counted them under the lock.
    """
    status = BookingStatus.CONFIRMED if profile.auto_confirm else BookingStatus.PENDING
    confirmed = status == BookingStatus.CONFIRMED
    # Times are copied from the slot so the database can refuse a student's overlapping bookings.
    booking = Booking(
        slot_id=slot.id,
        student_id=student.id,
        topic=topic,
        status=status.value,
        start_time=slot.start_time,
        end_time=slot.end_time,
        confirmed_at=utcnow() if confirmed else None,
    )
    session.add(booking)
    await session.flush()
    # With its slot and student, as callers show them: both are in this session already (a caller's copy of the
    # student from another session is looked up), so nothing is read back.
    set_committed_value(booking, "slot", slot)
    set_committed_value(booking, "student", student if student in session else await session.get(User, student.id))
    await refresh_slot_status(session, slot, taken)
    moved = (
        {"moved_from_start": moved_from.start_time.isoformat(), "moved_from_end": moved_from.end_time.isoformat()}
        if moved_from is not None
        else None
    )
    to_professor = NotificationKind.BOOKING_RESCHEDULED if moved else NotificationKind.BOOKING_REQUESTED
    messages = [Message(slot.professor_id, booking.id, to_professor, moved)]
    if confirmed:
        messages.append(Message(student.id, booking.id, NotificationKind.BOOKING_CONFIRMED, moved))
    elif acknowledge:
        messages.append(Message(student.id, booking.id, NotificationKind.BOOKING_RECEIVED, moved))
    await NotificationService(session=session).record_all(messages)
    if confirmed:
        booking_changed.send(session, booking.id)
    await announce(session, "booking_created", slot.professor_id, slot.id, booking.id)
    booking_created_after_commit(session, booking.id)
    return booking
