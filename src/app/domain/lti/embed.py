"""The views an LMS (or a site in FRAME_ANCESTORS) frames: the compact week grid and dashboard, their sign-in.

Every page here may be shown inside a frame (lib/framing gives them their frame-ancestors and layout); so a refusal
is an error page in the frame, never a redirect to a page the frame could not show.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath, FromQuery
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.accounts.auth import begin_session, current_user
from app.domain.accounts.deps import DEPENDENCIES as ACCOUNT_DEPENDENCIES
from app.domain.accounts.forms import SignInForm
from app.domain.accounts.models import User
from app.domain.accounts.services import UserService
from app.domain.accounts.signin import SignInThrottle, sign_in
from app.domain.consultations.bookings import BookingService
from app.domain.consultations.deps import providers
from app.domain.consultations.slots import SlotService
from app.domain.consultations.views import dashboard_overview, professor_or_404, week_page_context
from app.domain.lti.deps import launch_refused, provide_launches
from app.domain.lti.landing import MAX_PROFESSORS_SHOWN
from app.domain.lti.launch import LaunchService
from app.domain.lti.platforms import LaunchRefused
from app.lib.csrf import csrf_cookie_name
from app.lib.errors import AuthenticationFailed, NotFound, TooManyAttempts
from app.lib.forms import read_form
from app.lib.http import client_address
from app.lib.i18n import gettext as _
from app.lib.rendering import redirect, render


def embed_target(target: str | None) -> str:
    return target if target and target.startswith("/embed/") else "/embed/dashboard"


def sign_in_gate(request: Request[Any, Any, Any], launch: str | None) -> Response[Any]:
    """An embed view asked for anonymously. Right after a launch this frame kept no cookie (Safari): offer the view
    in a new tab, signed in by the launch token. Otherwise sign in here (the page checks cookies can be kept)."""
    query = {key: value for key, value in request.query_params.items() if key != "launch"}
    here = request.scope["path"] + (f"?{urlencode(query)}" if query else "")
    context: dict[str, Any] = {
        "next": here,
        "errors": {},
        "form": {},
        "launch_url": f"/embed/open?{urlencode({'token': launch})}" if launch else None,
    }
    return render(request, "pages/embed_signin.html", context)


class EmbedPages(Controller):
    path = "/embed"
    include_in_schema = False
    dependencies = {
        **ACCOUNT_DEPENDENCIES,
        **providers("slots", "bookings"),
        "launches": Provide(provide_launches),
    }
    exception_handlers = {LaunchRefused: launch_refused}

    @get("/professors/{professor_id:uuid}")
    async def professor_week(
        self,
        request: Request[Any, Any, Any],
        professor_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        week: FromQuery[date | None] = None,
        launch: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """The live week grid, compact: the same stream, cells and booking dialog as the site's page."""
        viewer = current_user(request)
        if viewer is None:
            return sign_in_gate(request, launch)
        context = await week_page_context(db_session, professor_id, viewer, week)
        return render(request, "pages/professor.html", context, block="week")

    @get("/office-hours")
    async def course_wide(
        self,
        request: Request[Any, Any, Any],
        users: NamedDependency[UserService],
        professors: FromQuery[str] = "",
        launch: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """A course-wide view (placed by deep linking): the chosen professors, each leading to their week."""
        if current_user(request) is None:
            return sign_in_gate(request, launch)
        chosen = []
        for text in professors.split(",")[:MAX_PROFESSORS_SHOWN]:
            try:
                chosen.append(await professor_or_404(users, UUID(text.strip())))
            except ValueError as exc:
                raise NotFound(_("Professor not found.")) from exc
        return render(request, "pages/embed_office_hours.html", {"professors": chosen})

    @get("/dashboard")
    async def dashboard(
        self,
        request: Request[Any, Any, Any],
        slots: NamedDependency[SlotService],
        bookings: NamedDependency[BookingService],
        launch: FromQuery[str | None] = None,
        course: FromQuery[UUID | None] = None,
    ) -> Response[Any]:
        """The dashboard; opened from a course, with the course's students and their bookings (course_pages.py)."""
        professor = current_user(request)
        if professor is None:
            return sign_in_gate(request, launch)
        if not professor.is_professor:
            raise PermissionDeniedException(_("Only professors have a dashboard."))
        context = await dashboard_overview(professor, slots, bookings)
        return render(request, "pages/dashboard.html", {**context, "course_id": course}, block="overview")

    @post("/login", status_code=303)
    async def login(
        self,
        request: Request[Any, Any, Any],
        users: NamedDependency[UserService],
        throttle: NamedDependency[SignInThrottle],
    ) -> Response[Any]:
        form = await read_form(request, SignInForm)
        next_url = embed_target(form.next)
        try:
            user: User = await sign_in(users, throttle, form.username, form.password, client_address(request))
        except (AuthenticationFailed, TooManyAttempts) as exc:
            context = {
                "next": next_url,
                "errors": {"password": exc.message},
                "form": {"username": form.username},
                "launch_url": None,
            }
            status = 429 if isinstance(exc, TooManyAttempts) else 400
            return render(request, "pages/embed_signin.html", context, status_code=status)
        begin_session(request, user)
        return redirect(request, next_url)

    @get("/probe")
    async def probe(self, request: Request[Any, Any, Any]) -> dict[str, bool]:
        """Whether this frame keeps cookies: the CSRF cookie, set by the sign-in page that asks, came back or not."""
        return {"cookies": csrf_cookie_name(get_settings()) in request.cookies}

    @get("/open")
    async def open_in_tab(
        self, request: Request[Any, Any, Any], launches: NamedDependency[LaunchService], token: FromQuery[str] = ""
    ) -> Response[Any]:
        """The launch token's one use: the same person and view, in a tab of their own."""
        user, target = await launches.redeem(token)
        begin_session(request, user)
        return redirect(request, target)
