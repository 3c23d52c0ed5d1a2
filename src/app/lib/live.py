"""Live events: every slot or booking change is announced to every app process once its transaction commits.

With PostgreSQL (the default), the announcement is a NOTIFY issued inside the changing transaction, so it
is delivered exactly when (and only if) the transaction commits, from any process: app, worker or CLI.
With CHANNELS_URL=redis://..., events are PUBLISHed right after the commit (an after-commit action).
Litestar's ChannelsPlugin listens on the same channels and fans events out to the SSE streams.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any
from uuid import UUID

import asyncpg
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.asyncpg import AsyncPgChannelsBackend
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.lib.database import get_database_url
from app.lib.unit_of_work import after_commit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveEvent:
    """What changed; streams render what each viewer should now see."""

    kind: str  # slot_changed | slots_added | booking_created | booking_changed | resync (after a lost listener)
    professor_id: str
    slot_id: str | None = None
    booking_id: str | None = None
    event_id: str = ""

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, raw: bytes | str) -> LiveEvent:
        return cls(**json.loads(raw))


def professor_channel(professor_id: UUID | str) -> str:
    return f"professor_{UUID(str(professor_id)).hex}"


def uses_redis() -> bool:
    url = get_settings().channels_url or ""
    return url.startswith(("redis://", "rediss://"))


async def announce(
    session: AsyncSession, kind: str, professor_id: UUID, slot_id: UUID | None = None, booking_id: UUID | None = None
) -> None:
    """Queue a live event on the current transaction; it goes out when the transaction commits."""
    event = LiveEvent(
        kind=kind,
        professor_id=str(professor_id),
        slot_id=str(slot_id) if slot_id else None,
        booking_id=str(booking_id) if booking_id else None,
        event_id=uuid.uuid4().hex,
    )
    if uses_redis():
        after_commit(session, publish_to_redis, event)
        return
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": professor_channel(professor_id), "payload": event.encode()},
    )


async def publish_to_redis(events: list[LiveEvent]) -> None:
    """After a commit, with the Redis backend (PostgreSQL delivers its NOTIFY at the commit itself)."""
    client = _redis_client()
    for event in events:
        await client.publish(professor_channel(event.professor_id), event.encode())


@lru_cache(maxsize=1)
def _redis_client() -> Any:
    from redis.asyncio import Redis

    return Redis.from_url(get_settings().channels_url or "")


class ReconnectingAsyncPgBackend(AsyncPgChannelsBackend):
    """Litestar's LISTEN/NOTIFY backend, plus: when the listening connection dies (a database restart), open a
    new one and LISTEN again on every channel; open grids re-fetch their week when their stream reconnects."""

    RETRY_SECONDS = 0.5

    async def on_startup(self) -> None:
        await super().on_startup()
        self._listener_conn.add_termination_listener(self._lost)
        self._reconnecting: asyncio.Task[None] | None = None

    def _lost(self, _connection: Any) -> None:
        if self._queue is not None and (self._reconnecting is None or self._reconnecting.done()):
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        while self._queue is not None:
            try:
                async with self._listener_lock:
                    connection = await self._connect()
                    for channel in self._subscribed_channels:
                        await connection.add_listener(channel, self._listener)  # type: ignore[arg-type]
                    connection.add_termination_listener(self._lost)
                    self._listener_conn = connection
                    # Changes made while we were deaf are unknown: tell every open stream to re-fetch.
                    for channel in self._subscribed_channels:
                        resync = LiveEvent(kind="resync", professor_id=str(UUID(channel.removeprefix("professor_"))))
                        self._queue.put_nowait((channel, resync.encode().encode()))
                logger.info("live events: listening again on %d channel(s)", len(self._subscribed_channels))
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await asyncio.sleep(self.RETRY_SECONDS)


def create_channels_plugin() -> ChannelsPlugin:
    if uses_redis():
        from litestar.channels.backends.redis import RedisChannelsPubSubBackend

        backend: Any = RedisChannelsPubSubBackend(redis=_redis_client())
    else:
        # The address is resolved when the backend connects (at startup), not when the app is built.
        backend = ReconnectingAsyncPgBackend(make_connection=lambda: asyncpg.connect(dsn=get_database_url()))
    return ChannelsPlugin(backend=backend, arbitrary_channels_allowed=True, create_ws_route_handlers=False)
