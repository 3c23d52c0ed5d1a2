"""The unit of work: one database transaction per request, queue job or command, and what runs once it commits.

This module is the one place that begins, commits and rolls back. Services write through the session they were
given and never commit. What must happen only once a change is durable (queueing an e-mail, a calendar sync, a
publish to Redis) is registered with `after_commit` by the domain that needs it, and runs after a successful
commit, whoever triggered the change; a rollback drops it.

- A request's unit of work is settled when its response starts: kept for answers below 400, undone for errors.
- A job's or a command's (`unit_of_work()`) is kept when its block ends and undone when the block raises.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Generic, Self, TypeVar

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncSession

from app.lib.database import get_alchemy_config

logger = logging.getLogger(__name__)

T = TypeVar("T")
AfterCommitAction = Callable[[list[Any]], Awaitable[None]]
_PENDING = "after_commit"
_UNIT_OF_WORK = "unit_of_work"
_SCOPE_KEY = "unit_of_work"


def after_commit(session: AsyncSession, action: AfterCommitAction, item: Any) -> None:
    """Run `action` once this session's transaction commits, with every item registered for it (in order)."""
    pending: dict[AfterCommitAction, list[Any]] = session.info.setdefault(_PENDING, {})
    pending.setdefault(action, []).append(item)


class AfterCommitSignal(Generic[T]):
    """A fact one domain announces inside a transaction, for what other domains want to follow once it commits.

    The announcing domain sends it (`send(session, item)`); a domain above it connects its action at composition
    (`connect(action)`), so the lower one never imports the higher one.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._actions: list[Callable[[list[T]], Awaitable[None]]] = []

    def connect(self, action: Callable[[list[T]], Awaitable[None]]) -> None:
        if action not in self._actions:
            self._actions.append(action)

    def send(self, session: AsyncSession, item: T) -> None:
        for action in self._actions:
            after_commit(session, action, item)


@asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """A part of the transaction that may fail on its own (a constraint, a refused attempt).

    When the block raises, its writes, the row locks it took and the after-commit actions it registered are undone,
    and the rest of the transaction stays usable; the exception goes on.
    """
    before = {action: list(items) for action, items in session.info.get(_PENDING, {}).items()}
    try:
        async with session.begin_nested():
            yield
    except BaseException:
        session.info[_PENDING] = before
        raise


class UnitOfWork:
    """One session's transaction and its after-commit actions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._settled = False
        session.info[_UNIT_OF_WORK] = self

    @classmethod
    def of(cls, session: AsyncSession) -> Self:
        """The unit of work that owns `session`."""
        unit: Self | None = session.info.get(_UNIT_OF_WORK)
        if unit is None:
            raise RuntimeError("This session belongs to no unit of work.")
        return unit

    @classmethod
    def of_scope(cls, scope: Scope) -> UnitOfWork:
        """The request's unit of work (opened by UnitOfWorkMiddleware)."""
        unit: UnitOfWork = scope["state"][_SCOPE_KEY]
        return unit

    async def commit(self) -> None:
        """Make the transaction durable, then run what was waiting for it."""
        session = self.session
        if session.in_transaction() or session.new or session.dirty or session.deleted:
            await session.commit()  # (a session nobody used has nothing to commit: many a request never touches it)
        pending: dict[AfterCommitAction, list[Any]] = self.session.info.pop(_PENDING, {})
        for action, items in pending.items():
            try:
                await action(items)
            except Exception:  # the change is committed; each action has its own recovery (e.g. the outbox sweep)
                logger.exception("after-commit action %s failed for %d item(s)", action.__qualname__, len(items))

    async def rollback(self) -> None:
        self.session.info.pop(_PENDING, None)
        await self.session.rollback()

    async def release(self) -> None:
        """Commit what was done so far and hand the connection back to the pool until the next statement.

        For a slow step that needs no database (a deliberate delay, hashing a password) in the middle of the work.
        """
        await self.commit()

    async def settle(self, status_code: int) -> None:
        """The request's own work: kept for an answer below 400, undone for an error answer. Once per request."""
        if self._settled:
            return
        self._settled = True
        if status_code < 400:
            await self.commit()
        else:
            await self.rollback()

    async def finish(self, status_code: int) -> None:
        """Settle the request's work; what was written after it (the web session's row) is kept either way."""
        await self.settle(status_code)
        if self.session.in_transaction():
            await self.commit()

    async def close(self) -> None:
        """Undo whatever was not committed and return the connection."""
        self.session.info.pop(_PENDING, None)
        await self.session.close()


@asynccontextmanager
async def unit_of_work(alchemy: SQLAlchemyAsyncConfig | None = None) -> AsyncIterator[UnitOfWork]:
    """A job's or a command's unit of work: committed when the block ends, rolled back when it raises."""
    async with (alchemy or get_alchemy_config()).get_session() as session:
        unit = UnitOfWork(session)
        try:
            yield unit
            await unit.commit()
        finally:
            await unit.close()


class UnitOfWorkMiddleware(ASGIMiddleware):
    """Opens the request's unit of work (its session connects on first use) and settles it as the response starts.

    It sits outside the web-session and authentication middleware, so the session row, the signed-in person and the
    handler share one session: a page view is one transaction. A failure to commit turns the answer into a 500.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, alchemy: SQLAlchemyAsyncConfig, exclude: tuple[str, ...] = ()) -> None:
        """`exclude`: beginnings of paths whose handlers use no session (static files, the health check), spared
        making one."""
        self.alchemy = alchemy
        if exclude:
            self.should_bypass_for_scope = lambda scope: scope["path"].startswith(exclude)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        # advanced-alchemy's `db_session` dependency finds this session in the scope and hands it to the handler.
        unit = UnitOfWork(self.alchemy.provide_session(scope["app"].state, scope))
        scope.setdefault("state", {})[_SCOPE_KEY] = unit
        replaced = False

        async def send_settled(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                try:
                    await unit.finish(message["status"])
                except Exception:
                    logger.exception("the request's changes could not be committed")
                    await unit.close()
                    replaced = True
                    await _send_failure(send)
                    return
            await send(message)

        try:
            await next_app(scope, receive, send_settled)
        finally:
            await unit.close()


async def _send_failure(send: Send) -> None:
    body = b"Something went wrong on our side; nothing was changed."
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
