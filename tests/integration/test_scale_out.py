"""Two app processes and two queue-worker processes on one database, as a scaled-out deployment runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import ROOT, Mailbox, free_port, start_server, wait_until_up
from tests.helpers import PASSWORD, in_hours, make_slot, make_user

pytestmark = [pytest.mark.slow, pytest.mark.serial]
STUDENTS, SLOTS, CAPACITY = 30, 3, 2


def start_worker(database_url: str, mailbox_port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "APP_ENV": "test",
        "RUN_WORKER_IN_PROCESS": "false",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mailbox_port),
        "OUTBOX_SWEEP_AFTER_SECONDS": "5",
    }
    return subprocess.Popen([sys.executable, "-m", "app", "workers", "run"], cwd=ROOT, env=env)


async def tokens(base: str, users: list[Any]) -> dict[Any, dict[str, str]]:
    async with httpx.AsyncClient(base_url=base) as client:
        issued = {}
        for user in users:
            answer = await client.post("/api/v1/auth/token", json={"username": user.username, "password": PASSWORD})
            issued[user.id] = {"Authorization": f"Bearer {answer.json()['token']}"}
    return issued


async def test_a_rush_through_two_app_processes_never_overbooks_and_mails_once(
    database_url: str, mailbox: Mailbox, mailbox_server: tuple[Mailbox, int], backend: str
) -> None:
    """On both backends: the processes inherit QUEUE_URL/CHANNELS_URL (Redis) or leave them to the database."""
    ports = [free_port(), free_port()]
    apps = [start_server(database_url, port, RUN_WORKER_IN_PROCESS="false") for port in ports]
    workers = [start_worker(database_url, mailbox_server[1]) for _ in range(2)]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base, app in zip(bases, apps, strict=True):
            wait_until_up(base, app)
        professor = await make_user("professor", auto_confirm=True)
        slots = [await make_slot(professor, start=in_hours(48 + 2 * i), capacity=CAPACITY) for i in range(SLOTS)]
        students = [await make_user() for _ in range(STUDENTS)]
        headers = await tokens(bases[0], students)

        async with httpx.AsyncClient(timeout=30) as client:
            gate = asyncio.Event()

            async def attempt(i: int, student: Any) -> int:
                await gate.wait()
                slot = slots[i % SLOTS]
                url = f"{bases[i % 2]}/api/v1/slots/{slot.id}/bookings"  # alternate between the two processes
                return (await client.post(url, headers=headers[student.id])).status_code

            rush = [asyncio.create_task(attempt(i, student)) for i, student in enumerate(students)]
            await asyncio.sleep(0.1)
            gate.set()
            statuses = Counter(await asyncio.gather(*rush))

        assert statuses == {201: SLOTS * CAPACITY, 409: STUDENTS - SLOTS * CAPACITY}
        with psycopg.connect(database_url) as conn:
            held = conn.execute(
                "SELECT slot_id, count(*) FROM booking WHERE status IN ('pending', 'confirmed') GROUP BY slot_id"
            ).fetchall()
            expected_mails = conn.execute("SELECT count(*) FROM notification").fetchone()[0]
        assert sorted(count for _, count in held) == [CAPACITY] * SLOTS  # nothing overbooked

        # Both workers deliver; every outbox row goes out exactly once.
        deadline = time.monotonic() + 120
        while True:
            with psycopg.connect(database_url) as conn:
                left = conn.execute("SELECT count(*) FROM notification WHERE status <> 'sent'").fetchone()[0]
            if left == 0:
                break
            assert time.monotonic() < deadline, f"{left} notification(s) not delivered"
            await asyncio.sleep(0.5)
        ids = Counter(str(message["Message-ID"]) for message in mailbox.messages)
        assert len(ids) == expected_mails == SLOTS * CAPACITY * 2  # booking requested + confirmed, per booking
        assert max(ids.values()) == 1  # no duplicates
    finally:
        for process in [*apps, *workers]:
            process.terminate()
        for process in [*apps, *workers]:
            process.wait(timeout=30)
