"""LTI 1.3 over HTTP (/lti: login, launch, the tool's keys) and the views an LMS frames (/embed).

Every page here may be shown inside a frame (lib/framing gives them their frame-ancestors and layout); so a refusal
is an error page in the frame, never a redirect to a page the frame could not show.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Controller, HttpMethod, Request, Response, get, post, route
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath, FromQuery
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.accounts.controllers import client_address
from app.domain.accounts.deps import provide_throttle, provide_users
from app.domain.accounts.models import User
from app.domain.accounts.services import SignInThrottle, UserService, sign_in
from app.domain.consultations.controllers import week_page_context
from app.domain.consultations.dashboard import dashboard_overview
from app.domain.consultations.deps import provide_bookings, provide_slots
from app.domain.consultations.services import BookingService, SlotService
from app.domain.lti.deps import provide_launches
from app.domain.lti.schemas import LoginParams, VerifiedLaunch
from app.domain.lti.services import (
    STATE_COOKIE_SECONDS,
    LaunchRefused,
    LaunchService,
    ToolKeyService,
    origin_of,
    state_cookie,
    storage_target_of,
)
from app.lib.auth import current_user
from app.lib.errors import AuthenticationFailed, TooManyAttempts
from app.lib.exceptions import domain_error
from app.lib.rendering import redirect, render
from app.lib.sessions import partitioned_cookie, start_session

logger = logging.getLogger(__name__)
CSRF_COOKIE = "csrftoken"


def launch_refused(request: Request[Any, Any, Any], exc: LaunchRefused) -> Response[Any]:
    logger.warning("LTI refused at %s: %s", request.scope["path"], exc.message)
    return domain_error(request, exc)


def state_cookie_header(state: str, max_age: int) -> str:
    """The login state cookie: it must come back on the platform's cross-site form post, inside its frame."""
    cookie = Cookie(key=state_cookie(state), value="1", path="/lti/", max_age=max_age, httponly=True)
    return partitioned_cookie(cookie.to_header(header=""))


async def signed_in(
    request: Request[Any, Any, Any], launches: LaunchService, launch: VerifiedLaunch, state: str
) -> Response[Any]:
    outcome = await launches.complete(launch, state)
    start_session(request, {"user_id": str(outcome.user.id)})
    # The token travels along in case this frame did not keep the session cookie (the landing page offers a new tab).
    response = redirect(request, f"{outcome.landing}?{urlencode({'launch': outcome.launch_token})}")
    response.headers["Set-Cookie"] = state_cookie_header(state, 0)
    return response


class LtiController(Controller):
    path = "/lti"
    include_in_schema = False
    dependencies = {"launches": Provide(provide_launches)}
    exception_handlers = {LaunchRefused: launch_refused}

    @route("/login", http_method=[HttpMethod.GET, HttpMethod.POST], status_code=302)
    async def login(self, request: Request[Any, Any, Any], launches: NamedDependency[LaunchService]) -> Response[Any]:
        """Third-party-initiated login: on to the platform's OIDC endpoint with a fresh state and nonce."""
        values: dict[str, Any] = dict(request.query_params)
        if request.method == HttpMethod.POST:
            values |= dict(await request.form())
        login = await launches.login(LoginParams.of(values))
        response: Response[Any]
        if login.storage_target is None:
            response = Response(content=b"", status_code=302, headers={"Location": login.url})
        else:
            # The browser may keep no cookie in this frame: the platform's frame keeps state and nonce as well.
            context = {
                "mode": "login",
                "target": login.storage_target,
                "origin": login.platform_origin,
                "state": login.state,
                "nonce": login.nonce,
                "next": login.url,
            }
            response = render(request, "pages/lti_storage.html", context)
        response.headers["Set-Cookie"] = state_cookie_header(login.state, STATE_COOKIE_SECONDS)
        return response

    @post("/launch", status_code=303)
    async def launch(self, request: Request[Any, Any, Any], launches: NamedDependency[LaunchService]) -> Response[Any]:
        """The platform's form post of the id_token: verified, then the person is signed in and lands on a view."""
        form = await request.form()
        if error := form.get("error"):
            raise LaunchRefused(f"The platform did not sign you in ({error}: {form.get('error_description', '')}).")
        state = str(form.get("state", ""))
        id_token = str(form.get("id_token", ""))
        launch = await launches.verify(id_token)
        if request.cookies.get(state_cookie(state)) is None:
            target = storage_target_of(state)
            if target is None:
                raise LaunchRefused("This launch was not started in this browser (state mismatch).", 401)
            context = {
                "mode": "launch",
                "target": target,
                "origin": origin_of(launch.platform.auth_login_url),
                "state": state,
                "nonce": launch.nonce,
                "id_token": id_token,
            }
            return render(request, "pages/lti_storage.html", context)
        return await signed_in(request, launches, launch, state)

    @post("/launch/verify", status_code=303)
    async def launch_from_storage(
        self, request: Request[Any, Any, Any], launches: NamedDependency[LaunchService]
    ) -> Response[Any]:
        """A launch whose state the platform's frame kept: the storage page posts it with what it read back."""
        # Only the storage page itself may vouch for the values read from the platform: a cross-site form could not.
        if request.headers.get("sec-fetch-site") != "same-origin":
            raise LaunchRefused("This step of the launch only accepts the tool's own page.", 403)
        form = await request.form()
        state = str(form.get("state", ""))
        launch = await launches.verify(str(form.get("id_token", "")))
        if form.get("stored_state") != state or form.get("stored_nonce") != launch.nonce:
            raise LaunchRefused("The course page does not hold this launch's state (state mismatch).", 401)
        return await signed_in(request, launches, launch, state)

    @get("/jwks")
    async def jwks(self, db_session: NamedDependency[AsyncSession]) -> dict[str, list[dict[str, Any]]]:
        """The tool's public keys (the current one, and the previous ones for a while after a rotation)."""
        return await ToolKeyService(session=db_session).public_jwks(get_settings())


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
        "users": Provide(provide_users),
        "slots": Provide(provide_slots),
        "bookings": Provide(provide_bookings),
        "throttle": Provide(provide_throttle),
        "launches": Provide(provide_launches),
    }
    exception_handlers = {LaunchRefused: launch_refused}

    @get("/professors/{professor_id:uuid}")
    async def professor_week(
        self,
        request: Request[Any, Any, Any],
        professor_id: FromPath[UUID],
        users: NamedDependency[UserService],
        slots: NamedDependency[SlotService],
        week: FromQuery[date | None] = None,
        launch: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """The live week grid, compact: the same stream, cells and booking dialog as the site's page."""
        viewer = current_user(request)
        if viewer is None:
            return sign_in_gate(request, launch)
        context = await week_page_context(users, slots, professor_id, viewer, week)
        return render(request, "pages/professor.html", context, block="week")

    @get("/dashboard")
    async def dashboard(
        self,
        request: Request[Any, Any, Any],
        slots: NamedDependency[SlotService],
        bookings: NamedDependency[BookingService],
        launch: FromQuery[str | None] = None,
    ) -> Response[Any]:
        professor = current_user(request)
        if professor is None:
            return sign_in_gate(request, launch)
        if not professor.is_professor:
            raise PermissionDeniedException("Only professors have a dashboard.")
        context = await dashboard_overview(professor, slots, bookings)
        return render(request, "pages/dashboard.html", context, block="overview")

    @post("/login", status_code=303)
    async def login(
        self,
        request: Request[Any, Any, Any],
        users: NamedDependency[UserService],
        throttle: NamedDependency[SignInThrottle],
    ) -> Response[Any]:
        form = dict(await request.form())
        next_url = embed_target(form.get("next"))
        try:
            user: User = await sign_in(
                users, throttle, form.get("username", ""), form.get("password", ""), client_address(request)
            )
        except (AuthenticationFailed, TooManyAttempts) as exc:
            context = {
                "next": next_url,
                "errors": {"password": exc.message},
                "form": {"username": form.get("username", "")},
                "launch_url": None,
            }
            status = 429 if isinstance(exc, TooManyAttempts) else 400
            return render(request, "pages/embed_signin.html", context, status_code=status)
        start_session(request, {"user_id": str(user.id)})
        return redirect(request, next_url)

    @get("/probe")
    async def probe(self, request: Request[Any, Any, Any]) -> dict[str, bool]:
        """Whether this frame keeps cookies: the CSRF cookie, set by the sign-in page that asks, came back or not."""
        return {"cookies": CSRF_COOKIE in request.cookies}

    @get("/open")
    async def open_in_tab(
        self, request: Request[Any, Any, Any], launches: NamedDependency[LaunchService], token: FromQuery[str] = ""
    ) -> Response[Any]:
        """The launch token's one use: the same person and view, in a tab of their own."""
        user, target = await launches.redeem(token)
        start_session(request, {"user_id": str(user.id)})
        return redirect(request, target)
