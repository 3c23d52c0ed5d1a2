"""Logs: JSON lines in production, each naming its request; a job's lines name the request that queued it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.conftest import ROOT, TEST_ONLY_VARIABLES, Mailbox, free_port, wait_until_up
from tests.helpers import PASSWORD, make_slot, make_user


async def test_every_answer_carries_a_generated_request_id(client: Any) -> None:
    first, second = await client.get("/health"), await client.get("/no-such-page")
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in ids)
    assert ids[0] != ids[1]


async def test_a_sane_request_id_from_the_proxy_is_kept(client: Any) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "nginx-4f2a:17"})
    assert response.headers["x-request-id"] == "nginx-4f2a:17"


@pytest.mark.parametrize("presented", ["has space", "x" * 200, "<script>", "-leading-dash", ""])
async def test_an_unusable_request_id_is_replaced(client: Any, presented: str) -> None:
    response = await client.get("/health", headers={"X-Request-ID": presented})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def production_env(database_url: str, mailbox_port: int, port: int) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in ("LOG_FORMAT", *TEST_ONLY_VARIABLES)}
    return {
        **environment,
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "production-like-secret-" + "s" * 40,
        "APP_URL": f"http://127.0.0.1:{port}",
        "RUN_WORKER_IN_PROCESS": "false",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mailbox_port),
    }


def start(arguments: list[str], env: dict[str, str], stderr: IO[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", *arguments], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr
    )


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line the process wrote to stderr, each of which must be one JSON object."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line in {path.name}: {line!r}")
    return parsed


@pytest.mark.slow
async def test_production_logs_are_json_lines_and_the_mail_job_names_the_booking_request(
    database_url: str, mailbox: Mailbox, mailbox_server: tuple[Mailbox, int], tmp_path: Path
) -> None:
    port = free_port()
    env = production_env(database_url, mailbox_server[1], port)
    app_log, worker_log = tmp_path / "app.stderr", tmp_path / "worker.stderr"
    with app_log.open("w") as app_err, worker_log.open("w") as worker_err:
        server = start(["run", "--host", "127.0.0.1", "--port", str(port)], env, app_err)
        worker = start(["workers", "run"], env, worker_err)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base, server)  # type: ignore[arg-type]
            professor = await make_user("professor", auto_confirm=True)
            slot = await make_slot(professor)
            student = await make_user()
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                token = (
                    await http.post("/api/v1/auth/token", json={"username": student.username, "password": PASSWORD})
                ).json()["token"]
                booked = await http.post(
                    f"/api/v1/slots/{slot.id}/bookings", headers={"Authorization": f"Bearer {token}"}
                )
            assert booked.status_code == 201, booked.text
            request_id = booked.headers["x-request-id"]
            deadline = time.monotonic() + 60
            while len(mailbox.messages) < 2:
                assert time.monotonic() < deadline, worker_log.read_text()[-3000:]
                assert worker.poll() is None, worker_log.read_text()[-3000:]
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.5)  # the delivery lines follow the mails
        finally:
            for process in (server, worker):
                process.terminate()
            for process in (server, worker):
                process.wait(timeout=30)

    app_lines, worker_lines = json_lines(app_log), json_lines(worker_log)
    access = [line for line in app_lines if line.get("request_id") == request_id]
    assert [(line["logger"], line["route"], line["status"]) for line in access] == [
        ("app.access", "/api/v1/slots/{slot_id}/bookings", 201)
    ]
    deliveries = [line for line in worker_lines if line.get("request_id") == request_id]
    assert sorted(line["outcome"] for line in deliveries) == ["sent", "sent"]
    assert all(line["job"].startswith("deliver_notification:") for line in deliveries)
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in app_lines + worker_lines)
    # No personal data in the lines: neither party's address nor name.
    everything = app_log.read_text() + worker_log.read_text()
    for personal in (student.email, professor.email, student.username, student.last_name):
        assert personal not in everything
