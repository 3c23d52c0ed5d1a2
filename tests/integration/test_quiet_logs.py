"""Quiet logs: a handled 4xx is no error, Ctrl-C stops the server without a traceback, `app --help` needs no database."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, free_port, wait_until_up


@pytest.mark.parametrize("path", ["/no-such-page", "/dashboard", "/api/v1/me"])
async def test_a_handled_client_error_is_not_logged_as_an_error(
    client: Any, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    with caplog.at_level(logging.INFO):
        response = await client.get(path)
    assert response.status_code in (303, 401, 404)
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []


def test_app_help_starts_no_database(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "app", "--help"],
        cwd=ROOT,
        env={**environment, "DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert not (tmp_path / "postgres").exists()


def test_ctrl_c_stops_the_server_and_its_worker_without_a_traceback(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "run", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(tmp_path), "RUN_WORKER_IN_PROCESS": "true"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}", server)  # type: ignore[arg-type]
        server.send_signal(signal.SIGINT)
        _, errors = server.communicate(timeout=60)
    finally:
        server.kill()
    assert server.returncode == 0, errors[-3000:]
    assert "Traceback" not in errors, errors[-3000:]
