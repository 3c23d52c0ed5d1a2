"""The outbox: notification rows written in the same transaction as the change that causes them."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import aiosmtplib
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import User
from app.domain.consultations.models import Booking
from app.domain.notifications.emails import render_email, to_message
from app.domain.notifications.mailer import send_message
from app.domain.notifications.models import Notification, NotificationStatus
from app.lib.transactions import commit, remember_calendar_sync, remember_outbox


class NotificationKind(enum.StrEnum):
    BOOKING_REQUESTED = "booking_requested"  # to the professor
    BOOKING_CONFIRMED = "booking_confirmed"  # to the student
    BOOKING_DECLINED = "booking_declined"  # to the student: the professor cancelled a pending request
    BOOKING_CANCELLED = "booking_cancelled"  # to the other party
    SLOT_CANCELLED = "slot_cancelled"  # to each booked student
    BOOKING_MOVED = "booking_moved"  # to the student: the professor changed the slot's time or place
    REMINDER = "reminder"  # to both, before the start


# Changes that Google Calendar mirrors (an event appears on confirmation, moves, and goes on cancellation).
CALENDAR_KINDS = frozenset(
    {
        NotificationKind.BOOKING_CONFIRMED,
        NotificationKind.BOOKING_CANCELLED,
        NotificationKind.BOOKING_DECLINED,
        NotificationKind.SLOT_CANCELLED,
        NotificationKind.BOOKING_MOVED,
    }
)


def dedupe_key(booking_id: UUID | None, kind: str, user_id: UUID, variant: str = "") -> str:
    """At most one message per (booking, kind, recipient[, variant such as a lead time or a revision])."""
    return ":".join(part for part in (str(booking_id or "-"), kind, str(user_id), variant) if part)


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
        statement = (
            insert(Notification)
            .values(
                user_id=user_id,
                booking_id=booking_id,
                kind=kind,
                dedupe_key=dedupe_key(booking_id, kind, user_id, variant),
                status=NotificationStatus.QUEUED.value,
                attempts=0,
                last_error="",
                context=context or {},
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(Notification.id)
        )
        created = (await self.repository.session.execute(statement)).scalar_one_or_none()
        if created is not None:
            remember_outbox(self.repository.session, [created])
        if booking_id is not None and kind in CALENDAR_KINDS:
            remember_calendar_sync(self.repository.session, booking_id)


MAX_ATTEMPTS = 5
DEFAULT_REMINDER_MINUTES = 24 * 60


def retry_delay_seconds(attempts: int) -> int:
    """Backoff after the n-th failed attempt: 30 s, 1 min, 2 min, 4 min..."""
    return int(min(30 * 2 ** (attempts - 1), 3600))


class Delivery(enum.StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_QUEUED = "not_queued"  # sent already, or another worker holds it right now


# Reminders that are due: each active confirmed booking, for its student and its professor, for the default lead
# time and each person's optional second one; only if the booking existed before the reminder time.
DUE_REMINDERS_SQL = text(
    """
INSERT INTO notification (id, user_id, booking_id, kind, dedupe_key, status, attempts, last_error, context,
                          created_at, updated_at)
SELECT gen_random_uuid(), who.user_id, b.id, 'reminder',
       b.id || ':reminder:' || who.user_id || ':' || lead.minutes || ':' || b.sequence,
       'queued', 0, '', jsonb_build_object('lead_minutes', lead.minutes, 'sequence', b.sequence), now(), now()
FROM booking b
JOIN consultation_slot s ON s.id = b.slot_id
CROSS JOIN LATERAL (VALUES (b.student_id), (s.professor_id)) AS who(user_id)
JOIN profile p ON p.user_id = who.user_id
CROSS JOIN LATERAL (
    SELECT :default_minutes AS minutes
    UNION SELECT p.second_reminder_minutes WHERE p.second_reminder_minutes IS NOT NULL
) AS lead
WHERE b.status = 'confirmed'
  AND b.start_time > now()
  AND b.start_time - make_interval(mins => lead.minutes) <= now()
  AND b.created_at <= b.start_time - make_interval(mins => lead.minutes)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""
)


class OutboxDelivery:
    """Sends outbox rows, each at most once: the row is locked (SKIP LOCKED) from claim to commit of `sent`."""

    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    async def deliver(self, notification_id: UUID) -> Delivery:
        query = (
            select(Notification)
            .where(Notification.id == notification_id, Notification.status == NotificationStatus.QUEUED.value)
            .with_for_update(skip_locked=True)
        )
        row = (await self.session.scalars(query)).one_or_none()
        if row is None:
            await self.session.rollback()
            return Delivery.NOT_QUEUED
        recipient = await self.session.get_one(User, row.user_id)
        booking = await self.session.get(Booking, row.booking_id) if row.booking_id else None
        if row.kind == "reminder" and not reminder_still_valid(row, booking):
            row.status, row.last_error = NotificationStatus.SKIPPED.value, "the booking changed or was cancelled"
            await self.session.commit()
            return Delivery.SKIPPED
        row.attempts += 1
        try:
            email = render_email(row, recipient, booking, self.settings)
            await send_message(to_message(email, self.settings, row.dedupe_key), self.settings)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return await self._failed(row, f"recipient refused: {exc}", permanent=True)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return await self._failed(row, f"{type(exc).__name__}: {exc}", permanent=False)
        row.status, row.sent_at, row.last_error = NotificationStatus.SENT.value, datetime.now(UTC), ""
        await self.session.commit()
        return Delivery.SENT

    async def _failed(self, row: Notification, error: str, *, permanent: bool) -> Delivery:
        row.last_error = error[:2000]
        gave_up = permanent or row.attempts >= MAX_ATTEMPTS
        if gave_up:
            row.status = NotificationStatus.FAILED.value
        await self.session.commit()
        return Delivery.FAILED if gave_up else Delivery.RETRY

    async def stale_queued(self, older_than_seconds: int) -> list[tuple[UUID, int]]:
        """Rows still `queued` a while after their last change: their job was lost (crash, dead worker)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        query = select(Notification.id, Notification.attempts).where(
            Notification.status == NotificationStatus.QUEUED.value, Notification.updated_at < cutoff
        )
        rows = (await self.session.execute(query.limit(1000))).all()
        await self.session.rollback()
        return [(row[0], row[1]) for row in rows]

    async def queue_due_reminders(self) -> list[UUID]:
        result = await self.session.execute(DUE_REMINDERS_SQL, {"default_minutes": DEFAULT_REMINDER_MINUTES})
        ids = [row[0] for row in result.all()]
        await self.session.commit()
        return ids

    async def retry_failed(self, ids: Iterable[UUID] | None = None) -> list[UUID]:
        """An admin's re-send: failed rows go back to `queued` with a fresh attempt count."""
        statement = (
            update(Notification)
            .where(Notification.status == NotificationStatus.FAILED.value)
            .values(status=NotificationStatus.QUEUED.value, attempts=0, updated_at=datetime.now(UTC))
            .returning(Notification.id)
        )
        if ids is not None:
            statement = statement.where(Notification.id.in_(list(ids)))
        requeued = [row[0] for row in (await self.session.execute(statement)).all()]
        remember_outbox(self.session, requeued)
        await commit(self.session)
        return requeued


def reminder_still_valid(row: Notification, booking: Booking | None) -> bool:
    """A reminder is for one version of a booking: cancelled, moved or past bookings get none."""
    return (
        booking is not None
        and booking.status == "confirmed"
        and booking.sequence == row.context.get("sequence")
        and booking.start_time > datetime.now(UTC)
    )


def delivery_state(row: Notification) -> str:
    """What a person reads beside a message: sent, retrying, failed, waiting or skipped."""
    if row.status == NotificationStatus.QUEUED and row.attempts:
        return "retrying"
    return {"queued": "waiting", "sent": "sent", "failed": "failed", "skipped": "skipped"}[row.status]


async def messages_for_booking(session: AsyncSession, booking_id: UUID) -> list[Notification]:
    query = select(Notification).where(Notification.booking_id == booking_id).order_by(Notification.created_at)
    return list((await session.scalars(query)).all())


async def list_notifications(session: AsyncSession, status: str | None = None, limit: int = 200) -> list[Notification]:
    query = select(Notification).order_by(Notification.created_at.desc()).limit(limit)
    if status is not None:
        query = query.where(Notification.status == status)
    return list((await session.scalars(query)).all())
