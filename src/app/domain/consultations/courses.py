"""Courses: groups of students a professor may reserve slots for, and who belongs to each.

The rule, once: a slot reserved for courses is open only to members of one of them (`open_to`, one SQL expression
used wherever slots are offered or taken). Who belongs to a course is told from outside (the lti domain: launches
and course rosters); leaving a course ends the membership, never the bookings made meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import ColumnElement, delete, exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User
from app.domain.consultations.models import ConsultationSlot, Course, CourseMember, CourseRole, slot_course
from app.lib.errors import ConflictError, FieldErrors
from app.lib.formatting import one_of
from app.lib.i18n import gettext as _

MAX_COURSES_PER_SLOT = 20


def open_to(student_id: UUID | ColumnElement[Any]) -> ColumnElement[bool]:
    """The slot is reserved for no course, or for one the student belongs to."""
    reserved = exists().where(slot_course.c.slot_id == ConsultationSlot.id)
    member = exists().where(
        slot_course.c.slot_id == ConsultationSlot.id,
        CourseMember.course_id == slot_course.c.course_id,
        CourseMember.user_id == student_id,
    )
    return ~reserved | member


def reserved_for(slot: ConsultationSlot) -> str:
    """Whom a reserved slot is for, in words: "students of Algorithms or Databases"."""
    return reserved_for_titles(course.title for course in slot.courses)


def reserved_for_titles(titles: Iterable[str | None]) -> str:
    """The same from the courses' titles alone (in title order)."""
    return _("students of %(courses)s", courses=one_of([title or _("a course") for title in titles]))


async def closed_to(session: AsyncSession, student: User, slot_ids: Sequence[UUID]) -> set[UUID]:
    """Which of these slots the student may not take (reserved for courses they do not belong to)."""
    if not slot_ids or not student.is_student:
        return set()
    query = select(ConsultationSlot.id).where(ConsultationSlot.id.in_(slot_ids), ~open_to(student.id))
    return set((await session.scalars(query)).all())


async def require_course_member(session: AsyncSession, student: User, slot: ConsultationSlot) -> None:
    if slot.courses and slot.id in await closed_to(session, student, [slot.id]):
        raise ConflictError(_("This slot is reserved for %(courses)s.", courses=reserved_for(slot)))


class CourseService(SQLAlchemyAsyncRepositoryService[Course]):
    class Repository(SQLAlchemyAsyncRepository[Course]):
        model_type = Course

    repository_type = Repository

    async def taught_by(self, professor: User) -> list[Course]:
        """The courses a professor teaches (may reserve slots for), by title."""
        query = (
            select(Course)
            .join(CourseMember, CourseMember.course_id == Course.id)
            .where(CourseMember.user_id == professor.id, CourseMember.role == CourseRole.INSTRUCTOR.value)
            .order_by(Course.title)
        )
        return list((await self.repository.session.scalars(query)).all())

    async def reservable(self, professor: User, course_ids: Iterable[UUID]) -> list[Course]:
        """The courses named, when the professor teaches each; else a FieldErrors on `course_ids`."""
        wanted = list(dict.fromkeys(course_ids))
        if len(wanted) > MAX_COURSES_PER_SLOT:
            raise FieldErrors.single(
                "course_ids",
                _(
                    "Reserve a slot for at most %(max_courses_per_slot)s courses.",
                    max_courses_per_slot=MAX_COURSES_PER_SLOT,
                ),
            )
        taught = {course.id: course for course in await self.taught_by(professor)} if wanted else {}
        if any(course_id not in taught for course_id in wanted):
            raise FieldErrors.single("course_ids", _("Choose among the courses you teach."))
        return [taught[course_id] for course_id in wanted]

    async def teaches(self, professor: User, course_id: UUID) -> bool:
        found = await self.repository.session.scalar(
            select(
                exists().where(
                    CourseMember.course_id == course_id,
                    CourseMember.user_id == professor.id,
                    CourseMember.role == CourseRole.INSTRUCTOR.value,
                )
            )
        )
        return bool(found)

    async def join(self, course_id: UUID, members: Mapping[UUID, CourseRole]) -> None:
        """These people belong to the course (each as their role) from now on; a repeated join updates the role."""
        if not members:
            return
        rows = [{"course_id": course_id, "user_id": user_id, "role": role.value} for user_id, role in members.items()]
        statement = insert(CourseMember).values(rows)
        await self.repository.session.execute(
            statement.on_conflict_do_update(
                constraint="uq_course_member_course_user", set_={"role": statement.excluded.role}
            )
        )

    async def replace_members(self, course_id: UUID, members: Mapping[UUID, CourseRole]) -> None:
        """The course's members are exactly these now (a fresh roster): the others leave, their bookings stay."""
        await self.repository.session.execute(
            delete(CourseMember).where(CourseMember.course_id == course_id, CourseMember.user_id.not_in(list(members)))
        )
        await self.join(course_id, members)

    async def forget_members(self, course_ids: Sequence[UUID]) -> None:
        """The courses' memberships go (their platform is gone); the courses and their reserved slots stay."""
        await self.repository.session.execute(delete(CourseMember).where(CourseMember.course_id.in_(course_ids)))
