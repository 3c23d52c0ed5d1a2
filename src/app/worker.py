"""The queue's work: which tasks workers run and on which schedule. Tasks are thin: one unit of work each
(see app.services), calling one service."""

from __future__ import annotations

import logging
from dataclasses import asdict
from functools import lru_cache
from uuid import UUID

from litestar_saq import CronJob, SAQConfig
from saq.types import Context

from app.config import get_settings
from app.domain.calendar.sync import CalendarSync
from app.domain.consultations.reminders import queue_due_reminders
from app.domain.lti.roster import (
    RosterEntry,
    RosterService,
    RosterUnavailable,
    fetch_roster,
    queue_roster_refreshes,
)
from app.domain.notifications.delivery import OutboxDelivery
from app.domain.notifications.services import queue_deliveries
from app.domain.privacy.export import ExportService
from app.domain.privacy.retention import Retention
from app.lib.queue import configure_queue
from app.services import EMAILS, provide_services

logger = logging.getLogger(__name__)


async def deliver_notification(ctx: Context, *, notification_id: str) -> str:
    async with provide_services() as services:
        delivery = OutboxDelivery(services.session, get_settings(), EMAILS)
        outcome = await delivery.deliver(UUID(notification_id))
    logger.info(
        "notification %s: %s",
        notification_id,
        outcome.value,
        extra={"notification_id": notification_id, "outcome": outcome.value},
    )
    return outcome.value


async def sweep_outbox(ctx: Context) -> int:
    """Queue again the rows left `queued` (a crash between commit and enqueue, a dead worker)."""
    return await requeue_outbox(get_settings().outbox_sweep_after_seconds)


async def requeue_outbox(older_than_seconds: int, key_suffix: str = "") -> int:
    if not get_settings().smtp_host:
        return 0
    async with provide_services() as services:
        stale = await services.notifications.stale_queued(older_than_seconds)
    by_attempt: dict[int, list[UUID]] = {}
    for notification_id, attempts in stale:
        by_attempt.setdefault(attempts, []).append(notification_id)
    for attempts, ids in by_attempt.items():
        await queue_deliveries(ids, attempt=attempts, key_suffix=key_suffix)
    if stale:
        logger.info("outbox sweep queued %d notification(s) again", len(stale))
    return len(stale)


async def send_due_reminders(ctx: Context) -> int:
    async with provide_services() as services:
        return len(await queue_due_reminders(services.session))


async def expire_waitlist_holds(ctx: Context) -> int:
    """Held places past their time pass to the next student in line, one slot (one unit of work) at a time."""
    async with provide_services() as services:
        due = await services.waitlist.slots_with_expired_holds()
    expired = 0
    for slot_id in due:
        async with provide_services() as services:
            expired += await services.waitlist.expire_holds_on(slot_id)
    return expired


async def sync_booking_calendar(ctx: Context, *, booking_id: str) -> dict[str, str]:
    """Mirror one booking into its parties' Google Calendars (RetryableSyncError makes SAQ retry)."""
    async with provide_services() as services:
        outcome = await CalendarSync(services.session, get_settings()).sync_booking(UUID(booking_id))
    return {str(user): action for user, action in outcome.items()}


async def complete_ended_slots(ctx: Context) -> int:
    async with provide_services() as services:
        return await services.slots.complete_ended_slots()


async def refresh_course_roster(ctx: Context, *, context_id: str) -> int:
    """Fetch one course's roster from its platform (no transaction waits on the network) and store it."""
    async with provide_services() as services:
        target = await RosterService(services.session, get_settings()).target(UUID(context_id))
    if target is None:
        return 0
    try:
        outcome: list[RosterEntry] | RosterUnavailable = await fetch_roster(target)
    except RosterUnavailable as exc:
        logger.warning("course roster %s not fetched: %s", context_id, exc.message)
        outcome = exc
    async with provide_services() as services:
        await RosterService(services.session, get_settings()).store(target.context_id, outcome)
    return len(outcome) if isinstance(outcome, list) else 0


async def refresh_stale_rosters(ctx: Context) -> int:
    async with provide_services() as services:
        due = await RosterService(services.session, get_settings()).stale()
    await queue_roster_refreshes(due)
    return len(due)


async def build_data_export(ctx: Context, *, export_id: str) -> int:
    """Build one person's "Download my data" ZIP; returns its size (never its content: job results are kept)."""
    async with provide_services() as services:
        return await ExportService(services.session, get_settings()).build(UUID(export_id))


async def run_retention(ctx: Context) -> dict[str, int]:
    """The daily privacy sweep (domain/privacy/retention.py); idempotent, its counts are logged and returned."""
    async with provide_services() as services:
        report = await Retention(services.session, get_settings()).run(ip="job")
    return asdict(report)


async def on_worker_start(ctx: Context) -> None:
    # An in-process worker starts before its pool is open (STACK-NOTES): open it first.
    await ctx["worker"].queue.connect()
    # A worker that replaces a dead one picks up what it left at once: every row due by now gets a job of this
    # worker's own (the dead worker's jobs would otherwise wait for the queue's stuck-job timeout, one by one).
    await requeue_outbox(older_than_seconds=0, key_suffix=f":start-{ctx['worker'].id}")


@lru_cache(maxsize=1)
def saq_config() -> SAQConfig:
    return configure_queue(
        tasks=[
            deliver_notification,
            sweep_outbox,
            send_due_reminders,
            complete_ended_slots,
            expire_waitlist_holds,
            sync_booking_calendar,
            refresh_course_roster,
            refresh_stale_rosters,
            build_data_export,
            run_retention,
        ],
        scheduled=[
            CronJob(function=sweep_outbox, cron="* * * * *", timeout=120),
            CronJob(function=send_due_reminders, cron="* * * * *", timeout=120),
            CronJob(function=complete_ended_slots, cron="* * * * *", timeout=120),
            CronJob(function=expire_waitlist_holds, cron="* * * * *", timeout=120),
            CronJob(function=refresh_stale_rosters, cron="17 * * * *", timeout=120),
            CronJob(function=run_retention, cron="23 3 * * *", timeout=1800),
        ],
        startup=[on_worker_start],
    )
