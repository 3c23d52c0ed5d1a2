"""The SAQ queue: PostgreSQL (the app's database) by default, Redis when QUEUE_URL says so.

Jobs are queued by task name, so a domain can queue work without importing the worker; which functions run and on
which schedule is decided by the worker's composition (app/worker.py), which hands its config here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from typing import Any

from litestar_saq import CronJob, QueueConfig, SAQConfig
from psycopg_pool import AsyncConnectionPool
from saq import Queue
from saq.types import Function, ReceivesContext

from app.config import Settings, get_settings
from app.lib.database import get_database_url, libpq_url
from app.lib.logs import bind_job, tag_job

logger = logging.getLogger(__name__)
# SAQ logs every job (and the cron sweeps run each minute) at INFO; keep its warnings and errors only.
logging.getLogger("saq").setLevel(logging.WARNING)


class _HeartbeatStopped(logging.Filter):
    """litestar-saq 0.8 stops its heartbeat thread by stopping that thread's event loop, then logs the stop it caused
    as a crash, with a traceback, at every shutdown. Only that record is dropped; real heartbeat failures stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, RuntimeError) and "Event loop stopped before Future completed" in str(error))


logging.getLogger("litestar_saq.heartbeat").addFilter(_HeartbeatStopped())
QUEUE_NAME = "default"
HEALTH_TIMEOUT_SECONDS = 2.0

_config: SAQConfig | None = None


def queue_dsn(settings: Settings) -> str:
    url = settings.queue_url or get_database_url()
    return url if url.startswith(("redis://", "rediss://")) else libpq_url(url)


def queue_broker(settings: Settings) -> dict[str, Any]:
    """How SAQ reaches its backend. On the embedded database the address is resolved at the first connection, so
    building the app (e.g. for `app --help`) does not start the server."""
    if settings.queue_url or settings.database_url:
        return {"dsn": queue_dsn(settings)}
    pool = AsyncConnectionPool(
        lambda: queue_dsn(settings), check=AsyncConnectionPool.check_connection, open=False, kwargs={"autocommit": True}
    )
    return {"broker_instance": pool}


def configure_queue(
    tasks: Collection[Function[Any]],
    scheduled: Collection[CronJob],
    startup: Sequence[ReceivesContext[Any]] = (),
) -> SAQConfig:
    """The process's queue, with the functions its workers run (in this process or in `app workers run`)."""
    global _config
    settings = get_settings()
    _config = SAQConfig(
        queue_configs=[
            QueueConfig(
                name=QUEUE_NAME,
                **queue_broker(settings),
                tasks=tasks,
                scheduled_tasks=scheduled,
                # In-process worker for `make run`; otherwise `app workers run` starts worker processes.
                separate_process=not settings.run_worker_in_process,
                startup=list(startup),
                before_process=[bind_job],  # a job's log lines carry the id of the request that queued it
                concurrency=10,
            )
        ],
        use_server_lifespan=False,
    )
    return _config


def get_saq_config() -> SAQConfig:
    """The configured queue; a process that only queues jobs (never runs them) gets one without tasks."""
    return _config or configure_queue(tasks=[], scheduled=[])


def configured_queue() -> Queue:
    """The queue, not connected yet (connecting may wait as long as the pool's own timeout when it is down)."""
    return get_saq_config().get_queues().get(QUEUE_NAME)


async def get_queue() -> Queue:
    queue = get_saq_config().get_queues().get(QUEUE_NAME)
    queue.register_before_enqueue(tag_job)  # jobs carry the request id (idempotent: keyed by the function)
    await queue.connect()
    return queue


async def _ping(queue: Queue) -> None:
    """The cheapest question the backend answers: a connection from the queue's pool (PostgreSQL), PING (Redis);
    other backends count their queued jobs."""
    pool = getattr(queue, "pool", None)
    redis = getattr(queue, "redis", None)
    if pool is not None:
        # The pool checks every connection it hands out with a round trip (SAQ's pool, and ours in queue_broker, are
        # made with `check=AsyncConnectionPool.check_connection`): taking one proves the database answers.
        async with pool.connection():
            pass
    elif redis is not None:
        await redis.ping()
    else:
        await queue.count("queued")


async def queue_reachable(queue: Queue) -> bool:
    """Any failure, or no answer within HEALTH_TIMEOUT_SECONDS, means "not reachable" for the health check."""
    try:
        # Bounded: the queue's pool would otherwise wait for a connection as long as its own timeout.
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await queue.connect()
            await _ping(queue)
    except Exception:
        return False
    return True


async def close_queue() -> None:
    """Close the queue's connection pool (a CLI command that queued jobs must, or its exit waits on the pool)."""
    if _config is not None:
        await _config.get_queues().get(QUEUE_NAME).disconnect()
