"""Where a verified launch lands: the deep-linking chooser, a professor's dashboard (of the course), or the
office hours the link shows a student; the launch's course is made or updated on the way."""

from __future__ import annotations

from urllib.parse import urlencode
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User, UserType
from app.domain.accounts.services import UserService
from app.domain.consultations.courses import CourseService
from app.domain.consultations.models import Course, CourseRole
from app.domain.lti.deep_linking import open_deep_link
from app.domain.lti.models import LtiContext
from app.domain.lti.platforms import LaunchRefused
from app.domain.lti.roles import course_role
from app.domain.lti.roster import roster_wanted
from app.domain.lti.schemas import VerifiedLaunch
from app.lib.errors import INTEGRITY_ERRORS
from app.lib.i18n import gettext as _
from app.lib.unit_of_work import savepoint

DEEP_LINKING_LAUNCH = "LtiDeepLinkingRequest"
MAX_PROFESSORS_SHOWN = 12  # a course-wide view


class LaunchLanding:
    """The view a launch opens for its person, and the course it comes from."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.users = UserService(session=session)

    async def of(self, launch: VerifiedLaunch, user: User) -> str:
        """A deep-linking request: the instructor's chooser. Otherwise a professor's own dashboard (of this course);
        a student's view of the professors the link names, else of the course's professor."""
        role = course_role(launch.roles)
        context = await self._course(launch, user, role)
        if launch.message_type == DEEP_LINKING_LAUNCH:
            if role != UserType.PROFESSOR or not user.is_professor:
                raise LaunchRefused(_("Only the course's instructors can place office hours in it."), 403)
            request = await open_deep_link(self.session, launch, user)
            return f"/embed/deep-link/{request.id}"
        if user.is_professor:
            if context is not None and role == UserType.PROFESSOR:
                await roster_wanted(self.session, context, launch.memberships_url)
            return f"/embed/dashboard?{urlencode({'course': context.course_id})}" if context else "/embed/dashboard"
        professors = await self._professors_shown(launch, context)
        if len(professors) == 1:
            return f"/embed/professors/{professors[0].id}"
        return f"/embed/office-hours?{urlencode({'professors': ','.join(str(p.id) for p in professors)})}"

    async def _course(self, launch: VerifiedLaunch, user: User, role: UserType | None) -> LtiContext | None:
        """The launch's course here (made at its first launch, titled as the platform says), with the person as a
        member; its first instructor becomes the professor whose office hours its learners see."""
        if not launch.context_id:
            return None
        context = await self._context(launch)
        if context is None:
            try:
                async with savepoint(self.session):
                    course = Course(title=launch.context_title[:500])
                    self.session.add(course)
                    await self.session.flush()
                    context = LtiContext(
                        issuer=launch.platform.issuer,
                        context_id=launch.context_id,
                        platform_id=launch.platform.id,
                        course_id=course.id,
                    )
                    self.session.add(context)
                    await self.session.flush()
            except INTEGRITY_ERRORS as exc:  # the course's first launch in another tab won the race
                context = await self._context(launch)
                if context is None:
                    raise LaunchRefused(_("Your course could not be set up; open the tool again."), 409) from exc
        if launch.context_title and context.course.title != launch.context_title[:500]:
            context.course.title = launch.context_title[:500]
        context.platform_id = launch.platform.id
        if role is not None:
            course_role_here = CourseRole.INSTRUCTOR if role == UserType.PROFESSOR else CourseRole.LEARNER
            await CourseService(session=self.session).join(context.course_id, {user.id: course_role_here})
        if context.professor_id is None and role == UserType.PROFESSOR and user.is_professor:
            context.professor_id = user.id
        return context

    async def _context(self, launch: VerifiedLaunch) -> LtiContext | None:
        return await self.session.scalar(
            select(LtiContext).where(
                LtiContext.issuer == launch.platform.issuer, LtiContext.context_id == launch.context_id
            )
        )

    async def _professors_shown(self, launch: VerifiedLaunch, context: LtiContext | None) -> list[User]:
        """Whom the placed link shows (custom `professor`, or `professors` for a course-wide view), else the
        course's professor."""
        for parameter in ("professors", "professor"):
            names = [name.strip() for name in str(launch.custom.get(parameter) or "").split(",") if name.strip()]
            if not names:
                continue
            professors = []
            for name in names[:MAX_PROFESSORS_SHOWN]:
                professor = await self._professor_named(name)
                if professor is None:
                    raise LaunchRefused(
                        _(
                            "The link's custom parameter %(parameter)s names %(name)s: no professor here.",
                            parameter=parameter,
                            name=name,
                        )
                    )
                professors.append(professor)
            return professors
        professor_id = context.professor_id if context else None
        professor = await self.users.get_one_or_none(id=professor_id) if professor_id else None
        if professor is None or not professor.is_active:
            raise LaunchRefused(
                _(
                    "No professor is linked to this course yet: the instructor opens the tool once from the course, "
                    "or sets the custom parameter professor=<username>."
                )
            )
        return [professor]

    async def _professor_named(self, name: str) -> User | None:
        try:
            by_id = UUID(name)
        except ValueError:
            found = await self.users.get_one_or_none(func.lower(User.username) == name.lower())
        else:
            found = await self.users.get_one_or_none(id=by_id)
        return found if found is not None and found.is_professor and found.is_active else None
