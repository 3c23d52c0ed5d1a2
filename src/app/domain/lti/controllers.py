"""LTI 1.3 over HTTP (/lti): login, launch, the tool's keys. The views an LMS frames are in embed.py.

Every page here may be shown inside a frame (lib/framing gives them their frame-ancestors and layout); so a refusal
is an error page in the frame, never a redirect to a page the frame could not show.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Controller, HttpMethod, Request, Response, get, post, route
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.accounts.auth import begin_session
from app.domain.lti.deps import launch_refused, provide_launches
from app.domain.lti.keys import ToolKeyService
from app.domain.lti.launch import STATE_COOKIE_SECONDS, LaunchService, state_cookie, storage_target_of
from app.domain.lti.platforms import LaunchRefused, origin_of
from app.domain.lti.registration import DynamicRegistration
from app.domain.lti.schemas import LaunchForm, LoginParams, RegistrationRequest, StoredLaunchForm, VerifiedLaunch
from app.lib.forms import decode_form, read_form
from app.lib.headers import content_security_policy
from app.lib.i18n import gettext as _
from app.lib.rendering import redirect, render
from app.lib.sessions import partitioned_cookie


def state_cookie_header(state: str, max_age: int) -> str:
    """The login state cookie: it must come back on the platform's cross-site form post, inside its frame."""
    cookie = Cookie(key=state_cookie(state), value="1", path="/lti/", max_age=max_age, httponly=True)
    return partitioned_cookie(cookie.to_header(header=""))


async def signed_in(
    request: Request[Any, Any, Any], launches: LaunchService, launch: VerifiedLaunch, state: str
) -> Response[Any]:
    outcome = await launches.complete(launch, state)
    begin_session(request, outcome.user)
    # The token travels along in case this frame did not keep the session cookie (the landing page offers a new tab).
    separator = "&" if "?" in outcome.landing else "?"
    response = redirect(request, f"{outcome.landing}{separator}{urlencode({'launch': outcome.launch_token})}")
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
        login = await launches.login(decode_form(values, LoginParams))
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
        form = await read_form(request, LaunchForm)
        if form.error:
            raise LaunchRefused(
                _(
                    "The platform did not sign you in (%(error)s: %(error_description)s).",
                    error=form.error,
                    error_description=form.error_description,
                )
            )
        state, id_token = form.state, form.id_token
        launch = await launches.verify(id_token)
        if request.cookies.get(state_cookie(state)) is None:
            target = storage_target_of(state)
            if target is None:
                raise LaunchRefused(_("This launch was not started in this browser (state mismatch)."), 401)
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
            raise LaunchRefused(_("This step of the launch only accepts the tool's own page."), 403)
        form = await read_form(request, StoredLaunchForm)
        state = form.state
        launch = await launches.verify(form.id_token)
        if form.stored_state != state or form.stored_nonce != launch.nonce:
            raise LaunchRefused(_("The course page does not hold this launch's state (state mismatch)."), 401)
        return await signed_in(request, launches, launch, state)

    @get("/jwks")
    async def jwks(self, db_session: NamedDependency[AsyncSession]) -> dict[str, list[dict[str, Any]]]:
        """The tool's public keys (the current one, and the previous ones for a while after a rotation)."""
        return await ToolKeyService(session=db_session).public_jwks(get_settings())


def framable_by_any_site(response: Response[Any]) -> Response[Any]:
    """The registration pages are opened by a platform that is not registered yet, so no list of origins can name
    it; nothing on them is worth a framing site's trouble (registering needs the platform's own token, and an
    administrator's approval before any launch)."""
    response.headers["content-security-policy"] = content_security_policy("*")
    return response


def registration_refused(request: Request[Any, Any, Any], exc: LaunchRefused) -> Response[Any]:
    return framable_by_any_site(launch_refused(request, exc))


class LtiRegistration(Controller):
    """LTI Dynamic Registration: the one URL an LMS administrator pastes (APP_URL/lti/register)."""

    path = "/lti/register"
    include_in_schema = False
    exception_handlers = {LaunchRefused: registration_refused}

    @get("/")
    async def start(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Response[Any]:
        """What will be registered with which platform, and the button that does it."""
        params = decode_form(dict(request.query_params), RegistrationRequest)
        configuration = await DynamicRegistration(db_session, get_settings()).configuration(params)
        context = {"configuration": configuration, "params": params, "app_url": get_settings().app_url}
        return framable_by_any_site(render(request, "pages/lti_register.html", context))

    @post("/", status_code=200)
    async def register(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        """Register with the platform, store it, and let the platform close its registration window."""
        params = await read_form(request, RegistrationRequest)
        platform = await DynamicRegistration(db_session, get_settings()).register(params)
        return framable_by_any_site(render(request, "pages/lti_registered.html", {"platform": platform}))
