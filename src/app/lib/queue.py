"""The SAQ queue: PostgreSQL (the app's database) by default, Redis when QUEUE_URL says so."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from functools import lru_cache
from uuid import UUID

from litestar_saq import CronJob, QueueConfig, SAQConfig
from saq import Queue
from saq.types import Context

from app.config import Settings, get_settings
from app.db import get_database_url, libpq_url

logger = logging.getLogger(__name__)
# SAQ logs every job (and the cron sweeps run each minute) at INFO; keep its warnings and errors only.
logging.getLogger("saq").setLevel(logging.WARNING)
QUEUE_NAME = "default"


def queue_dsn(settings: Settings) -> str:
    url = settings.queue_url or get_database_url()
    return url if url.startswith(("redis://", "rediss://")) else libpq_url(url)


async def on_worker_start(ctx: Context) -> None:
    # An in-process worker starts before its pool is open (STACK-NOTES): open it first.
    await ctx["worker"].queue.connect()
    from app.tasks import sweep_outbox

    await sweep_outbox(ctx)  # a worker that replaces a dead one picks up what it left at once


@lru_cache(maxsize=1)
def get_saq_config() -> SAQConfig:
    from app import tasks

    settings = get_settings()
    return SAQConfig(
        queue_configs=[
            QueueConfig(
                name=QUEUE_NAME,
                dsn=queue_dsn(settings),
                tasks=[
                    tasks.deliver_notification,
                    tasks.sweep_outbox,
                    tasks.send_due_reminders,
                    tasks.complete_ended_slots,
                    tasks.expire_waitlist_holds,
                    tasks.sync_booking_calendar,
                ],
                scheduled_tasks=[
                    CronJob(function=tasks.sweep_outbox, cron="* * * * *", timeout=120),
                    CronJob(function=tasks.send_due_reminders, cron="* * * * *", timeout=120),
                    CronJob(function=tasks.complete_ended_slots, cron="*/5 * * * *", timeout=120),
                    CronJob(function=tasks.expire_waitlist_holds, cron="* * * * *", timeout=120),
                ],
                # In-process worker for `make run`; otherwise `app workers run` starts worker processes.
                separate_process=not settings.run_worker_in_process,
                startup=[on_worker_start],
                concurrency=10,
            )
        ],
        use_server_lifespan=False,
    )


async def get_queue() -> Queue:
    queue = get_saq_config().get_queues().get(QUEUE_NAME)
    await queue.connect()
    return queue


async def enqueue_deliveries(ids: Iterable[UUID], delay_seconds: float = 0, attempt: int = 0) -> None:
    """Queue one delivery job per outbox row; the job key makes a second enqueue of the same attempt a no-op."""
    if not get_settings().smtp_host:
        return  # no SMTP: mail stays in the outbox (see /dev/mail in development)
    queue = await get_queue()
    scheduled = int(time.time() + delay_seconds) if delay_seconds else 0
    for notification_id in ids:
        await queue.enqueue(
            "deliver_notification",
            key=f"deliver:{notification_id}:{attempt}",
            notification_id=str(notification_id),
            scheduled=scheduled,
            timeout=60,
            retries=1,
        )


HEALTH_TIMEOUT_SECONDS = 2.0


async def queue_reachable(queue: Queue) -> bool:
    """Any failure, or no answer within HEALTH_TIMEOUT_SECONDS, means "not reachable" for the health check."""
    try:
        # Bounded: the queue's pool would otherwise wait for a connection as long as its own timeout.
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await queue.connect()
            await queue.count("queued")
    except Exception:
        return False
    return True


async def enqueue_calendar_syncs(booking_ids: Iterable[UUID]) -> None:
    """One calendar sync job per changed booking; SAQ retries it with backoff when Google is busy."""
    if not get_settings().google_enabled:
        return
    queue = await get_queue()
    for booking_id in booking_ids:
        await queue.enqueue(
            "sync_booking_calendar",
            key=f"calendar:{booking_id}:{time.time_ns()}",
            booking_id=str(booking_id),
            timeout=60,
            retries=6,
            retry_delay=5.0,
            retry_backoff=True,
        )


async def close_queue() -> None:
    """Close the queue's connection pool (a CLI command that queued jobs must, or its exit waits on the pool)."""
    queue = get_saq_config().get_queues().get(QUEUE_NAME)
    await queue.disconnect()
