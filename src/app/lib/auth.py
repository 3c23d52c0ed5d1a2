"""Who is asking: bearer tokens for the API, server-side sessions for the web; and the role guards."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from app.db import get_alchemy_config
from app.domain.accounts.models import User
from app.domain.accounts.services import ApiTokenService, UserService

API_PREFIX = "/api/"
SESSION_USER_KEY = "user_id"


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def is_api(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return connection.scope["path"].startswith(API_PREFIX)


class AuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Sets `request.user` (None when anonymous); the guards decide what anonymous may do.

    The API accepts only bearer tokens and the web only the session cookie, so a browser's cookie can never
    authorise an API call (which is why the API is exempt from CSRF).
    """

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        alchemy = get_alchemy_config()
        if is_api(connection):
            token = bearer_token(connection)
            if token is None:
                return AuthenticationResult(user=None, auth=None)
            async with alchemy.get_session() as session:
                user = await ApiTokenService(session=session).resolve(token)
            return AuthenticationResult(user=user, auth=token if user else None)
        user_id = connection.session.get(SESSION_USER_KEY) if "session" in connection.scope else None
        if not user_id:
            return AuthenticationResult(user=None, auth=None)
        async with alchemy.get_session() as session:
            user = await UserService(session=session).get_one_or_none(id=UUID(user_id), is_active=True)
        return AuthenticationResult(user=user, auth="session" if user else None)


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> User | None:
    user = connection.scope.get("user")
    return user if isinstance(user, User) else None


def requires_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if current_user(connection) is None:
        raise NotAuthorizedException("Sign in to continue.")


def requires_professor(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    requires_user(connection, handler)
    user = current_user(connection)
    if user is None or not user.is_professor:
        raise PermissionDeniedException("Only professors can do this.")


def requires_student(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    requires_user(connection, handler)
    user = current_user(connection)
    if user is None or not user.is_student:
        raise PermissionDeniedException("Only students can do this.")


def requires_admin(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    requires_user(connection, handler)
    user = current_user(connection)
    if user is None or not user.is_admin:
        raise PermissionDeniedException("Only administrators can do this.")
