"""The outbox: notification rows written in the same transaction as the change that causes them."""

from __future__ import annotations

import enum
from typing import Any
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy.dialects.postgresql import insert

from app.domain.notifications.models import Notification, NotificationStatus


class NotificationKind(enum.StrEnum):
    BOOKING_REQUESTED = "booking_requested"  # to the professor
    BOOKING_CONFIRMED = "booking_confirmed"  # to the student
    BOOKING_DECLINED = "booking_declined"  # to the student: the professor cancelled a pending request
    BOOKING_CANCELLED = "booking_cancelled"  # to the other party
    SLOT_CANCELLED = "slot_cancelled"  # to each booked student
    BOOKING_MOVED = "booking_moved"  # to the student: the professor changed the slot's time or place
    REMINDER = "reminder"  # to both, before the start


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
        )
        await self.repository.session.execute(statement)
