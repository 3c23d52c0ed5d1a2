"""The real queue worker with its real cron table, on a clock moved three hours on; nothing is called by hand.

Each run prepares four situations at the real time, then moves the clock (in this process for a worker in this
process, through TEST_CLOCK_FILE for `app workers run`) and starts the worker; within a minute or two (the cron table
runs its sweeps every minute) a reminder has gone out, a held place has passed on, a calendar sync job has run
against the fake Google and a slot that has ended is completed. Runs: the worker in this process with the queue on
PostgreSQL, and `app workers run` with the queue and live events on Redis. Each run waits for the top of a real
minute, so both ways of running and both backends are covered once, not in every combination (the outbox, crash
and live-update tests run each backend in both).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from saq import Worker

from app.lib.clock import fixed_clock
from app.lib.queue import get_queue
from app.worker import saq_config
from tests.conftest import ROOT, Mailbox, asgi_client, on_backend
from tests.e2e.conftest import empty_tables
from tests.helpers import api_token, book, in_hours, make_slot, make_user
from tests.integration.test_google import connect_calendar

# One xdist process runs the whole module (`--dist loadgroup`), so its runs are prepared and waited for once.
pytestmark = [pytest.mark.slow, pytest.mark.shared_data, pytest.mark.xdist_group("worker")]
MOVED = timedelta(hours=3)
DEADLINE_SECONDS = 150  # the sweeps run at the top of each real minute; allow two of them and a slow machine


@dataclass
class Situation:
    reminded_student: Any
    reminded_professor: Any
    first_in_line: Any
    next_in_line: Any
    calendar_sub: str
    ended_slot_id: Any
    log: str = ""


async def prepare(app: Any, google: Any) -> Situation:
    """At the real time: nothing is due yet."""
    # A confirmed booking 26 hours ahead: its 24-hour reminder is due 2 hours from now.
    professor = await make_user("professor", auto_confirm=True)
    student = await make_user()
    # The student's Google Calendar is connected, so the booking queues a calendar sync job.
    async with asgi_client(app) as client:
        await connect_calendar(client, google, student, f"g-worker-{student.id.hex[:8]}")
    await book(student, await make_slot(professor, start=in_hours(26)))
    # A full slot with two students waiting; the place is freed and held for the first one for an hour.
    holder_professor = await make_user("professor", waitlist_hold_minutes=60)
    slot = await make_slot(holder_professor, start=in_hours(48), capacity=1)
    holder, first, second = await make_user(), await make_user(), await make_user()
    taken = await book(holder, slot)
    async with asgi_client(app) as client:
        for waiting in (first, second):
            joined = await client.post(
                f"/api/v1/slots/{slot.id}/waitlist", headers=await api_token(client, waiting.username)
            )
            assert joined.status_code == 201, joined.text
        cancelled = await client.post(
            f"/api/v1/bookings/{taken.id}/cancel", headers=await api_token(client, holder.username)
        )
        assert cancelled.status_code == 200, cancelled.text
    # A slot that ends 90 minutes from now.
    ended = await make_slot(await make_user("professor"), start=in_hours(1), minutes=30)
    return Situation(student, professor, first, second, f"g-worker-{student.id.hex[:8]}", ended.id)


def waitlist(database_url: str, *students: Any) -> list[str]:
    with psycopg.connect(database_url) as conn:
        return [
            conn.execute("SELECT status FROM waitlist_entry WHERE student_id = %s", (s.id,)).fetchone()[0]
            for s in students
        ]


def slot_status(database_url: str, slot_id: Any) -> str:
    with psycopg.connect(database_url) as conn:
        return str(conn.execute("SELECT status FROM consultation_slot WHERE id = %s", (slot_id,)).fetchone()[0])


def kinds_received(mailbox: Mailbox, person: Any) -> list[str]:
    """The kind of each mail that reached `person`, read from its Message-ID (the outbox row's key)."""
    return [str(m["Message-ID"]).strip("<>").split(".")[1] for m in mailbox.to(person.email)]


def all_done(database_url: str, mailbox: Mailbox, google: Any, situation: Situation) -> bool:
    return (
        "reminder" in kinds_received(mailbox, situation.reminded_student)
        and "reminder" in kinds_received(mailbox, situation.reminded_professor)
        and "waitlist_offer" in kinds_received(mailbox, situation.next_in_line)
        and len(google.calendar_of(situation.calendar_sub)) == 1
        and slot_status(database_url, situation.ended_slot_id) == "completed"
    )


@asynccontextmanager
async def worker_in_this_process() -> AsyncIterator[None]:
    """SAQ's worker as `app workers run` builds it: the app's task list and cron table, on this process's queue."""
    (config,) = saq_config().queue_configs
    worker = Worker(
        await get_queue(),
        functions=config.tasks,  # type: ignore[arg-type]
        cron_jobs=config.scheduled_tasks,
        startup=config.startup,  # type: ignore[arg-type]
        concurrency=config.concurrency,
    )
    moved_on = lambda: datetime.now(UTC) + MOVED  # noqa: E731
    with fixed_clock(moved_on):
        task = asyncio.create_task(worker.start())
        try:
            yield
        finally:
            await worker.stop()
            task.cancel()


@contextmanager
def worker_process(log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`app workers run`, its clock three hours on (TEST_CLOCK_FILE), on the backend of this process's environment."""
    clock = log.with_name("clock")
    clock.write_text(f"+{MOVED.total_seconds():.0f}")
    env = {**os.environ, "TEST_CLOCK_FILE": str(clock), "RUN_WORKER_IN_PROCESS": "false"}
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "workers", "run"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


async def wait_for(condition: Callable[[], bool], alive: Callable[[], Awaitable[None]] | None = None) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
    while not condition() and asyncio.get_running_loop().time() < deadline:
        if alive is not None:
            await alive()
        await asyncio.sleep(0.5)


RUNS = [
    pytest.param(("in-process", "postgres"), id="worker-in-process-postgres"),
    pytest.param(("process", "redis"), id="app-workers-run-redis"),
]


@pytest.fixture(scope="module", params=RUNS)
async def after_three_hours(
    request: pytest.FixtureRequest,
    app: Any,
    database_url: str,
    mailbox_server: tuple[Mailbox, int],
    google_server: Any,
) -> AsyncIterator[Situation]:
    mode, backend = request.param
    mailbox = mailbox_server[0]
    redis = request.getfixturevalue("redis_url") if backend == "redis" else None
    empty_tables(database_url)
    mailbox.clear()
    google_server.reset()
    async with on_backend(redis):
        situation = await prepare(app, google_server)
        assert not all_done(database_url, mailbox, google_server, situation)
        if mode == "in-process":
            async with worker_in_this_process():
                await wait_for(lambda: all_done(database_url, mailbox, google_server, situation))
        else:
            with tempfile.TemporaryDirectory(prefix="oh-worker-") as directory:
                log = Path(directory) / "worker.log"

                def exited() -> bool:
                    return process.poll() is not None

                with worker_process(log) as process:
                    await wait_for(lambda: exited() or all_done(database_url, mailbox, google_server, situation))
                    situation.log = log.read_text()[-3000:]
                    assert not exited(), f"the worker exited: {situation.log}"
        yield situation
    empty_tables(database_url)
    mailbox.clear()
    google_server.reset()


def test_a_reminder_goes_out_at_its_time_to_both_parties(
    after_three_hours: Situation, mailbox_server: tuple[Mailbox, int]
) -> None:
    mailbox = mailbox_server[0]
    assert kinds_received(mailbox, after_three_hours.reminded_student).count("reminder") == 1, after_three_hours.log
    assert kinds_received(mailbox, after_three_hours.reminded_professor).count("reminder") == 1


def test_a_held_place_expires_and_passes_to_the_next_student_who_is_mailed(
    after_three_hours: Situation, database_url: str, mailbox_server: tuple[Mailbox, int]
) -> None:
    situation = after_three_hours
    assert waitlist(database_url, situation.first_in_line, situation.next_in_line) == ["expired", "offered"]
    assert kinds_received(mailbox_server[0], situation.next_in_line) == ["waitlist_offer"], situation.log


def test_the_queued_calendar_sync_job_runs_against_google(after_three_hours: Situation, google_server: Any) -> None:
    (event,) = google_server.calendar_of(after_three_hours.calendar_sub).values()
    assert event["summary"] == f"Consultation with {after_three_hours.reminded_professor.full_name}"


def test_a_slot_whose_end_has_passed_is_completed(after_three_hours: Situation, database_url: str) -> None:
    assert slot_status(database_url, after_three_hours.ended_slot_id) == "completed", after_three_hours.log
