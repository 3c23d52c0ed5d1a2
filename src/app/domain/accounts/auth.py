"""Who is asking: bearer tokens for the API, server-side sessions for the web (see lib/guards for the roles)."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from app.domain.accounts.models import User
from app.domain.accounts.tokens import ApiTokenService
from app.lib.http import bearer_token, is_api
from app.lib.sessions import out_of_its_frame, start_session
from app.lib.unit_of_work import UnitOfWork

SESSION_USER_KEY = "user_id"
# The account's session epoch when this session signed in: a later password change or "sign out everywhere"
# raises the account's epoch, and every session holding an older one is signed out.
SESSION_EPOCH_KEY = "epoch"
# When the person last proved who they are (a password or Google): erasing an account without a password needs a
# recent one.
SESSION_SIGNED_IN_KEY = "signed_in_at"


def begin_session(connection: ASGIConnection[Any, Any, Any, Any], user: User, *, fresh: bool = True) -> None:
    """Sign `user` in on this browser, under a fresh session id. `fresh=False`: the same sign-in carried over to a
    new session epoch (after a password change or "sign out everywhere"), keeping when it happened."""
    previous = connection.session.get(SESSION_SIGNED_IN_KEY, 0) if "session" in connection.scope else 0
    data = {
        SESSION_USER_KEY: str(user.id),
        SESSION_EPOCH_KEY: user.session_epoch,
        SESSION_SIGNED_IN_KEY: int(time.time()) if fresh else previous,
    }
    start_session(connection, data)


def signed_in_within(connection: ASGIConnection[Any, Any, Any, Any], seconds: float) -> bool:
    """The browser's sign-in happened less than `seconds` ago."""
    signed_in_at = connection.session.get(SESSION_SIGNED_IN_KEY, 0) if "session" in connection.scope else 0
    return isinstance(signed_in_at, int) and time.time() - signed_in_at < seconds


class AuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Sets `request.user` (None when anonymous); the guards decide what anonymous may do.

    The API accepts only bearer tokens and the web only the session cookie, so a browser's cookie can never
    authorise an API call (which is why the API is exempt from CSRF). The lookup runs in the request's unit of work.
    """

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        session = UnitOfWork.of_scope(connection.scope).session
        if is_api(connection):
            token = bearer_token(connection)
            if token is None:
                return AuthenticationResult(user=None, auth=None)
            user = await ApiTokenService(session=session).resolve(token)
            return AuthenticationResult(user=user, auth=token if user else None)
        user_id = connection.session.get(SESSION_USER_KEY) if "session" in connection.scope else None
        if not user_id or out_of_its_frame(connection):
            return AuthenticationResult(user=None, auth=None)
        # Read with the session row (lib/sessions, joined_entity): found in the identity map, no second round trip.
        user = await session.get(User, UUID(user_id))
        if user is None or not user.is_active or connection.session.get(SESSION_EPOCH_KEY, 0) != user.session_epoch:
            return AuthenticationResult(user=None, auth=None)
        return AuthenticationResult(user=user, auth="session")


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> User | None:
    user = connection.scope.get("user")
    return user if isinstance(user, User) else None
