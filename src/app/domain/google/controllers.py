"""Sign in with Google, link or unlink it, connect or disconnect Google Calendar."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromQuery, QueryParameter

from app.config import get_settings
from app.domain.accounts.auth import begin_session, current_user
from app.domain.accounts.deps import provide_users
from app.domain.accounts.schemas import GoogleIdentity
from app.domain.accounts.services import UserService
from app.domain.accounts.signin import PENDING_GOOGLE_KEY, landing_page
from app.domain.google.forms import RoleForm
from app.domain.google.grants import CalendarAccessLost, CalendarConnection
from app.domain.google.provider import GoogleError, GoogleProvider, role_for_email
from app.lib.errors import ConflictError, FieldErrors
from app.lib.forms import read_form
from app.lib.guards import requires_user
from app.lib.http import safe_next
from app.lib.i18n import gettext as _
from app.lib.rendering import flash, redirect, render

FLOW_KEY = "google_flow"
INTENTS = ("signin", "link", "calendar")


def callback_url() -> str:
    return f"{get_settings().app_url}/auth/google/callback"


def require_google() -> None:
    if not get_settings().google_enabled:
        raise NotFoundException()


class GoogleAuth(Controller):
    include_in_schema = False
    dependencies = {"users": Provide(provide_users)}

    @get("/auth/google", name="google_start")
    async def start(
        self,
        request: Request[Any, Any, Any],
        intent: FromQuery[str] = "signin",
        next_url: Annotated[str, QueryParameter(name="next")] = "",
    ) -> Response[Any]:
        require_google()
        user = current_user(request)
        if intent not in INTENTS or (intent != "signin" and user is None):
            return redirect(request, "/login?next=/settings")
        auth = await GoogleProvider(get_settings()).authorization_request(
            callback_url(),
            calendar=intent == "calendar",
            login_hint=user.email if user and intent == "calendar" else "",
        )
        # State, nonce and PKCE verifier stay on the server, in this browser's session, for one use.
        request.session[FLOW_KEY] = {
            "state": auth.state,
            "nonce": auth.nonce,
            "verifier": auth.code_verifier,
            "intent": intent,
            "next": safe_next(next_url, ""),
        }
        return Response(content=b"", status_code=302, headers={"Location": auth.url})

    @get("/auth/google/callback", name="google_callback")
    async def callback(
        self,
        request: Request[Any, Any, Any],
        users: NamedDependency[UserService],
        code: FromQuery[str] = "",
        returned_state: Annotated[str, QueryParameter(name="state")] = "",
        error: FromQuery[str] = "",
    ) -> Response[Any]:
        require_google()
        flow = request.session.pop(FLOW_KEY, None)
        if error:
            return self._refused(
                request,
                _("You cancelled the Google sign-in.")
                if error == "access_denied"
                else _("Google refused the sign-in."),
            )
        if not flow or not returned_state or returned_state != flow.get("state"):
            return self._refused(request, _("This sign-in link is not valid any more (it was used or it expired)."))
        provider = GoogleProvider(get_settings())
        try:
            token = await provider.exchange(code, flow["verifier"], callback_url())
            identity = await provider.verify_id_token(str(token.get("id_token", "")), flow["nonce"])
        except GoogleError as exc:
            return self._refused(request, str(exc))
        user = current_user(request)
        try:
            if flow["intent"] == "calendar" and user is not None:
                await CalendarConnection(users.repository.session, get_settings()).connect(user.id, token)
                flash(request, _("Google Calendar connected: confirmed consultations will appear there."), "success")
                return redirect(request, "/settings")
            if flow["intent"] == "link" and user is not None:
                await users.link_google(user.id, identity)
                flash(request, _("Google sign-in linked to your account."), "success")
                return redirect(request, "/settings")
        except (ConflictError, CalendarAccessLost) as exc:
            return self._refused(request, str(exc))
        return await self._sign_in(request, users, identity, flow.get("next") or "")

    async def _sign_in(
        self, request: Request[Any, Any, Any], users: UserService, identity: GoogleIdentity, next_url: str
    ) -> Response[Any]:
        user = await users.find_by_google(identity.sub)
        if user is not None:
            begin_session(request, user)
            return redirect(request, next_url or landing_page(user))
        if await users.find_by_login(identity.email) is not None:
            # Same email, not yet linked: only the account's owner (by password) may link it.
            request.session[PENDING_GOOGLE_KEY] = asdict(identity)
            flash(
                request, _("An account with this email exists. Sign in with its password once to link Google."), "info"
            )
            return redirect(request, "/login")
        role = role_for_email(identity.email, get_settings())
        if role is None:
            request.session[PENDING_GOOGLE_KEY] = asdict(identity)
            return redirect(request, "/auth/google/choose")
        return await self._create(request, users, identity, role)

    async def _create(
        self, request: Request[Any, Any, Any], users: UserService, identity: GoogleIdentity, role: str
    ) -> Response[Any]:
        try:
            user = await users.register_google(identity, role)
        except (ConflictError, FieldErrors) as exc:
            return self._refused(request, exc.message)
        request.session.pop(PENDING_GOOGLE_KEY, None)
        begin_session(request, user)
        flash(request, _("Your account is ready."), "success")
        return redirect(request, landing_page(user))

    @get("/auth/google/choose")
    async def choose(self, request: Request[Any, Any, Any]) -> Response[Any]:
        require_google()
        pending = request.session.get(PENDING_GOOGLE_KEY)
        if not pending:
            return redirect(request, "/login")
        return render(request, "pages/google_choose.html", {"pending": pending})

    @post("/auth/google/complete", status_code=200)
    async def complete(self, request: Request[Any, Any, Any], users: NamedDependency[UserService]) -> Response[Any]:
        require_google()
        pending = request.session.get(PENDING_GOOGLE_KEY)
        if not pending:
            return redirect(request, "/login")
        form = await read_form(request, RoleForm)
        return await self._create(request, users, GoogleIdentity(**pending), form.user_type)

    def _refused(self, request: Request[Any, Any, Any], message: str) -> Response[Any]:
        return render(request, "pages/error.html", {"status_code": 400, "message": message}, status_code=400)

    @post("/settings/google/unlink", guards=[requires_user], status_code=200)
    async def unlink(self, request: Request[Any, Any, Any], users: NamedDependency[UserService]) -> Response[Any]:
        await users.unlink_google(request.user.id)
        flash(request, _("Google sign-in unlinked."), "success")
        return redirect(request, "/settings")

    @post("/settings/calendar/disconnect", guards=[requires_user], status_code=200)
    async def disconnect(self, request: Request[Any, Any, Any], users: NamedDependency[UserService]) -> Response[Any]:
        await CalendarConnection(users.repository.session, get_settings()).disconnect(request.user.id)
        flash(request, _("Google Calendar disconnected."), "success")
        return redirect(request, "/settings")
