"""The outbox: notification rows written in the same transaction as the change that causes them.

Each domain records the messages its changes call for; once the transaction commits, a delivery job is queued for
each new row (an after-commit action), whoever committed it. A row whose job was lost (a crash between commit and
queue, a dead worker) is queued again by the outbox sweep.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, NamedTuple
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.notifications.models import Notification, NotificationStatus
from app.lib.clock import utcnow
from app.lib.database import run_core
from app.lib.i18n import N_, gettext
from app.lib.queue import get_queue
from app.lib.unit_of_work import after_commit

DELIVERY_TASK = "deliver_notification"
# An outbox row, unless its dedupe key is taken; built once, run with the row's values (run_core: the ORM's bulk
# insert handling of the statement built anew was a tenth of a booking's CPU).
RECORD = (
    insert(Notification)
    .values(
        user_id=bindparam("user_id"),
        booking_id=bindparam("booking_id"),
        kind=bindparam("kind"),
        dedupe_key=bindparam("dedupe_key"),
        status=NotificationStatus.QUEUED.value,
        attempts=0,
        last_error="",
        context=bindparam("context"),
    )
    .on_conflict_do_nothing(index_elements=["dedupe_key"])
    .returning(Notification.id)
)


class Message(NamedTuple):
    """One message a change calls for: to whom, about which booking, of which kind."""

    user_id: UUID
    booking_id: UUID | None
    kind: str
    context: dict[str, Any] | None = None
    variant: str = ""


def dedupe_key(booking_id: UUID | None, kind: str, user_id: UUID, variant: str = "") -> str:
    """At most one message per (booking, kind, recipient[, variant such as a lead time or a revision])."""
    return ":".join(part for part in (str(booking_id or "-"), kind, str(user_id), variant) if part)


def retry_delay_seconds(attempts: int) -> int:
    """Backoff after the n-th failed attempt: 30 s, 1 min, 2 min, 4 min... (none before the first attempt)."""
    return int(min(30 * 2 ** (attempts - 1), 3600)) if attempts else 0


async def queue_deliveries(
    ids: Sequence[UUID], delay_seconds: float = 0, attempt: int = 0, key_suffix: str = ""
) -> None:
    """One delivery job per outbox row; the job key makes a second enqueue of the same attempt a no-op.

    `key_suffix` makes a job that runs even while another job for the same attempt is held by a worker that may be
    dead (a replacement worker's start): whichever comes second finds the row locked or sent and does nothing.
    """
    settings = get_settings()
    if not settings.smtp_host:
        return  # no SMTP: mail stays in the outbox (see /dev/mail in development)
    queue = await get_queue()
    scheduled = int(time.time() + delay_seconds) if delay_seconds else 0
    for notification_id in ids:
        await queue.enqueue(
            DELIVERY_TASK,
            key=f"deliver:{notification_id}:{attempt}{key_suffix}",
            notification_id=str(notification_id),
            scheduled=scheduled,
            # Stuck (a dead or hung worker): the queue's sweep runs it again at once. Sending twice is prevented by the
            # row's lock and status; a message accepted by SMTP just before a crash may arrive again, same Message-ID.
            timeout=settings.stuck_job_seconds,
            retries=2,
        )


def deliver_after_commit(session: AsyncSession, ids: Iterable[UUID]) -> None:
    """The rows were written in this transaction: queue their delivery once it commits."""
    for notification_id in ids:
        after_commit(session, queue_deliveries, notification_id)


class NotificationService(SQLAlchemyAsyncRepositoryService[Notification]):
    class Repository(SQLAlchemyAsyncRepository[Notification]):
        model_type = Notification

    repository_type = Repository

    async def record(
        self,
        *,
        user_id: UUID,
        booking_id: UUID | None,
        kind: str,
        context: dict[str, Any] | None = None,
        variant: str = "",
    ) -> None:
        """Add an outbox row to the current transaction; a duplicate (same dedupe key) is silently skipped."""
        await self.record_all([Message(user_id, booking_id, kind, context, variant)])

    async def record_all(self, messages: Sequence[Message]) -> None:
        """`record` for several messages, in one statement."""
        if not messages:
            return
        rows = [
            {
                "user_id": message.user_id,
                "booking_id": message.booking_id,
                "kind": message.kind,
                "dedupe_key": dedupe_key(message.booking_id, message.kind, message.user_id, message.variant),
                "context": message.context or {},
            }
            for message in messages
        ]
        created = (await run_core(self.repository.session, RECORD, rows[0] if len(rows) == 1 else rows)).scalars()
        deliver_after_commit(self.repository.session, created)

    async def stale_queued(self, older_than_seconds: int) -> list[tuple[UUID, int]]:
        """Rows still `queued` this long after their delivery was due (at once, or after a failed attempt's backoff):
        their job may be lost (a crash between commit and enqueue, a dead worker)."""
        cutoff = utcnow() - timedelta(seconds=older_than_seconds)
        query = (
            select(Notification.id, Notification.attempts, Notification.updated_at)
            .where(Notification.status == NotificationStatus.QUEUED.value, Notification.updated_at < cutoff)
            .order_by(Notification.updated_at)
            .limit(1000)
        )
        rows = (await self.repository.session.execute(query)).all()
        return [
            (row_id, attempts)
            for row_id, attempts, changed in rows
            if changed + timedelta(seconds=retry_delay_seconds(attempts)) < cutoff
        ]

    async def retry_failed(self, ids: Iterable[UUID] | None = None) -> list[UUID]:
        """An admin's re-send: failed rows go back to `queued` with a fresh attempt count."""
        statement = (
            update(Notification)
            .where(Notification.status == NotificationStatus.FAILED.value)
            .values(status=NotificationStatus.QUEUED.value, attempts=0, updated_at=utcnow())
            .returning(Notification.id)
        )
        if ids is not None:
            statement = statement.where(Notification.id.in_(list(ids)))
        requeued = [row[0] for row in (await self.repository.session.execute(statement)).all()]
        deliver_after_commit(self.repository.session, requeued)
        return requeued

    async def for_booking(self, booking_id: UUID) -> list[Notification]:
        query = select(Notification).where(Notification.booking_id == booking_id).order_by(Notification.created_at)
        return list((await self.repository.session.scalars(query)).all())

    async def newest(self, status: str | None = None, limit: int = 200) -> list[Notification]:
        query = select(Notification).order_by(Notification.created_at.desc()).limit(limit)
        if status is not None:
            query = query.where(Notification.status == status)
        return list((await self.repository.session.scalars(query)).all())


DELIVERY_LABELS = {
    "waiting": N_("waiting"),
    "retrying": N_("retrying"),
    "sent": N_("sent"),
    "failed": N_("failed"),
    "skipped": N_("skipped"),
}


def delivery_state(row: Notification) -> str:
    """Where a message is: sent, retrying, failed, waiting or skipped."""
    if row.status == NotificationStatus.QUEUED and row.attempts:
        return "retrying"
    return {"queued": "waiting", "sent": "sent", "failed": "failed", "skipped": "skipped"}[row.status]


def delivery_label(row: Notification) -> str:
    """The delivery state as a person reads it, in their language."""
    return gettext(DELIVERY_LABELS[delivery_state(row)])
