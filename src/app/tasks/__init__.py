"""SAQ tasks: thin, each opens services through provide_services() and calls one of them."""

from __future__ import annotations

import logging
from uuid import UUID

from saq.types import Context

from app.config import get_settings
from app.domain.calendar.services import CalendarSync
from app.domain.notifications.services import Delivery, OutboxDelivery, retry_delay_seconds
from app.lib.providers import provide_services
from app.lib.queue import enqueue_deliveries

logger = logging.getLogger(__name__)


async def deliver_notification(ctx: Context, *, notification_id: str) -> str:
    settings = get_settings()
    async with provide_services() as services:
        delivery = OutboxDelivery(services.session, settings)
        outcome = await delivery.deliver(UUID(notification_id))
        if outcome == Delivery.RETRY:
            attempts = (await services.notifications.get(UUID(notification_id))).attempts
            await enqueue_deliveries([UUID(notification_id)], retry_delay_seconds(attempts), attempt=attempts)
    return outcome.value


async def sweep_outbox(ctx: Context) -> int:
    """Queue again the rows left `queued` (a crash between commit and enqueue, a dead worker)."""
    settings = get_settings()
    if not settings.smtp_host:
        return 0
    async with provide_services() as services:
        stale = await OutboxDelivery(services.session, settings).stale_queued(settings.outbox_sweep_after_seconds)
    for notification_id, attempts in stale:
        await enqueue_deliveries([notification_id], attempt=attempts)
    if stale:
        logger.info("outbox sweep queued %d notification(s) again", len(stale))
    return len(stale)


async def send_due_reminders(ctx: Context) -> int:
    async with provide_services() as services:
        ids = await OutboxDelivery(services.session, get_settings()).queue_due_reminders()
    await enqueue_deliveries(ids)
    return len(ids)


async def expire_waitlist_holds(ctx: Context) -> int:
    """Held places past their time pass to the next student in line."""
    async with provide_services() as services:
        return await services.waitlist.expire_holds()


async def sync_booking_calendar(ctx: Context, *, booking_id: str) -> dict[str, str]:
    """Mirror one booking into its parties' Google Calendars (RetryableSyncError makes SAQ retry)."""
    async with provide_services() as services:
        outcome = await CalendarSync(services.session, get_settings()).sync_booking(UUID(booking_id))
    return {str(user): action for user, action in outcome.items()}


async def complete_ended_slots(ctx: Context) -> int:
    async with provide_services() as services:
        return await services.slots.complete_ended_slots()


__all__ = [
    "complete_ended_slots",
    "deliver_notification",
    "expire_waitlist_holds",
    "send_due_reminders",
    "sweep_outbox",
    "sync_booking_calendar",
]
