"""Server-side web sessions kept in PostgreSQL (shared by every app process), with id rotation at sign-in.

The rows are read and written through the request's unit of work: a page view reads its session in the same
transaction as everything else and writes nothing unless the session changed (or its expiry is due to be pushed).

A session started inside a frame (an LMS page embedding the tool) is marked embedded, and its cookies are written
for a third-party frame: `SameSite=None; Secure; Partitioned` (CHIPS), so Chrome keeps them there even where it
blocks third-party cookies. Every other session keeps the site's SameSite=Lax cookie. Because an embedded
session's cookie travels cross-site, it is honoured cross-site only inside a frame (`out_of_its_frame`): a link
from another site opening the tool's pages at the top level finds nobody signed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any

from advanced_alchemy.extensions.litestar.session import SESSION_ID_MAX_LENGTH, SessionModelMixin
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.session import SessionMiddleware
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.types import Empty, Message, ScopeSession
from litestar.utils.dataclass import extract_dataclass_items
from sqlalchemy import bindparam, case, cast, delete, func, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from app.lib.clock import utcnow
from app.lib.unit_of_work import UnitOfWork

ROTATE_SESSION_FLAG = "_rotate"
EMBEDDED_SESSION_KEY = "embedded"
_ROTATED_ID_STATE = "rotated_session_id"
_LOADED_STATE = "loaded_session"
_JOINED_STATE = "loaded_session_entity"
# A session in use has its expiry pushed back at most this often (one write), not on every request.
REFRESH_EXPIRY_EVERY = timedelta(hours=1)
FRAME_DESTINATIONS = ("iframe", "frame")
PARTITIONED_ATTRIBUTES = ("SameSite=None", "Secure", "Partitioned")
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def is_framed(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """A navigation inside a frame, as the browser declares it (Sec-Fetch-Dest cannot be set by a page)."""
    return connection.headers.get("sec-fetch-dest") in FRAME_DESTINATIONS


def out_of_its_frame(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """An embedded session's cookie arriving from another site, but not to load a frame: not its use."""
    embedded = "session" in connection.scope and bool(connection.session.get(EMBEDDED_SESSION_KEY))
    return embedded and connection.headers.get("sec-fetch-site") == "cross-site" and not is_framed(connection)


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
    refreshed_at: datetime  # when the expiry was last pushed back


class DatabaseSessionBackend(ServerSideSessionBackend):
    """Reads a session once per request and writes it back only when it changed or its expiry needs extending."""

    def __init__(self, config: DatabaseSessionConfig) -> None:
        super().__init__(config=config)
        if config.model is None:
            raise ValueError("DatabaseSessionConfig needs the session table's model")
        self.model: type[SessionModelMixin] = config.model
        self.joined_entity: Any = config.joined_entity
        self.joined_key = config.joined_key
        self._load_query = self._make_load_query()  # built once, run with the session id

    @staticmethod
    def _db(connection: ASGIConnection[Any, Any, Any, Any]) -> AsyncSession:
        return UnitOfWork.of_scope(connection.scope).session

    async def load_from_connection(self, connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
        session_id = connection.cookies.get(self.config.key, "")[:SESSION_ID_MAX_LENGTH]
        if not session_id:
            return {}
        db = self._db(connection)
        row = (await db.execute(self._load_query, {"session_id": session_id})).one_or_none()
        if row is None:
            return {}
        if row.expires_at <= utcnow():
            await db.execute(delete(self.model).where(self.model.session_id == session_id))
            return {}
        refreshed_at = row.expires_at - timedelta(seconds=self.config.max_age)
        connection.state[_LOADED_STATE] = LoadedSession(data=row.data, refreshed_at=refreshed_at)
        if self.joined_entity is not None:
            # Held for the request: the identity map keeps only weak references.
            connection.state[_JOINED_STATE] = row[2]
        return self.deserialize_data(row.data)

    def _make_load_query(self) -> Any:
        """The session's row; with `joined_entity`, also the row its data refers to (the signed-in person), in the
        same round trip: it lands in the unit of work's identity map, where `AsyncSession.get` then finds it."""
        query = select(self.model.data, self.model.expires_at).where(self.model.session_id == bindparam("session_id"))
        entity = self.joined_entity
        if entity is None:
            return query
        reference = cast(func.convert_from(self.model.data, "UTF8"), JSONB)[self.joined_key].astext
        entity_id = case((reference.regexp_match(UUID_PATTERN), cast(reference, PG_UUID)), else_=None)
        return query.add_columns(entity).outerjoin(entity, entity.id == entity_id)

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
        headers = MutableScopeHeaders.from_message(message)
        if isinstance(scope_session, dict) and not scope_session:
            # Anonymous visitors get no session row; an emptied session is deleted.
            if not connection.cookies.get(self.config.key):
                return
            scope_session = Empty
        rotated = isinstance(scope_session, dict) and scope_session.pop(ROTATE_SESSION_FLAG, None)
        if isinstance(scope_session, dict) and not rotated and self._unchanged(scope_session, connection):
            headers.add("Set-Cookie", self._cookie(self.get_session_id(connection)))
            return
        # The web session is kept whatever the request's outcome: its own work is settled (kept or undone) first.
        unit = UnitOfWork.of_scope(connection.scope)
        await unit.settle(message["status"] if message["type"] == "http.response.start" else 500)
        if rotated:
            old_id = connection.cookies.get(self.config.key)
            if old_id and old_id != "null":
                await self._delete(unit.session, old_id)
            connection.state[_ROTATED_ID_STATE] = self.generate_session_id()
        session_id = self.get_session_id(connection)
        if scope_session is Empty:
            await self._delete(unit.session, session_id)
            headers.add("Set-Cookie", self._cookie("null", expires=0))
            return
        assert isinstance(scope_session, dict)
        await self._write(unit.session, session_id, self.serialize_data(scope_session, connection.scope))
        headers.add("Set-Cookie", self._cookie(session_id))

    def _unchanged(self, scope_session: dict[str, Any], connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
        """The same data under the same id, with an expiry extended less than REFRESH_EXPIRY_EVERY ago."""
        loaded: LoadedSession | None = connection.state.get(_LOADED_STATE)
        if loaded is None:
            return False
        return (
            utcnow() - loaded.refreshed_at < REFRESH_EXPIRY_EVERY
            and self.serialize_data(scope_session, connection.scope) == loaded.data
        )

    async def _write(self, db: AsyncSession, session_id: str, data: bytes) -> None:
        values = {
            "session_id": session_id[:SESSION_ID_MAX_LENGTH],
            "data": data,
            "expires_at": utcnow() + timedelta(seconds=self.config.max_age),
        }
        upsert = insert(self.model).values(**values)
        await db.execute(
            upsert.on_conflict_do_update(
                index_elements=["session_id"],
                set_={"data": upsert.excluded.data, "expires_at": upsert.excluded.expires_at},
            )
        )

    async def _delete(self, db: AsyncSession, session_id: str) -> None:
        await db.execute(delete(self.model).where(self.model.session_id == session_id[:SESSION_ID_MAX_LENGTH]))

    def _cookie(self, value: str, **extra: Any) -> str:
        """The session cookie as Litestar writes it (sent on every response, which slides its expiry)."""
        if not extra:
            return self._plain_cookie(value)
        return Cookie(value=value, key=self.config.key, **{**self._cookie_params, **extra}).to_header(header="")

    @cached_property
    def _plain_cookie(self) -> Callable[[str], str]:
        """The cookie of a session id with the configured attributes only (a function of the id: Max-Age, no date),
        made once per id: writing it was 2 % of a page's CPU."""

        @lru_cache(maxsize=4096)
        def plain_cookie(value: str) -> str:
            return Cookie(value=value, key=self.config.key, **self._cookie_params).to_header(header="")

        return plain_cookie

    @cached_property
    def _cookie_params(self) -> dict[str, Any]:
        """The cookie's attributes from the configuration (read once: they were 1.5 % of a page's CPU)."""
        return dict(extract_dataclass_items(self.config, exclude_none=True, include=Cookie.__dict__.keys()))

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        rotated: str | None = connection.state.get(_ROTATED_ID_STATE)
        return rotated or super().get_session_id(connection)


@dataclass
class DatabaseSessionConfig(ServerSideSessionConfig):
    model: type[SessionModelMixin] | None = None  # the app's session table
    # A mapped class whose id the session data holds under `joined_key` (the signed-in user), read with the session.
    joined_entity: Any = None
    joined_key: str = ""

    @property
    def middleware(self) -> DefineMiddleware:
        return DefineMiddleware(SessionMiddleware, backend=DatabaseSessionBackend(config=self))
