"""Commit, then do what must only happen once the change is durable: publish live events, queue e-mails."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from uuid import UUID

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.lib.live import PENDING_KEY, publish_collected

OUTBOX_KEY = "outbox_ids"
CALENDAR_KEY = "calendar_booking_ids"
logger = logging.getLogger(__name__)


def remember_outbox(session: AsyncSession, ids: Iterable[UUID]) -> None:
    session.info.setdefault(OUTBOX_KEY, []).extend(ids)


def remember_calendar_sync(session: AsyncSession, booking_id: UUID) -> None:
    session.info.setdefault(CALENDAR_KEY, set()).add(booking_id)


async def commit(session: AsyncSession) -> None:
    """Commit; then publish live events (Redis backend) and queue delivery of the new outbox rows.

    A crash between the commit and the enqueue loses nothing: the outbox sweep re-queues rows left `queued`.
    """
    await session.commit()
    await publish_collected(session)
    ids: list[UUID] = session.info.pop(OUTBOX_KEY, [])
    bookings: set[UUID] = session.info.pop(CALENDAR_KEY, set())
    if not (ids or bookings):
        return
    from app.lib.queue import enqueue_calendar_syncs, enqueue_deliveries

    try:
        await enqueue_deliveries(ids)
        await enqueue_calendar_syncs(bookings)
    except Exception:  # the change is committed; the outbox sweep will queue these rows
        logger.exception("could not queue %d notification(s); the sweep will retry", len(ids))


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    """Rolled-back rows have no e-mail to send and no event to publish."""
    session.info.pop(OUTBOX_KEY, None)
    session.info.pop(CALENDAR_KEY, None)
    session.info.pop(PENDING_KEY, None)
