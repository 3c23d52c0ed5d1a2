"""The outbox with real worker processes: a worker killed mid-delivery loses and duplicates nothing.

Each test starts `app workers run` as a child process (the test app itself runs no worker) and stops it in a
finally block. The crash test uses an SMTP server of its own that takes its time over each message, so the
killed worker holds jobs and open SMTP sessions when it dies.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from app.domain.accounts.models import User
from app.domain.notifications import delivery
from app.worker import deliver_notification
from tests.conftest import Mailbox, free_port
from tests.helpers import book, csrf_headers, in_hours, make_admin, make_slot, make_user, web_login

ROOT = Path(__file__).resolve().parents[2]
BOOKINGS = 40  # each makes two rows: the request to the professor and the confirmation to the student
SMTP_DELAY_SECONDS = 1.0
STUCK_JOB_SECONDS = 15  # a dead worker's jobs are swept and run again after this (and up to as long again)
RECOVERY_SECONDS = 90


class SlowMailbox:
    """An SMTP server that takes a while over each message and keeps only those it accepted (250 sent).

    aiosmtpd cancels the handler when the client goes away, so a message whose sender died mid-DATA is not kept.
    """

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        with self._lock:
            self.messages.append(message_from_bytes(envelope.content, policy=default_policy))  # type: ignore[arg-type]
        return "250 Message accepted"

    def count(self) -> int:
        with self._lock:
            return len(self.messages)


@contextmanager
def slow_smtp_server(delay: float) -> Iterator[tuple[SlowMailbox, int]]:
    from aiosmtpd.controller import Controller

    handler, port = SlowMailbox(delay), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def start_worker(database_url: str, smtp_port: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "APP_ENV": "test",
        "RUN_WORKER_IN_PROCESS": "false",
        "OUTBOX_SWEEP_AFTER_SECONDS": "2",
        "STUCK_JOB_SECONDS": str(STUCK_JOB_SECONDS),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": smtp_port,
    }
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "app", "workers", "run"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killing it reaches any child it starts
        )


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=15)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        kill_hard(process)


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


@contextmanager
def worker_log() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="oh-worker-") as directory:
        yield Path(directory) / "worker.log"


def notification_rows(database_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute("SELECT * FROM notification ORDER BY created_at, id").fetchall()


def statuses(database_url: str) -> Counter[str]:
    return Counter(row["status"] for row in notification_rows(database_url))


async def active_jobs() -> int:
    """Jobs a worker holds, asked of the queue on whichever backend it runs (PostgreSQL or Redis)."""
    from app.lib.queue import get_queue

    return int(await (await get_queue()).count("active"))


async def wait_for(condition: Any, seconds: float, process: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if condition():
            return True
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode}")
        await asyncio.sleep(0.25)
    return bool(condition())


def message_key(message: EmailMessage) -> str:
    """The outbox row's dedupe key, as the Message-ID carries it: <key-with-dots@office-hours>."""
    return str(message["Message-ID"]).strip().strip("<>").split("@", 1)[0]


async def many_queued_notifications() -> int:
    professor = await make_user(
        "professor", auto_confirm=True, booking_notice_hours=0, max_active_bookings_per_student=BOOKINGS
    )
    student = await make_user()
    for i in range(BOOKINGS):
        await book(student, await make_slot(professor, start=in_hours(48 + i)))
    return 2 * BOOKINGS


@pytest.mark.slow
@pytest.mark.xdist_group("outbox-crash")  # both backends on one xdist process: mostly waiting for the sweeps
async def test_a_worker_killed_mid_delivery_loses_and_duplicates_no_mail(database_url: str, backend: str) -> None:
    expected = await many_queued_notifications()
    assert statuses(database_url) == {"queued": expected}
    with slow_smtp_server(SMTP_DELAY_SECONDS) as (server, port), worker_log() as log:
        first = start_worker(database_url, str(port), log)
        second: subprocess.Popen[bytes] | None = None
        try:
            assert await wait_for(lambda: server.count() >= 5, 60, first), tail(log)
            # The first burst is accepted together; half a delay later the next jobs are mid-DATA.
            await asyncio.sleep(SMTP_DELAY_SECONDS / 2)
            held = await active_jobs()
            kill_hard(first)
            received_before_kill = server.count()
            second = start_worker(database_url, str(port), log)
            restarted = asyncio.get_running_loop().time()
            await wait_for(lambda: statuses(database_url)["sent"] == expected, RECOVERY_SECONDS, second)
            recovery = asyncio.get_running_loop().time() - restarted

        finally:
            for process in (first, second):
                if process is not None:
                    stop(process)
        rows = notification_rows(database_url)
        copies = Counter(message_key(message) for message in server.messages)
        by_recipient_and_subject = Counter((m["To"], str(m["Subject"]).strip()) for m in server.messages)
    keys = [row["dedupe_key"].replace(":", ".") for row in rows]
    sent = sum(row["status"] == "sent" for row in rows)
    duplicates = sum(count - 1 for count in copies.values() if count > 1)
    lost = sum(copies[key] == 0 for key in keys)
    print(
        f"\ncrash test: {expected} notifications, {held} jobs held by the killed worker,"
        f" {received_before_kill} mails received before the kill;"
        f" after recovery: sent={sent} duplicates={duplicates} lost={lost}"
        f" (row states {dict(Counter(row['status'] for row in rows))}, {recovery:.0f} s after the restart)"
    )
    for key, count in copies.items():
        if count > 1:
            print(
                f"  duplicated: {key}: {[(m['Message-ID'], m['Date']) for m in server.messages if message_key(m) == key]}"
            )
    assert held > 0  # the kill hit a worker in the middle of its jobs
    assert set(copies) <= set(keys)
    assert (sent, duplicates, lost) == (expected, 0, 0)
    assert len(by_recipient_and_subject) == expected
    assert set(by_recipient_and_subject.values()) == {1}


@contextmanager
def running_worker(database_url: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    with worker_log() as log:
        worker = start_worker(database_url, os.environ["SMTP_PORT"], log)
        try:
            yield worker, log
        finally:
            stop(worker)


async def fails_for_a_rejected_recipient(
    database_url: str, mailbox: Mailbox, worker: subprocess.Popen[bytes], log: Path
) -> User:
    """A booking request whose mail the running worker gives up on (550); then the server is fixed."""
    professor = await make_user("professor")
    mailbox.reject.add(professor.email)
    await book(await make_user(), await make_slot(professor))
    # The student's acknowledgement of the request is sent; the request to the professor fails.
    assert await wait_for(lambda: statuses(database_url) == {"failed": 1, "sent": 1}, 30, worker), tail(log)
    mailbox.reject.clear()
    return professor


@pytest.mark.slow
async def test_a_failed_notification_resent_by_an_admin_is_delivered_by_the_running_worker(
    client: Any, database_url: str, mailbox: Mailbox, backend: str
) -> None:
    admin = await make_admin()
    with running_worker(database_url) as (worker, log):
        professor = await fails_for_a_rejected_recipient(database_url, mailbox, worker, log)
        await web_login(client, admin.username)
        resent = await client.post("/admin/notifications/resend", headers=csrf_headers(client))
        assert resent.status_code == 303
        delivered = await wait_for(lambda: statuses(database_url) == {"sent": 2}, 30, worker)
    assert delivered, f"{statuses(database_url)}; worker log: {tail(log)}"
    assert [m["To"] for m in mailbox.messages][-1] == professor.email
    assert len(mailbox.to(professor.email)) == 1


class WorkerDied(BaseException):
    """The process vanishes: nothing after this point runs, nothing is committed."""


async def test_a_mail_sent_again_after_a_crash_before_its_commit_keeps_its_message_id(
    database_url: str, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server accepted the mail, then the worker died before recording `sent`: the row is sent again.

    The copy cannot be avoided, but it must carry the same Message-ID so mail systems recognise it.
    """
    professor = await make_user("professor")
    await book(await make_user(), await make_slot(professor))
    (row,) = [row for row in notification_rows(database_url) if row["kind"] == "booking_requested"]
    real_send = delivery.send_message

    async def send_then_die(message: EmailMessage, settings: Any) -> None:
        await real_send(message, settings)
        raise WorkerDied

    monkeypatch.setattr(delivery, "send_message", send_then_die)
    with pytest.raises(WorkerDied):
        await deliver_notification({}, notification_id=str(row["id"]))
    assert statuses(database_url) == {"queued": 2}  # the request, and the student's acknowledgement
    monkeypatch.setattr(delivery, "send_message", real_send)
    assert await deliver_notification({}, notification_id=str(row["id"])) == "sent"
    first, second = mailbox.to(professor.email)
    assert message_key(first) == message_key(second) == row["dedupe_key"].replace(":", ".")
    assert first["Message-ID"] == second["Message-ID"]
