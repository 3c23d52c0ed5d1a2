"""A course's students on its instructor's embedded dashboard (loaded into /embed/dashboard?course=...)."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User
from app.domain.lti.course_dashboard import CourseDashboard
from app.domain.lti.roster import roster_problem
from app.lib.errors import FieldErrors
from app.lib.forms import read_form
from app.lib.guards import requires_professor
from app.lib.i18n import gettext as _
from app.lib.i18n import ngettext
from app.lib.rendering import form_errors, fragments, render, render_html, toast_html


class TermForm(msgspec.Struct):
    term_start: date | None = None


class CoursePages(Controller):
    path = "/embed/courses/{course_id:uuid}"
    include_in_schema = False
    guards = [requires_professor]

    @get("/students")
    async def students(
        self, request: Request[User, Any, Any], course_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        course = await CourseDashboard(db_session).students(request.user, course_id)
        return render(
            request,
            "components/course_students.html",
            {"students": course, "roster_problem": roster_problem(course.context.roster_error)},
        )

    @post("/remind", status_code=200)
    async def remind(
        self, request: Request[User, Any, Any], course_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        """E-mail the students who have not booked this term."""
        sent, left_out = await CourseDashboard(db_session).remind(request.user, course_id)
        message = ngettext(
            "E-mailed %(num)s student who has not booked yet.",
            "E-mailed %(num)s students who have not booked yet.",
            sent,
        )
        if left_out:
            message += " " + ngettext(
                "%(num)s never opened office hours (no address here) and got nothing.",
                "%(num)s never opened office hours (no address here) and got nothing.",
                left_out,
            )
        return fragments(toast_html(request, message, "success"))

    @post("/term", status_code=200)
    async def term(
        self, request: Request[User, Any, Any], course_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        """Since when "this term" counts."""
        dashboard = CourseDashboard(db_session)
        try:
            form = await read_form(request, TermForm)
            await dashboard.set_term_start(request.user, course_id, form.term_start)
        except FieldErrors as exc:
            return form_errors(request, ("term_start",), exc.errors, prefix="course")
        course = await dashboard.students(request.user, course_id)
        return fragments(
            render_html(
                request,
                "components/course_students.html",
                {"students": course, "roster_problem": roster_problem(course.context.roster_error)},
            ),
            toast_html(request, _("Term start saved."), "success"),
        )
