"""Server-side web sessions kept in PostgreSQL (shared by every app process), with id rotation at sign-in.

A session started inside a frame (an LMS page embedding the tool) is marked embedded, and its cookies are written
for a third-party frame: `SameSite=None; Secure; Partitioned` (CHIPS), so Chrome keeps them there even where it
blocks third-party cookies. Every other session keeps the site's SameSite=Lax cookie.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from advanced_alchemy.extensions.litestar.session import SESSION_ID_MAX_LENGTH, SQLAlchemyAsyncSessionBackend
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.session import SessionMiddleware
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.types import ASGIApp, Empty, Message, Receive, Scope, ScopeSession, Send
from litestar.utils.dataclass import extract_dataclass_items

from app.db import get_alchemy_config
from app.domain.accounts.models import UserSession

ROTATE_SESSION_FLAG = "_rotate"
EMBEDDED_SESSION_KEY = "embedded"
_ROTATED_ID_STATE = "rotated_session_id"
_LOADED_STATE = "loaded_session"
# A session in use has its expiry pushed back at most this often (one write), not on every request.
REFRESH_EXPIRY_EVERY = timedelta(hours=1)
FRAME_DESTINATIONS = ("iframe", "frame")
PARTITIONED_ATTRIBUTES = ("SameSite=None", "Secure", "Partitioned")


def is_framed(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """A navigation inside a frame, as the browser declares it (Sec-Fetch-Dest cannot be set by a page)."""
    return connection.headers.get("sec-fetch-dest") in FRAME_DESTINATIONS


def start_session(connection: ASGIConnection[Any, Any, Any, Any], data: dict[str, Any]) -> None:
    """Replace the session with `data` under a fresh id (the old id dies, so a planted id is worthless)."""
    flags: dict[str, Any] = {ROTATE_SESSION_FLAG: True}
    if is_framed(connection):
        flags[EMBEDDED_SESSION_KEY] = True
    connection.set_session({**data, **flags})


def partitioned_cookie(set_cookie: str) -> str:
    """The same Set-Cookie for a third-party frame: sent cross-site, kept in the embedding site's partition."""
    name_value, *attributes = (part.strip() for part in set_cookie.split(";"))
    kept = [a for a in attributes if a.split("=", 1)[0].lower() not in ("samesite", "secure", "partitioned")]
    return "; ".join([name_value, *kept, *PARTITIONED_ATTRIBUTES])


@dataclass(frozen=True)
class LoadedSession:
    data: bytes
    expires_at: datetime


class DatabaseSessionBackend(SQLAlchemyAsyncSessionBackend):
    """Reads a session once per request and writes it back only when it changed or its expiry needs extending.

    The stock backend writes twice on every request (a new expiry when loading, the data again when storing); a
    page view by a signed-in person now costs one indexed read and no write.
    """

    async def load_from_connection(self, connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
        session_id = connection.cookies.get(self.config.key, "")[:SESSION_ID_MAX_LENGTH]
        if not session_id:
            return {}
        async with self.alchemy.get_session() as db_session:
            row = await self._get_session_obj(db_session=db_session, session_id=session_id)
        if row is None:
            return {}
        if row.expires_at <= datetime.now(UTC):
            await self.delete(session_id, store=self.config.get_store_from_app(connection.scope["app"]))
            return {}
        connection.state[_LOADED_STATE] = LoadedSession(data=row.data, expires_at=row.expires_at)
        return self.deserialize_data(row.data)

    async def store_in_message(
        self, scope_session: ScopeSession, message: Message, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> None:
        embedded = isinstance(scope_session, dict) and bool(scope_session.get(EMBEDDED_SESSION_KEY))
        await self._store(scope_session, message, connection)
        if embedded or is_framed(connection):
            # The CSRF cookie (set further in) must reach the frame too; the session cookie only when the session
            # lives there, or a same-site frame could split one browser's session cookie into two variants.
            headers = MutableScopeHeaders.from_message(message)
            cookies = headers.getall("set-cookie", [])
            if cookies:
                del headers["set-cookie"]
            for cookie in cookies:
                own = cookie.startswith(f"{self.config.key}=")
                headers.add("set-cookie", partitioned_cookie(cookie) if embedded or not own else cookie)

    async def _store(
        self, scope_session: ScopeSession, message: Message, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> None:
        if isinstance(scope_session, dict) and not scope_session:
            # Anonymous visitors get no session row; an emptied session is deleted.
            if not connection.cookies.get(self.config.key):
                return
            scope_session = Empty
        if isinstance(scope_session, dict) and scope_session.pop(ROTATE_SESSION_FLAG, None):
            old_id = connection.cookies.get(self.config.key)
            if old_id and old_id != "null":
                await self.delete(old_id, store=self.config.get_store_from_app(connection.scope["app"]))
            connection.state[_ROTATED_ID_STATE] = self.generate_session_id()
        if isinstance(scope_session, dict) and self._unchanged(scope_session, connection):
            MutableScopeHeaders.from_message(message).add("Set-Cookie", self._cookie(self.get_session_id(connection)))
            return
        await super().store_in_message(scope_session, message, connection)

    def _unchanged(self, scope_session: dict[str, Any], connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
        """The same data under the same id, with an expiry extended less than REFRESH_EXPIRY_EVERY ago."""
        loaded: LoadedSession | None = connection.state.get(_LOADED_STATE)
        if loaded is None or _ROTATED_ID_STATE in connection.state:
            return False
        refreshed_at = loaded.expires_at - timedelta(seconds=self.config.max_age)
        return (
            datetime.now(UTC) - refreshed_at < REFRESH_EXPIRY_EVERY
            and self.serialize_data(scope_session, connection.scope) == loaded.data
        )

    def _cookie(self, session_id: str) -> str:
        """The session cookie as the stock backend writes it (sent on every response, which slides its expiry)."""
        params = dict(extract_dataclass_items(self.config, exclude_none=True, include=Cookie.__dict__.keys()))
        return Cookie(value=session_id, key=self.config.key, **params).to_header(header="")

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        rotated: str | None = connection.state.get(_ROTATED_ID_STATE)
        return rotated or super().get_session_id(connection)


@dataclass
class DatabaseSessionConfig(ServerSideSessionConfig):
    @property
    def middleware(self) -> DefineMiddleware:
        backend = DatabaseSessionBackend(config=self, alchemy_config=get_alchemy_config(), model=UserSession)
        return DefineMiddleware(SessionMiddleware, backend=backend)


def release_database_session(app: ASGIApp) -> ASGIApp:
    """Middleware, inside the session middleware: end the request's database session as the response starts.

    The session middleware writes the web session when the response starts, on a connection of its own, while the
    handler's database session would otherwise keep its pooled connection until the app-level before-send hook
    that runs afterwards. Each signed-in request would then hold one connection while waiting for a second, and a
    burst of requests larger than the pool deadlocks until the pool's timeout. Running the same commit-or-rollback
    hook here first returns the connection; the app-level hook then finds nothing left to do (and still covers the
    error responses, which bypass the middleware stack).
    """
    end_session = cast("Callable[[Message, Scope], Awaitable[None]]", get_alchemy_config().before_send_handler)

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return

        async def send_after_ending_session(message: Message) -> None:
            await end_session(message, scope)
            await send(message)

        await app(scope, receive, send_after_ending_session)

    return middleware
