"""The course's students on its instructor's embedded dashboard: who booked, who waits, who has not booked this term,
and an e-mail (through the outbox) to those who have not.

Only the course's instructors see it (anyone else reads "not found"). The students are the course roster's learners
when the platform offers its roster (NRPS), else the learners who opened the tool from the course. "This term"
starts on the date the instructor sets (term_start), else on the day the course first opened the tool.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from uuid import UUID

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User
from app.domain.consultations.courses import CourseService
from app.domain.consultations.models import (
    Booking,
    BookingStatus,
    ConsultationSlot,
    Course,
    CourseMember,
    CourseRole,
    WaitlistEntry,
    WaitlistStatus,
)
from app.domain.lti.launch import PLACEHOLDER_EMAIL_DOMAIN
from app.domain.lti.models import LtiContext, LtiIdentity, LtiRosterMember
from app.domain.notifications.services import NotificationService
from app.lib.clock import utcnow
from app.lib.errors import FieldErrors, NotFound
from app.lib.i18n import gettext as _

INVITATION_KIND = "course_office_hours_invitation"
# A booking that happened (or is to happen) counts; a declined or cancelled one does not.
COUNTED = tuple(
    status.value
    for status in (BookingStatus.PENDING, BookingStatus.CONFIRMED, BookingStatus.COMPLETED, BookingStatus.NO_SHOW)
)
OPEN_WAITS = (WaitlistStatus.WAITING.value, WaitlistStatus.OFFERED.value)


@dataclass(frozen=True)
class Student:
    name: str
    email: str
    user_id: UUID | None  # None: on the roster, but never opened office hours

    @property
    def reachable(self) -> bool:
        """Has an account here with a real address (the outbox writes to accounts)."""
        return self.user_id is not None and bool(self.email) and not self.email.endswith(f"@{PLACEHOLDER_EMAIL_DOMAIN}")


@dataclass(frozen=True)
class CourseStudents:
    context: LtiContext
    term_start: date
    booked: list[Student]
    waiting: list[Student]
    not_booked: list[Student]

    @property
    def course(self) -> Course:
        return self.context.course

    @property
    def to_remind(self) -> list[Student]:
        return [student for student in self.not_booked if student.reachable]


class CourseDashboard:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def context_for(self, professor: User, course_id: UUID) -> LtiContext:
        """The LMS course, for one of its instructors only."""
        context = await self.session.scalar(select(LtiContext).where(LtiContext.course_id == course_id))
        if context is None or not await CourseService(session=self.session).teaches(professor, course_id):
            raise NotFound(_("Course not found."))
        return context

    async def students(self, professor: User, course_id: UUID) -> CourseStudents:
        context = await self.context_for(professor, course_id)
        term_start = context.term_start or context.created_at.date()
        since = datetime.combine(term_start, time(0), UTC)
        students = await self._learners(context)
        ids = [student.user_id for student in students if student.user_id is not None]
        reserved = ConsultationSlot.courses.any(Course.id == course_id)
        booked = set(
            await self.session.scalars(
                select(Booking.student_id)
                .join(ConsultationSlot, Booking.slot_id == ConsultationSlot.id)
                .where(
                    Booking.student_id.in_(ids),
                    Booking.status.in_(COUNTED),
                    ConsultationSlot.start_time >= since,
                    or_(ConsultationSlot.professor_id == professor.id, reserved),
                )
            )
        )
        waiting = set(
            await self.session.scalars(
                select(WaitlistEntry.student_id).where(
                    WaitlistEntry.student_id.in_(ids),
                    WaitlistEntry.status.in_(OPEN_WAITS),
                    WaitlistEntry.professor_id == professor.id,
                    WaitlistEntry.created_at >= since,
                )
            )
        )
        return CourseStudents(
            context=context,
            term_start=term_start,
            booked=[s for s in students if s.user_id in booked],
            waiting=[s for s in students if s.user_id in waiting and s.user_id not in booked],
            not_booked=[s for s in students if s.user_id not in booked and s.user_id not in waiting],
        )

    async def _learners(self, context: LtiContext) -> list[Student]:
        """The roster's learners (with their accounts here, if any); without a roster, the course's learners here."""
        if context.roster_fetched_at is not None and not context.roster_error:
            rows = await self.session.execute(
                select(LtiRosterMember.name, LtiRosterMember.email, User.id, User.email)
                .outerjoin(
                    LtiIdentity,
                    (LtiIdentity.issuer == context.issuer) & (LtiIdentity.subject == LtiRosterMember.subject),
                )
                .outerjoin(User, User.id == LtiIdentity.user_id)
                .where(LtiRosterMember.context_id == context.id, LtiRosterMember.role == CourseRole.LEARNER.value)
                .order_by(LtiRosterMember.name)
            )
            return [Student(name, account_email or email, user_id) for name, email, user_id, account_email in rows]
        users = await self.session.scalars(
            select(User)
            .join(CourseMember, CourseMember.user_id == User.id)
            .where(CourseMember.course_id == context.course_id, CourseMember.role == CourseRole.LEARNER.value)
            .order_by(User.last_name, User.first_name)
        )
        return [Student(user.full_name, user.email, user.id) for user in users.unique()]

    async def remind(self, professor: User, course_id: UUID) -> tuple[int, int]:
        """An e-mail to each student who has not booked this term (at most one a day per course and student).
        Returns (e-mailed, left out for want of an account or address)."""
        students = await self.students(professor, course_id)
        notifications = NotificationService(session=self.session)
        context = {"professor_id": str(professor.id), "course_title": students.course.title}
        for student in students.to_remind:
            assert student.user_id is not None
            await notifications.record(
                user_id=student.user_id,
                booking_id=None,
                kind=INVITATION_KIND,
                context=context,
                variant=f"{course_id}:{utcnow().date().isoformat()}",
            )
        return len(students.to_remind), len(students.not_booked) - len(students.to_remind)

    async def set_term_start(self, professor: User, course_id: UUID, term_start: date | None) -> LtiContext:
        context = await self.context_for(professor, course_id)
        if term_start is not None and term_start > utcnow().date():
            raise FieldErrors.single("term_start", _("The term must have started: choose today or an earlier date."))
        context.term_start = term_start
        return context
