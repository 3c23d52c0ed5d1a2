"""The SAQ queue: PostgreSQL (the app's database) by default, Redis when QUEUE_URL says so."""

from __future__ import annotations

from litestar_saq import QueueConfig, SAQConfig
from saq import Queue
from saq.types import Context

from app.config import Settings
from app.db import get_database_url, libpq_url


def queue_dsn(settings: Settings) -> str:
    url = settings.queue_url or get_database_url()
    return url if url.startswith(("redis://", "rediss://")) else libpq_url(url)


async def connect_queue(ctx: Context) -> None:
    # An in-process worker starts before its pool is open (STACK-NOTES): open it first.
    await ctx["worker"].queue.connect()


def create_saq_config(settings: Settings) -> SAQConfig:
    return SAQConfig(
        queue_configs=[
            QueueConfig(
                name="default",
                dsn=queue_dsn(settings),
                tasks=[],
                scheduled_tasks=[],
                # In-process worker for `make run`; otherwise `app workers run` starts worker processes.
                separate_process=not settings.run_worker_in_process,
                startup=[connect_queue],
                concurrency=10,
            )
        ],
        use_server_lifespan=False,
    )


async def queue_reachable(queue: Queue) -> bool:
    try:
        await queue.connect()
        await queue.count("queued")
    except Exception:
        return False
    return True
