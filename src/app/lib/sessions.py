"""Server-side web sessions kept in PostgreSQL (shared by every app process), with id rotation at sign-in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from advanced_alchemy.extensions.litestar.session import SQLAlchemyAsyncSessionBackend
from litestar.connection import ASGIConnection
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.session import SessionMiddleware
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.types import Empty, Message, ScopeSession

from app.db import get_alchemy_config
from app.domain.accounts.models import UserSession

ROTATE_SESSION_FLAG = "_rotate"
_ROTATED_ID_STATE = "rotated_session_id"


def start_session(connection: ASGIConnection[Any, Any, Any, Any], data: dict[str, Any]) -> None:
    """Replace the session with `data` under a fresh id (the old id dies, so a planted id is worthless)."""
    connection.set_session({**data, ROTATE_SESSION_FLAG: True})


class DatabaseSessionBackend(SQLAlchemyAsyncSessionBackend):
    async def store_in_message(
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
        await super().store_in_message(scope_session, message, connection)

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        rotated: str | None = connection.state.get(_ROTATED_ID_STATE)
        return rotated or super().get_session_id(connection)


@dataclass
class DatabaseSessionConfig(ServerSideSessionConfig):
    @property
    def middleware(self) -> DefineMiddleware:
        backend = DatabaseSessionBackend(config=self, alchemy_config=get_alchemy_config(), model=UserSession)
        return DefineMiddleware(SessionMiddleware, backend=backend)
