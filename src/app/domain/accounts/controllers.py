"""Accounts over HTTP: the web pages (sign-in, registration, settings) and the JSON API."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromQuery, JSONBody, MultipartBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from app.config import get_settings
from app.domain.accounts.deps import provide_throttle, provide_tokens, provide_users
from app.domain.accounts.google import PENDING_KEY, GoogleIdentity
from app.domain.accounts.models import User
from app.domain.accounts.schemas import (
    MeUpdate,
    PasswordChange,
    ProfessorOut,
    ProfessorPage,
    RegisterInput,
    TokenRequest,
    TokenResponse,
    UserOut,
)
from app.domain.accounts.services import (
    TIMEZONES,
    ApiTokenService,
    SignInThrottle,
    UserService,
    sign_in,
)
from app.lib.auth import bearer_token, requires_user
from app.lib.errors import AuthenticationFailed, FieldErrors, TooManyAttempts
from app.lib.rendering import flash, form_errors, redirect, render
from app.lib.sessions import start_session

REGISTER_FIELDS = ("username", "email", "password", "user_type", "first_name", "last_name", "timezone")
PROFILE_FORM_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone_number",
    "timezone",
    "department",
    "bio",
    "second_reminder_minutes",
    "auto_confirm",
    "booking_notice_hours",
    "cancellation_notice_hours",
    "max_active_bookings_per_student",
    "waitlist_hold_minutes",
    "waitlist_auto_book",
)
PASSWORD_FIELDS = ("current_password", "new_password")
INT_FIELDS = (
    "booking_notice_hours",
    "cancellation_notice_hours",
    "max_active_bookings_per_student",
    "waitlist_hold_minutes",
)
BOOL_FIELDS = ("auto_confirm", "waitlist_auto_book")
SORTED_TIMEZONES = sorted(TIMEZONES)
DEPENDENCIES = {
    "users": Provide(provide_users),
    "tokens": Provide(provide_tokens),
    "throttle": Provide(provide_throttle),
}


def safe_next(target: str | None, default: str) -> str:
    """Only local paths: `//evil.example` and absolute URLs would be open redirects."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return default


def landing_page(user: User) -> str:
    return "/dashboard" if user.is_professor else "/professors"


def client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def user_out(user: User) -> UserOut:
    profile = user.profile
    return UserOut(
        id=user.id,
        username=user.username,
        email=user.email,
        user_type=user.user_type,
        first_name=user.first_name,
        last_name=user.last_name,
        phone_number=user.phone_number,
        timezone=user.timezone,
        is_admin=user.is_admin,
        department=profile.department,
        bio=profile.bio,
        profile_picture=profile.profile_picture,
        auto_confirm=profile.auto_confirm,
        booking_notice_hours=profile.booking_notice_hours,
        cancellation_notice_hours=profile.cancellation_notice_hours,
        max_active_bookings_per_student=profile.max_active_bookings_per_student,
        calendar_sync_enabled=profile.calendar_sync_enabled,
        second_reminder_minutes=profile.second_reminder_minutes,
        waitlist_hold_minutes=profile.waitlist_hold_minutes,
        waitlist_auto_book=profile.waitlist_auto_book,
    )


def professor_out(user: User) -> ProfessorOut:
    return ProfessorOut(
        id=user.id,
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
        department=user.profile.department,
        bio=user.profile.bio,
        profile_picture=user.profile.profile_picture,
    )


def profile_form_changes(form: dict[str, str], user: User) -> tuple[dict[str, Any], dict[str, str]]:
    """Form strings to typed changes; numbers that do not parse are field errors."""
    fields = PROFILE_FORM_FIELDS if user.is_professor else PROFILE_FORM_FIELDS[:8]
    changes: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in fields:
        if field in BOOL_FIELDS:
            changes[field] = form.get(field) == "on"
        elif field == "second_reminder_minutes":
            raw = form.get(field, "")
            changes[field] = int(raw) if raw.isdigit() else None
        elif field in INT_FIELDS:
            try:
                changes[field] = int(form.get(field, ""))
            except ValueError:
                errors[field] = "Enter a whole number."
        elif field in form:
            changes[field] = form[field].strip()
    return changes, errors


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
        form = dict(await request.form())
        next_url = safe_next(form.get("next"), "")
        try:
            user = await sign_in(
                users, throttle, form.get("username", ""), form.get("password", ""), client_address(request)
            )
        except (AuthenticationFailed, TooManyAttempts) as exc:
            return self._login_failed(
                request, form, exc.message, next_url, 429 if isinstance(exc, TooManyAttempts) else 400
            )
        pending = request.session.get(PENDING_KEY)
        if pending and str(pending.get("email", "")).lower() == user.email.lower():
            # The password proved the account: now the Google identity with the same email may join it.
            await users.link_google(user.id, GoogleIdentity(**pending))
        start_session(request, {"user_id": str(user.id)})
        flash(request, f"Welcome, {user.first_name or user.username}.", "success")
        return redirect(request, next_url or landing_page(user))

    def _login_failed(
        self, request: Request[Any, Any, Any], form: dict[str, str], message: str, next_url: str, status: int
    ) -> Response[Any]:
        errors = {"password": message}
        if request.headers.get("hx-request") == "true":
            return form_errors(request, ("username", "password"), errors, status_code=status)
        context = {
            "next": next_url,
            "errors": errors,
            "form": {"username": form.get("username", "")},
            "google": get_settings().google_enabled,
        }
        return render(request, "pages/login.html", context, status_code=status)

    @post("/logout", status_code=200)
    async def logout(self, request: Request[Any, Any, Any]) -> Response[Any]:
        request.clear_session()
        return redirect(request, "/")

    @get("/register", name="register")
    async def register_page(self, request: Request[Any, Any, Any]) -> Response[Any]:
        context = {"errors": {}, "form": {"timezone": get_settings().default_timezone}, "timezones": SORTED_TIMEZONES}
        return render(request, "pages/register.html", context)

    @post("/register", status_code=200)
    async def register(self, request: Request[Any, Any, Any], users: NamedDependency[UserService]) -> Response[Any]:
        form = {key: value.strip() if key != "password" else value for key, value in dict(await request.form()).items()}
        form.pop("_csrf_token", None)
        try:
            user = await users.register(form)
        except FieldErrors as exc:
            if request.headers.get("hx-request") == "true":
                return form_errors(request, REGISTER_FIELDS, exc.errors)
            context = {"errors": exc.errors, "form": form, "timezones": SORTED_TIMEZONES}
            return render(request, "pages/register.html", context, status_code=422)
        start_session(request, {"user_id": str(user.id)})
        flash(request, "Your account is ready.", "success")
        return redirect(request, landing_page(user))

    @get("/settings", guards=[requires_user], name="settings")
    async def settings_page(self, request: Request[Any, Any, Any]) -> Response[Any]:
        settings = get_settings()
        context = {
            "errors": {},
            "timezones": SORTED_TIMEZONES,
            "app_url": settings.app_url,
            "google": settings.google_enabled,
        }
        return render(request, "pages/settings.html", context)

    @post("/settings/profile", guards=[requires_user], status_code=200)
    async def update_profile(
        self, request: Request[Any, Any, Any], users: NamedDependency[UserService]
    ) -> Response[Any]:
        user: User = request.user
        changes, errors = profile_form_changes(dict(await request.form()), user)
        try:
            if errors:
                raise FieldErrors(errors)
            await users.update_account(user.id, changes)
        except FieldErrors as exc:
            await users.repository.session.rollback()
            return form_errors(request, PROFILE_FORM_FIELDS, exc.errors)
        flash(request, "Profile saved.", "success")
        return redirect(request, "/settings")

    @post("/settings/calendar-feed", guards=[requires_user], status_code=200)
    async def regenerate_feed(
        self, request: Request[Any, Any, Any], users: NamedDependency[UserService]
    ) -> Response[Any]:
        await users.regenerate_feed_token(request.user.id)
        flash(request, "New calendar link created; the old one no longer works.", "success")
        return redirect(request, "/settings")

    @post("/settings/password", guards=[requires_user], status_code=200)
    async def change_password(
        self, request: Request[Any, Any, Any], users: NamedDependency[UserService]
    ) -> Response[Any]:
        form = dict(await request.form())
        try:
            await users.change_password(request.user.id, form.get("current_password", ""), form.get("new_password", ""))
        except FieldErrors as exc:
            return form_errors(request, PASSWORD_FIELDS, exc.errors)
        flash(request, "Password changed.", "success")
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
                raise FieldErrors.single("profile_picture", "Choose an image to upload.")
            await users.set_profile_picture(request.user.id, await upload.read(), get_settings())
        except FieldErrors as exc:
            return form_errors(request, ("profile_picture",), exc.errors)
        flash(request, "Picture updated.", "success")
        return redirect(request, "/settings")


class AccountApi(Controller):
    path = "/api/v1"
    tags = ["accounts"]
    dependencies = DEPENDENCIES

    @post("/auth/register", status_code=HTTP_201_CREATED, summary="Create an account (and its profile)")
    async def register(self, data: JSONBody[RegisterInput], users: NamedDependency[UserService]) -> UserOut:
        fields = {f: getattr(data, f) for f in data.__struct_fields__}
        return user_out(await users.register(fields))

    @post("/auth/token", status_code=200, summary="Exchange username (or email) and password for a bearer token")
    async def token(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[TokenRequest],
        users: NamedDependency[UserService],
        tokens: NamedDependency[ApiTokenService],
        throttle: NamedDependency[SignInThrottle],
    ) -> TokenResponse:
        user = await sign_in(users, throttle, data.username, data.password, client_address(request))
        token, row = await tokens.issue(user)
        return TokenResponse(token=token, expires_at=row.expires_at.isoformat())

    @post("/auth/logout", status_code=HTTP_204_NO_CONTENT, guards=[requires_user], summary="Revoke this token")
    async def logout(self, request: Request[Any, Any, Any], tokens: NamedDependency[ApiTokenService]) -> None:
        token = bearer_token(request)
        if token is None:
            raise NotAuthorizedException("Bearer token required.")
        await tokens.revoke(token)

    @get("/me", guards=[requires_user], summary="The signed-in user and profile")
    async def me(self, request: Request[Any, Any, Any]) -> UserOut:
        return user_out(request.user)

    @patch("/me", guards=[requires_user], summary="Change own user and profile fields")
    async def update_me(
        self, request: Request[Any, Any, Any], data: JSONBody[MeUpdate], users: NamedDependency[UserService]
    ) -> UserOut:
        return user_out(await users.update_account(request.user.id, data.changes()))

    @get("/professors", guards=[requires_user], summary="Professors, searchable by name or department")
    async def professors(
        self,
        users: NamedDependency[UserService],
        q: FromQuery[str] = "",
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        offset: Annotated[int, QueryParameter(ge=0, le=1_000_000)] = 0,
    ) -> ProfessorPage:
        rows, total = await users.search_professors(q, limit, offset)
        return ProfessorPage(items=[professor_out(u) for u in rows], total=total, limit=limit, offset=offset)

    @post("/me/password", guards=[requires_user], status_code=HTTP_204_NO_CONTENT, summary="Change password")
    async def change_password(
        self, request: Request[Any, Any, Any], data: JSONBody[PasswordChange], users: NamedDependency[UserService]
    ) -> None:
        await users.change_password(request.user.id, data.current_password, data.new_password)
