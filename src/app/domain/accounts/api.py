"""The accounts JSON API: registration, tokens, the signed-in person, the professor directory."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from app.domain.accounts.deps import DEPENDENCIES
from app.domain.accounts.models import User
from app.domain.accounts.schemas import (
    MeUpdate,
    PasswordChange,
    ProfessorOut,
    ProfessorPage,
    RegisterInput,
    TokenOut,
    TokenRequest,
    TokenResponse,
    UserOut,
)
from app.domain.accounts.services import UserService
from app.domain.accounts.signin import SignInThrottle, register_account, sign_in
from app.domain.accounts.tokens import ApiTokenService
from app.domain.audit.services import AuditAction, AuditService
from app.lib.guards import requires_user
from app.lib.http import bearer_token, client_address
from app.lib.i18n import gettext as _
from app.lib.security import token_digest


def user_out(user: User) -> UserOut:
    profile = user.profile
    return UserOut(
        id=user.id,
        username=user.username,
        email=user.email,
        email_verified=user.email_verified_at is not None,
        user_type=user.user_type,
        first_name=user.first_name,
        last_name=user.last_name,
        phone_number=user.phone_number,
        timezone=user.timezone,
        locale=user.locale,
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
        students_may_reschedule=profile.students_may_reschedule,
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


class AccountApi(Controller):
    path = "/api/v1"
    tags = ["accounts"]
    dependencies = DEPENDENCIES

    @post("/auth/register", status_code=HTTP_201_CREATED, summary="Create an account (and its profile)")
    async def register(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RegisterInput],
        users: NamedDependency[UserService],
        throttle: NamedDependency[SignInThrottle],
    ) -> UserOut:
        fields = {f: getattr(data, f) for f in data.__struct_fields__}
        return user_out(await register_account(users, throttle, fields, client_address(request)))

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
        token, row = await tokens.issue(user, data.name, data.expires_in_days)
        return TokenResponse(token=token, expires_at=row.expires_at, id=row.id, name=row.name)

    @get("/me/tokens", guards=[requires_user], summary="Your API tokens still valid (never their values)")
    async def my_tokens(
        self, request: Request[Any, Any, Any], tokens: NamedDependency[ApiTokenService]
    ) -> list[TokenOut]:
        current = token_digest(bearer_token(request) or "")
        return [
            TokenOut(
                id=row.id,
                name=row.name,
                created_at=row.created_at,
                last_used_at=row.last_used_at,
                expires_at=row.expires_at,
                current=row.token_hash == current,
            )
            for row in await tokens.of_user(request.user.id)
        ]

    @delete("/me/tokens/{token_id:uuid}", guards=[requires_user], summary="Revoke one of your API tokens")
    async def revoke_token(
        self, request: Request[Any, Any, Any], token_id: FromPath[UUID], tokens: NamedDependency[ApiTokenService]
    ) -> None:
        await tokens.revoke_by_id(request.user.id, token_id)

    @post("/auth/logout", status_code=HTTP_204_NO_CONTENT, guards=[requires_user], summary="Revoke this token")
    async def logout(self, request: Request[Any, Any, Any], tokens: NamedDependency[ApiTokenService]) -> None:
        token = bearer_token(request)
        if token is None:
            raise NotAuthorizedException(_("Bearer token required."))
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
        """Every other API token is revoked and every web session ends; the token making this call lives on."""
        await users.change_password(
            request.user.id, data.current_password, data.new_password, keep_token=bearer_token(request)
        )
        me = request.user.id
        await AuditService(users.repository.session).record(
            me, AuditAction.PASSWORD_CHANGED, me, ip=client_address(request)
        )
