"""Prometheus metrics: request latency by route (Litestar's Prometheus middleware) and the app's own figures.

Events (bookings created, refused, waitlist promotions) are counters incremented by the domain that owns them, once
the change is durable (`count_after_commit`). State (the outbox, the queue) is read at scrape time from the database
and the queue, so every process answers the same, whichever one the scrape reaches. Open SSE streams are a gauge
per process.

Counters are per process: scrape each app process directly (docs/deploy.md §7 runs one per port). Like Litestar's own
controller, the exposition honours prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR) for
`app run --wc N`; that mode is not exercised by the tests.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Any

from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
    multiprocess,
)
from psycopg.sql import SQL
from saq import Queue
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.lib.unit_of_work import after_commit

PREFIX = "office_hours"
METRICS_PATH = "/metrics"
LATENCY_BUCKETS: list[str | float] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

BOOKINGS_CREATED = Counter(f"{PREFIX}_bookings_created", "Bookings created (by students, waitlist promotions, moves)")
BOOKING_CONFLICTS = Counter(
    f"{PREFIX}_booking_conflicts", "Booking attempts refused because of the slot's state (full, taken, overlapping)"
)
WAITLIST_PROMOTIONS = Counter(
    f"{PREFIX}_waitlist_promotions", "Waiting students given a freed place (booked at once or offered a hold)", ["how"]
)
SSE_STREAMS = Gauge(f"{PREFIX}_sse_streams_open", "Server-Sent Events streams open", multiprocess_mode="livesum")
OUTBOX = Gauge(
    f"{PREFIX}_outbox_notifications", "Outbox rows by delivery status", ["status"], multiprocess_mode="mostrecent"
)
QUEUE_DEPTH = Gauge(f"{PREFIX}_queue_depth", "Jobs due and waiting for a worker", multiprocess_mode="mostrecent")
QUEUE_OLDEST_AGE = Gauge(
    f"{PREFIX}_queue_oldest_job_age_seconds",
    "How long the oldest due job has waited for a worker (0 when none waits)",
    multiprocess_mode="mostrecent",
)
OUTBOX_STATUSES = ("queued", "sent", "failed", "skipped")


def prometheus_config() -> PrometheusConfig:
    """Request counts and latency histograms labelled by route template (`/professors/{professor_id:uuid}`), so
    ids never multiply the series."""
    return PrometheusConfig(
        app_name="office_hours",
        prefix=PREFIX,
        group_path=True,
        buckets=LATENCY_BUCKETS,
        exclude=[METRICS_PATH],
    )


def token_matches(authorization: str | None, token: str) -> bool:
    scheme, _, presented = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(presented.strip().encode(), token.encode())


async def _count_bookings(items: list[Any]) -> None:
    BOOKINGS_CREATED.inc(len(items))


async def _count_promotions(items: list[str]) -> None:
    for how in items:
        WAITLIST_PROMOTIONS.labels(how=how).inc()


def booking_created_after_commit(session: AsyncSession, booking_id: Any) -> None:
    after_commit(session, _count_bookings, booking_id)


def promotion_after_commit(session: AsyncSession, how: str) -> None:
    after_commit(session, _count_promotions, how)


async def read_outbox(session: AsyncSession) -> None:
    rows = (await session.execute(text("SELECT status, count(*) FROM notification GROUP BY status"))).all()
    counts = {str(status): int(count) for status, count in rows}
    for status in OUTBOX_STATUSES:
        OUTBOX.labels(status=status).set(counts.get(status, 0))


async def read_queue(queue: Queue) -> None:
    """Due jobs waiting for a worker, and the age of the oldest (from when it became due)."""
    depth, oldest = await queue_backlog(queue)
    QUEUE_DEPTH.set(depth)
    QUEUE_OLDEST_AGE.set(max(0.0, time.time() - oldest) if oldest is not None else 0.0)


async def queue_backlog(queue: Queue) -> tuple[int, float | None]:
    """(jobs due and not started, epoch seconds at which the oldest of them became due)."""
    await queue.connect()
    redis = getattr(queue, "redis", None)
    if redis is not None:  # Redis: due jobs wait in a list, the oldest at its head
        depth = int(await redis.llen(queue._queued))  # type: ignore[attr-defined]
        head = await redis.lindex(queue._queued, 0)  # type: ignore[attr-defined]
        job = await queue._get_job_by_id(head) if head is not None else None  # type: ignore[attr-defined]
        if job is None:
            return depth, None
        return depth, max(job.queued / 1000, float(job.scheduled or 0))
    now = int(time.time())
    async with queue.pool.connection() as conn, conn.cursor() as cursor:  # type: ignore[attr-defined]
        query = SQL(
            "SELECT count(*), min(scheduled) FROM {table} WHERE status = 'queued' AND queue = %(queue)s"
            " AND scheduled <= %(now)s"
        ).format(table=queue.jobs_table)  # type: ignore[attr-defined]
        await cursor.execute(query, {"queue": queue.name, "now": now})
        row = await cursor.fetchone()
    depth, earliest = (int(row[0]), row[1]) if row else (0, None)
    return depth, float(earliest) if earliest is not None else None


def exposition() -> tuple[bytes, str]:
    """The text format, summed over every process of this machine when PROMETHEUS_MULTIPROC_DIR is set."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
