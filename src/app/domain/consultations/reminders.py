"""Reminders before a consultation: 24 hours ahead, plus each person's optional second lead time."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.consultations.models import Booking, BookingStatus
from app.domain.notifications.models import Notification
from app.domain.notifications.services import deliver_after_commit
from app.lib.clock import utcnow

DEFAULT_REMINDER_MINUTES = 24 * 60

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
  AND b.start_time > :now
  AND b.start_time - make_interval(mins => lead.minutes) <= :now
  AND b.created_at <= b.start_time - make_interval(mins => lead.minutes)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""
)


async def queue_due_reminders(session: AsyncSession) -> list[UUID]:
    """Write the reminders that are due into the outbox (each once); they are delivered after the commit."""
    result = await session.execute(DUE_REMINDERS_SQL, {"default_minutes": DEFAULT_REMINDER_MINUTES, "now": utcnow()})
    ids = [row[0] for row in result.all()]
    deliver_after_commit(session, ids)
    return ids


def reminder_still_valid(row: Notification, booking: Booking | None) -> bool:
    """A reminder is for one version of a booking: cancelled, moved or past bookings get none."""
    return (
        booking is not None
        and booking.status == BookingStatus.CONFIRMED
        and booking.sequence == row.context.get("sequence")
        and booking.start_time > utcnow()
    )
