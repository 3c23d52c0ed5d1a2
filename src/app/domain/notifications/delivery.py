"""Delivering outbox rows over SMTP, each at most once: the row is locked (SKIP LOCKED) from claim to commit."""

from __future__ import annotations

import enum
import logging
from uuid import UUID

import aiosmtplib
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.notifications.emails import EmailBook, NoLongerRelevant, render_email, to_message
from app.domain.notifications.mailer import send_message
from app.domain.notifications.models import Notification, NotificationStatus
from app.domain.notifications.services import queue_deliveries, retry_delay_seconds
from app.lib.clock import utcnow
from app.lib.unit_of_work import after_commit

MAX_ATTEMPTS = 5
logger = logging.getLogger(__name__)


class Delivery(enum.StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_QUEUED = "not_queued"  # sent already, or another worker holds it right now


async def queue_retries(rows: list[tuple[UUID, int]]) -> None:
    """After the failed attempt is committed: try each row again after its backoff."""
    for notification_id, attempts in rows:
        await queue_deliveries([notification_id], retry_delay_seconds(attempts), attempt=attempts)


class OutboxDelivery:
    def __init__(self, session: AsyncSession, settings: Settings, emails: EmailBook) -> None:
        self.session = session
        self.settings = settings
        self.emails = emails

    async def deliver(self, notification_id: UUID) -> Delivery:
        query = (
            select(Notification)
            .where(Notification.id == notification_id, Notification.status == NotificationStatus.QUEUED.value)
            .with_for_update(skip_locked=True)
        )
        row = (await self.session.scalars(query)).one_or_none()
        if row is None:
            return Delivery.NOT_QUEUED
        try:
            email = await render_email(self.session, row, self.emails, self.settings)
            message = to_message(email, self.settings, row.dedupe_key)
        except NoLongerRelevant as exc:
            row.status, row.last_error = NotificationStatus.SKIPPED.value, str(exc)
            return Delivery.SKIPPED
        except (SQLAlchemyError, OSError):
            raise  # the database went away: nothing can be recorded now, and the sweep tries the row again
        except Exception as exc:  # a fault in the row or its template would fail every retry alike
            logger.exception("notification %s cannot be rendered", row.id)
            row.attempts += 1
            return self._failed(row, f"cannot be written: {type(exc).__name__}: {exc}", permanent=True)
        row.attempts += 1
        try:
            await send_message(message, self.settings)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return self._failed(row, f"recipient refused: {exc}", permanent=True)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return self._failed(row, f"{type(exc).__name__}: {exc}", permanent=False)
        row.status, row.sent_at, row.last_error = NotificationStatus.SENT.value, utcnow(), ""
        return Delivery.SENT

    def _failed(self, row: Notification, error: str, *, permanent: bool) -> Delivery:
        row.last_error = error[:2000]
        if permanent or row.attempts >= MAX_ATTEMPTS:
            row.status = NotificationStatus.FAILED.value
            return Delivery.FAILED
        after_commit(self.session, queue_retries, (row.id, row.attempts))
        return Delivery.RETRY
