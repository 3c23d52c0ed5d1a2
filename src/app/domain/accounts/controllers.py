"""Accounts on the web: sign-in, registration and settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie, UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, MultipartBody, QueryParameter

from app.config import get_settings
from app.domain.accounts.auth import begin_session, current_user
from app.domain.accounts.deps import DEPENDENCIES
from app.domain.accounts.emails import UNLOCK_PURPOSE
from app.domain.accounts.forms import (
    LanguageForm,
    PasswordForm,
    ProfileForm,
    RegisterForm,
    ReturnForm,
    SignInForm,
    TimezoneForm,
    TokenForm,
    UnlockForm,
)
from app.domain.accounts.models import User
from app.domain.accounts.schemas import GoogleIdentity
from app.domain.accounts.services import UserService
from app.domain.accounts.signin import (
    DEVICE_COOKIE,
    PENDING_GOOGLE_KEY,
    SignInThrottle,
    device_token,
    landing_page,
    register_account,
    sign_in,
)
from app.domain.accounts.tokens import ApiTokenService
from app.domain.accounts.verification import VERIFY_PURPOSE
from app.domain.audit.services import AuditAction, AuditService
from app.lib.clock import utcnow
from app.lib.errors import AuthenticationFailed, FieldErrors, TooManyAttempts
from app.lib.forms import read_form
from app.lib.guards import requires_user
from app.lib.http import client_address, safe_next
from app.lib.i18n import LANGUAGE_COOKIE, N_, SUPPORTED_LOCALES
from app.lib.i18n import gettext as _
from app.lib.rendering import flash, form_errors, is_htmx, redirect, render
from app.lib.signing import verified


@dataclass(frozen=True)
class MailedLink:
    """What the page a mailed link opens says, and where its button posts."""

    title: str
    explanation: str
    button: str
    action: str
    invalid: str
    way_back: str = "/login"
    way_back_label: str = N_("Back to sign in")


UNLOCK_LINK = MailedLink(
    title=N_("Unlock your account"),
    explanation=N_("Many wrong passwords were tried for your account, so it was locked. Unlock it to sign in now."),
    button=N_("Unlock my account"),
    action="/account/unlock",
    invalid=N_("This unlock link has expired or is not complete; sign in again later, or ask for help."),
)
VERIFY_LINK = MailedLink(
    title=N_("Confirm your e-mail address"),
    explanation=N_("Confirm that this address is yours, so that confirmations, reminders and answers reach you."),
    button=N_("Confirm my address"),
    action="/account/verify",
    invalid=N_(
        "This link was used already, has expired, or is for an address your account no longer has. "
        "Sign in to see whether your address is confirmed; Settings sends a new link."
    ),
    way_back="/settings",
    way_back_label=N_("Go to Settings"),
)


def mailed_link_page(request: Request[Any, Any, Any], link: MailedLink, token: str, *, valid: bool) -> Response[Any]:
    context = {"link": link, "token": token if valid else "", "problem": None if valid else _(link.invalid)}
    return render(request, "pages/mailed_link.html", context, status_code=200 if valid else 410)


REGISTER_FIELDS = tuple(RegisterForm.__struct_fields__)
PROFILE_FORM_FIELDS = tuple(ProfileForm.__struct_fields__)
PASSWORD_FIELDS = tuple(PasswordForm.__struct_fields__)
TOKEN_FIELDS = tuple(TokenForm.__struct_fields__)


def known_device_cookie(user: User) -> Cookie:
    """Set at each sign-in: this browser may sign in to the account even while failed attempts lock it."""
    settings = get_settings()
    return Cookie(
        key=DEVICE_COOKIE,
        value=device_token(user.id, settings),
        max_age=400 * 24 * 3600,
        httponly=True,
        secure=settings.cookies_secure,
        samesite="lax",
    )


async def audit(request: Request[Any, Any, Any], users: UserService, action: AuditAction) -> None:
    """The signed-in person did `action` to their own account."""
    me = request.user.id
    await AuditService(users.repository.session).record(me, action, me, ip=client_address(request))


class AccountPages(Controller):
    dependencies = DEPENDENCIES
    include_in_schema = False

    @get("/login", name="login")
    async def login_page(
        self, request: Request[Any, Any, Any], next_url: Annotated[str | None, QueryParameter(name="next")] = None
    ) -> Response[Any]:
        if request.user:
            return redirect(request, safe_next(next_url, landing_page(request.user)))
        context = {"next": safe_next(next_url, ""), "errors": {}, "form": {}, "google": get_settings().google_enabled}
        return render(request, "pages/login.html", context)

    @post("/login", status_code=200)
    async def login(
        self,
        request: Request[Any, Any, Any],
        users: NamedDependency[UserService],
        throttle: NamedDependency[SignInThrottle],
    ) -> Response[Any]:
        form = await read_form(request, SignInForm)
        next_url = safe_next(form.next, "")
        device = request.cookies.get(DEVICE_COOKIE)
        try:
            user = await sign_in(users, throttle, form.username, form.password, client_address(request), device)
        except (AuthenticationFailed, TooManyAttempts) as exc:
            return self._login_failed(request, form, exc)
        pending = request.session.get(PENDING_GOOGLE_KEY)
        if pending and str(pending.get("email", "")).lower() == user.email.lower():
            # The password proved the account: now the Google identity with the same email may join it.
            await users.link_google(user.id, GoogleIdentity(**pending))
        begin_session(request, user)
        flash(request, _("Welcome, %(name)s.", name=user.first_name or user.username), "success")
        response = redirect(request, next_url or landing_page(user))
        response.set_cookie(known_device_cookie(user))
        return response

    def _login_failed(
        self, request: Request[Any, Any, Any], form: SignInForm, exc: AuthenticationFailed | TooManyAttempts
    ) -> Response[Any]:
        errors = {"password": exc.message}
        status = 429 if isinstance(exc, TooManyAttempts) else 400
        if is_htmx(request):
            return form_errors(request, ("username", "password"), errors, status_code=status)
        context = {
            "next": safe_next(form.next, ""),
            "errors": errors,
            "form": {"username": form.username},
            "google": get_settings().google_enabled,
        }
        return render(request, "pages/login.html", context, status_code=status)

    @get("/account/unlock")
    async def unlock_page(self, request: Request[Any, Any, Any], t: FromQuery[str] = "") -> Response[Any]:
        """The mailed unlock link opens a page with one button (a mail scanner's GET must not unlock)."""
        valid = verified(UNLOCK_PURPOSE, t, utcnow(), get_settings()) is not None
        return mailed_link_page(request, UNLOCK_LINK, t, valid=valid)

    @post("/account/unlock", status_code=200)
    async def unlock(self, request: Request[Any, Any, Any], throttle: NamedDependency[SignInThrottle]) -> Response[Any]:
        form = await read_form(request, UnlockForm)
        payload = verified(UNLOCK_PURPOSE, form.t, utcnow(), get_settings())
        if payload is None:
            return mailed_link_page(request, UNLOCK_LINK, "", valid=False)
        await throttle.clear_account(str(payload["user"]))
        flash(request, _("Your account is unlocked: sign in."), "success")
        return redirect(request, "/login")

    @get("/account/verify")
    async def verify_page(self, request: Request[Any, Any, Any], t: FromQuery[str] = "") -> Response[Any]:
        valid = verified(VERIFY_PURPOSE, t, utcnow(), get_settings()) is not None
        return mailed_link_page(request, VERIFY_LINK, t, valid=valid)

    @post("/account/verify", status_code=200)
    async def verify(self, request: Request[Any, Any, Any], users: NamedDependency[UserService]) -> Response[Any]:
        form = await read_form(request, UnlockForm)
        payload = verified(VERIFY_PURPOSE, form.t, utcnow(), get_settings())
        user = await users.verify_email(UUID(payload["user"]), str(payload["email"])) if payload else None
        if user is None:
            return mailed_link_page(request, VERIFY_LINK, "", valid=False)
        flash(request, _("Thank you: %(email)s is confirmed.", email=user.email), "success")
        return redirect(request, "/settings" if current_user(request) else "/login")

    @post("/settings/verification", guards=[requires_user], status_code=200)
    async def resend_verification(
        self, request: Request[Any, Any, Any], users: NamedDependency[UserService]
    ) -> Response[Any]:
        form = await read_form(request, ReturnForm)
        user = await users.resend_verification(request.user.id)
        flash(request, _("We sent a new link to %(email)s.", email=user.email), "success")
        return redirect(request, safe_next(form.next, "/settings"))

    @post("/logout", status_code=200)
    async def logout(self, request: Request[Any, Any, Any]) -> Response[Any]:
        request.clear_session()
        return redirect(request, "/")

    @get("/register", name="register")
    async def register_page(self, request: Request[Any, Any, Any]) -> Response[Any]:
        # No zone chosen yet: the browser's own is preselected (falling back to DEFAULT_TIMEZONE without scripts).
        context = {"errors": {}, "form": {"timezone": ""}, "default_timezone": get_settings().default_timezone}
        return render(request, "pages/register.html", context)

    @post("/register", status_code=200)
    async def register(
        self,
        request: Request[Any, Any, Any],
        users: NamedDependency[UserService],
        throttle: NamedDependency[SignInThrottle],
    ) -> Response[Any]:
        form = await read_form(request, RegisterForm)
        values = {name: getattr(form, name) for name in REGISTER_FIELDS}
        try:
            user = await register_account(users, throttle, values, client_address(request))
        except FieldErrors as exc:
            if is_htmx(request):
                return form_errors(request, REGISTER_FIELDS, exc.errors)
            context = {"errors": exc.errors, "form": values, "default_timezone": get_settings().default_timezone}
            return render(request, "pages/register.html", context, status_code=422)
        begin_session(request, user)
        flash(request, _("Your account is ready."), "success")
        return redirect(request, landing_page(user))

    @get("/settings", guards=[requires_user], name="settings")
    async def settings_page(
        self, request: Request[Any, Any, Any], tokens: NamedDependency[ApiTokenService]
    ) -> Response[Any]:
        return await self._settings(request, tokens)

    @post("/settings/tokens", guards=[requires_user], status_code=200)
    async def create_token(
        self, request: Request[Any, Any, Any], tokens: NamedDependency[ApiTokenService]
    ) -> Response[Any]:
        """The new token's value is shown in the answer, once; it is never stored."""
        try:
            form = await read_form(request, TokenForm)
            value, row = await tokens.issue(request.user, form.name, form.expires_in_days)
        except FieldErrors as exc:
            return form_errors(request, TOKEN_FIELDS, exc.errors)
        return await self._settings(request, tokens, new_token={"name": row.name, "value": value})

    async def _settings(self, request: Request[Any, Any, Any], tokens: ApiTokenService, **extra: Any) -> Response[Any]:
        """The settings page, or (for htmx) just its API token section."""
        settings = get_settings()
        context = {
            "errors": {},
            "app_url": settings.app_url,
            "google": settings.google_enabled,
            "tokens": await tokens.of_user(request.user.id),
            **extra,
        }
        template = "components/api_tokens.html" if is_htmx(request) and extra else "pages/settings.html"
        return render(request, template, context)

    @post("/settings/tokens/{token_id:uuid}/revoke", guards=[requires_user], status_code=200)
    async def revoke_token(
        self, request: Request[Any, Any, Any], token_id: FromPath[UUID], tokens: NamedDependency[ApiTokenService]
    ) -> Response[Any]:
        await tokens.revoke_by_id(request.user.id, token_id)
        if not is_htmx(request):
            flash(request, _("Token revoked."), "success")
            return redirect(request, "/settings")
        return await self._settings(request, tokens)

    @post("/settings/sign-out-everywhere", guards=[requires_user], status_code=200)
    async def sign_out_everywhere(
        self, request: Request[Any, Any, Any], users: NamedDependency[UserService]
    ) -> Response[Any]:
        begin_session(request, await users.sign_out_everywhere(request.user.id), fresh=False)
        await audit(request, users, AuditAction.SIGNED_OUT_EVERYWHERE)
        flash(request, _("Signed out everywhere else; your API tokens are revoked."), "success")
        return redirect(request, "/settings")

    @post("/settings/profile", guards=[requires_user], status_code=200)
    async def update_profile(
        self, request: Request[Any, Any, Any], users: NamedDependency[UserService]
    ) -> Response[Any]:
        user: User = request.user
        try:
            form = await read_form(request, ProfileForm)
            if user.is_professor and (missing := form.missing_numbers()):
                raise FieldErrors(missing)
            await users.update_account(user.id, form.changes(professor=user.is_professor))
        except FieldErrors as exc:
            return form_errors(request, PROFILE_FORM_FIELDS, exc.errors)
        flash(request, _("Profile saved."), "success")
        return redirect(request, "/settings")

    @post("/language", status_code=200)
    async def switch_language(
        self, request: Request[Any, Any, Any], users: NamedDependency[UserService]
    ) -> Response[Any]:
        """The language picked in the header: kept on this browser, and in the profile of whoever is signed in."""
        form = await read_form(request, LanguageForm)
        target = safe_next(form.next, "/")
        if form.locale not in SUPPORTED_LOCALES:
            return redirect(request, target)
        if (user := current_user(request)) is not None:
            await users.update_account(user.id, {"locale": form.locale})
        response = redirect(request, target)
        response.set_cookie(
            key=LANGUAGE_COOKIE,
            value=form.locale,
            max_age=400 * 24 * 3600,
            httponly=True,
            secure=get_settings().cookies_secure,
            samesite="lax",
        )
        return response

    @post("/settings/timezone", guards=[requires_user], status_code=200)
    async def switch_timezone(
        self, request: Request[Any, Any, Any], users: NamedDependency[UserService]
    ) -> Response[Any]:
        """The time zone offer (this device's zone differs from the saved one): saved, back where the person was."""
        form = await read_form(request, TimezoneForm)
        await users.update_account(request.user.id, {"timezone": form.timezone})
        flash(request, _("Times are now shown in %(zone)s.", zone=form.timezone), "success")
        return redirect(request, safe_next(form.next, "/settings"))

    @post("/settings/calendar-feed", guards=[requires_user], status_code=200)
    async def regenerate_feed(
        self, request: Request[Any, Any, Any], users: NamedDependency[UserService]
    ) -> Response[Any]:
        await users.regenerate_feed_token(request.user.id)
        flash(request, _("New calendar link created; the old one no longer works."), "success")
        return redirect(request, "/settings")

    @post("/settings/password", guards=[requires_user], status_code=200)
    async def change_password(
        self, request: Request[Any, Any, Any], users: NamedDependency[UserService]
    ) -> Response[Any]:
        form = await read_form(request, PasswordForm)
        try:
            user = await users.change_password(request.user.id, form.current_password, form.new_password)
        except FieldErrors as exc:
            return form_errors(request, PASSWORD_FIELDS, exc.errors)
        await audit(request, users, AuditAction.PASSWORD_CHANGED)
        begin_session(request, user, fresh=False)  # under the new session epoch: this browser stays signed in
        flash(request, _("Password changed. Other browsers are signed out and your API tokens revoked."), "success")
        return redirect(request, "/settings")

    @post("/settings/picture", guards=[requires_user], status_code=200)
    async def upload_picture(
        self,
        request: Request[Any, Any, Any],
        users: NamedDependency[UserService],
        data: MultipartBody[dict[str, Any]],
    ) -> Response[Any]:
        upload = data.get("profile_picture")
        try:
            if not isinstance(upload, UploadFile):
                raise FieldErrors.single("profile_picture", _("Choose an image to upload."))
            await users.set_profile_picture(request.user.id, await upload.read(), get_settings())
        except FieldErrors as exc:
            return form_errors(request, ("profile_picture",), exc.errors)
        flash(request, _("Picture updated."), "success")
        return redirect(request, "/settings")
