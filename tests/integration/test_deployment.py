"""The documented deployment, run: deploy/nginx/office-hours.conf in front of two app processes and two queue workers
started from deploy/systemd's ExecStart lines, with the queue and live events on Redis.

Only ports and paths are substituted in those files (`render_site`, `exec_start`); nginx runs as the current user
with a temporary prefix. Skipped only where nginx is not installed (`.ci/run` installs Debian's).
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
import pytest
import redis

from tests.conftest import ROOT, TEST_ONLY_VARIABLES, free_port
from tests.helpers import PASSWORD, in_hours, make_slot, make_user
from tests.integration.test_outbox_crash import message_key, slow_smtp_server

pytestmark = pytest.mark.slow
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
SITE = ROOT / "deploy" / "nginx" / "office-hours.conf"
UNITS = ROOT / "deploy" / "systemd"
RUSH, RUSH_SLOTS, RUSH_CAPACITY = 100, 2, 3
MAIL_BOOKINGS = 30  # each makes two mails: the request to the professor and the confirmation to the student
SMTP_DELAY_SECONDS = 1.0
STUCK_JOB_SECONDS = 15  # a dead worker's jobs are swept and run again after this (and up to as long again)
RECOVERY_SECONDS = 90

if NGINX is None:
    pytest.skip(
        "nginx is not installed: `apt-get install nginx` to run the deployment test (.ci/run installs it)",
        allow_module_level=True,
    )


def render_site(https_port: int, http_port: int, app_ports: list[int], directory: Path) -> str:
    """The shipped site file with loopback ports, a test certificate and log paths put in; nothing else changes."""
    text = SITE.read_text()
    replacements = [
        (
            "    server 127.0.0.1:8000;\n    server 127.0.0.1:8001;\n",
            "".join(f"    server 127.0.0.1:{p};\n" for p in app_ports),
        ),
        ("    listen 80;\n    listen [::]:80;\n", f"    listen 127.0.0.1:{http_port};\n"),
        (
            "    listen 443 ssl http2;\n    listen [::]:443 ssl http2;\n",
            f"    listen 127.0.0.1:{https_port} ssl http2;\n",
        ),
        ("/etc/ssl/office-hours.pem", str(directory / "cert.pem")),
        ("/etc/ssl/office-hours.key", str(directory / "key.pem")),
        ("/var/log/nginx/", f"{directory}/"),
    ]
    for old, new in replacements:
        assert old in text, f"{SITE.name} no longer has {old!r}: update render_site"
        text = text.replace(old, new)
    return text


def main_config(directory: Path, site: Path) -> str:
    """What /etc/nginx/nginx.conf gives on a server, with every path under the temporary prefix."""
    user = "user root root;\n" if os.geteuid() == 0 else ""  # as root, workers would otherwise switch to nobody
    temp = "\n".join(
        f"    {kind}_temp_path {directory}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes 2;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log info;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n    default_type application/octet-stream;\n{temp}\n    access_log {directory}/access.log;\n"
        f"    include {site};\n}}\n"
    )


def self_signed(directory: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def exec_start(unit: str, instance: str) -> list[str]:
    """The unit's command, with this checkout's `app` for /srv/office-hours/.venv/bin/app and %i filled in."""
    (line,) = [line for line in (UNITS / unit).read_text().splitlines() if line.startswith("ExecStart=")]
    command = shlex.split(line.removeprefix("ExecStart=").replace("%i", instance))
    assert command[0] == "/srv/office-hours/.venv/bin/app"
    return [str(Path(sys.executable).parent / "app"), *command[1:]]


@dataclass
class Deployment:
    base: str  # nginx, https
    redirect: str  # nginx, http
    app_ports: list[int]
    directory: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list[IO[bytes]] = field(default_factory=list)

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{name}.log").open("ab")
        self.logs.append(log)
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True)
        self.processes[name] = process
        return process

    def tail(self, name: str, size: int = 3000) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")[-size:]

    def errors(self) -> str:
        """The first error lines the app processes logged (JSON lines), for a failure's message."""
        found = [
            line[:1500]
            for name in self.processes
            if name.startswith("web@")
            for line in (self.directory / f"{name}.log").read_text(errors="replace").splitlines()
            if '"level": "error"' in line
        ]
        return "\n".join(found[:3])

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            assert name  # every process ended
        for log in self.logs:
            log.close()


def wait_for_http(url: str, process: subprocess.Popen[bytes], deployment: Deployment, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{name} exited: {deployment.tail(name)}"
        try:
            if httpx.get(url, timeout=1, verify=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{name} did not come up: {deployment.tail(name)}")


@contextmanager
def deployed(database_url: str, redis_url: str, smtp_port: int, directory: Path) -> Iterator[Deployment]:
    """The deployment on this test process's own Redis database (the `redis_url` fixture leases and empties it)."""
    https_port, http_port, app_ports = free_port(), free_port(), [free_port(), free_port()]
    base = f"https://127.0.0.1:{https_port}"
    env = {
        **{
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("LOG_", "METRICS_", "OTEL_")) and key not in TEST_ONLY_VARIABLES
        },
        "APP_ENV": "production",
        "SECRET_KEY": "deployment-test-secret-" + "d" * 40,
        "APP_URL": base,
        "DATABASE_URL": database_url,
        "QUEUE_URL": redis_url,
        "CHANNELS_URL": redis_url,
        "RUN_WORKER_IN_PROCESS": "false",
        "TRUSTED_PROXIES": "127.0.0.1",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "OUTBOX_SWEEP_AFTER_SECONDS": "5",
        "STUCK_JOB_SECONDS": str(STUCK_JOB_SECONDS),
        # Four processes on a test server that others share: 4 x 6 connections at most; a rush waits for the pool.
        "DATABASE_POOL_SIZE": "3",
        "DATABASE_MAX_OVERFLOW": "3",
    }
    deployment = Deployment(base, f"http://127.0.0.1:{http_port}", app_ports, directory, env)
    self_signed(directory)
    site = directory / "office-hours.conf"
    site.write_text(render_site(https_port, http_port, app_ports, directory))
    (directory / "nginx.conf").write_text(main_config(directory, site))
    assert NGINX is not None
    checked = subprocess.run(
        [NGINX, "-t", "-e", str(directory / "error.log"), "-p", f"{directory}/", "-c", str(directory / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    try:
        for port in app_ports:
            app = deployment.start(f"web@{port}", exec_start("office-hours-web@.service", str(port)))
            wait_for_http(f"http://127.0.0.1:{port}/health", app, deployment, f"web@{port}")
        for number in (1, 2):
            deployment.start(f"worker@{number}", exec_start("office-hours-worker@.service", str(number)))
        proxy = deployment.start(
            "nginx",
            [
                NGINX,
                "-e",
                str(directory / "error.log"),
                "-p",
                f"{directory}/",
                "-c",
                str(directory / "nginx.conf"),
                "-g",
                "daemon off;",
            ],
        )
        wait_for_http(f"{base}/health", proxy, deployment, "nginx")
        yield deployment
    finally:
        deployment.stop_all()


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=False, timeout=30, follow_redirects=False) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, base: str, username: str) -> None:
    """The web sign-in through the proxy, as a browser does it (https: the CSRF cookie is `__Host-` prefixed)."""
    await client.get(f"{base}/login")
    token = client.cookies.get("__Host-csrftoken") or ""
    answer = await client.post(
        f"{base}/login",
        data={"username": username, "password": PASSWORD, "_csrf_token": token},
        headers={"Origin": base, "x-csrftoken": token},
    )
    assert answer.status_code in (302, 303), answer.text[:500]


async def api_tokens(client: httpx.AsyncClient, base: str, users: list[Any]) -> list[dict[str, str]]:
    gate = asyncio.Semaphore(8)

    async def one(user: Any) -> dict[str, str]:
        async with gate:
            answer = await client.post(
                f"{base}/api/v1/auth/token", json={"username": user.username, "password": PASSWORD}
            )
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    return list(await asyncio.gather(*(one(user) for user in users)))


def notification_states(database_url: str) -> Counter[str]:
    with psycopg.connect(database_url) as conn:
        return Counter(status for (status,) in conn.execute("SELECT status FROM notification").fetchall())


async def check_pages_and_api(http: httpx.AsyncClient, deployment: Deployment) -> None:
    base = deployment.base
    redirected = await http.get(f"{deployment.redirect}/professors?q=x")
    assert (redirected.status_code, redirected.headers["location"]) == (301, "https://127.0.0.1/professors?q=x")
    home = await http.get(f"{base}/")
    assert home.status_code == 200
    assert "text/html" in home.headers["content-type"]
    assert re.fullmatch(r"[0-9a-f]{32}", home.headers["x-request-id"])  # nginx's $request_id, kept by the app
    assert (await http.get(f"{base}/static/vendor/htmx.min.js")).status_code == 200
    health = await http.get(f"{base}/health")
    assert health.json() == {"status": "ok", "database": "ok", "queue": "ok"}  # the queue: Redis
    student = await make_user()
    (headers,) = await api_tokens(http, base, [student])
    me = await http.get(f"{base}/api/v1/me", headers=headers)
    assert (me.status_code, me.json()["username"]) == (200, student.username)


async def check_live_update(http: httpx.AsyncClient, deployment: Deployment) -> float:
    """Seconds from a booking's request to its event on a grid's stream, both through the proxy."""
    base = deployment.base
    professor = await make_user("professor", auto_confirm=True)
    slot = await make_slot(professor, start=in_hours(30))
    viewer, booker = await make_user(), await make_user()
    (headers,) = await api_tokens(http, base, [booker])
    async with httpx.AsyncClient(verify=False, timeout=httpx.Timeout(30, read=20)) as browser:
        await sign_in(browser, base, viewer.username)
        lines: asyncio.Queue[tuple[float, str]] = asyncio.Queue()

        async def read() -> None:
            async with browser.stream("GET", f"{base}/professors/{professor.id}/events") as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                async for line in stream.aiter_lines():
                    await lines.put((time.monotonic(), line))

        reader = asyncio.create_task(read())
        try:
            _, first = await asyncio.wait_for(lines.get(), 10)
            assert first == ": keepalive"  # subscribed; nginx passed the first bytes at once
            started = time.monotonic()
            booked = await http.post(f"{base}/api/v1/slots/{slot.id}/bookings", headers=headers)
            assert booked.status_code == 201, booked.text
            while True:
                arrived, line = await asyncio.wait_for(lines.get(), 5)
                if line == f"event: slot-{slot.id}":
                    return arrived - started
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


async def check_rush(http: httpx.AsyncClient, deployment: Deployment, database_url: str) -> Counter[int]:
    base = deployment.base
    professor = await make_user("professor", auto_confirm=True)
    slots = [await make_slot(professor, start=in_hours(60 + 2 * i), capacity=RUSH_CAPACITY) for i in range(RUSH_SLOTS)]
    students = [await make_user() for _ in range(RUSH)]
    headers = await api_tokens(http, base, students)
    gate = asyncio.Event()

    async def attempt(i: int) -> int:
        await gate.wait()
        url = f"{base}/api/v1/slots/{slots[i % RUSH_SLOTS].id}/bookings"
        return (await http.post(url, headers=headers[i])).status_code

    tasks = [asyncio.create_task(attempt(i)) for i in range(RUSH)]
    await asyncio.sleep(0.1)
    gate.set()
    statuses = Counter(await asyncio.gather(*tasks))
    assert set(statuses) <= {201, 409}, f"{statuses}: {deployment.errors()}"
    with psycopg.connect(database_url) as conn:
        held = conn.execute(
            "SELECT count(*) FROM booking WHERE slot_id = ANY(%s) AND status IN ('pending', 'confirmed') GROUP BY slot_id",
            ([slot.id for slot in slots],),
        ).fetchall()
    assert sorted(count for (count,) in held) == [RUSH_CAPACITY] * RUSH_SLOTS  # 0 overbooked
    return statuses


async def book_many(http: httpx.AsyncClient, deployment: Deployment) -> None:
    professor = await make_user(
        "professor", auto_confirm=True, booking_notice_hours=0, max_active_bookings_per_student=MAIL_BOOKINGS
    )
    student = await make_user()
    (headers,) = await api_tokens(http, deployment.base, [student])
    for i in range(MAIL_BOOKINGS):
        slot = await make_slot(professor, start=in_hours(100 + i))
        booked = await http.post(f"{deployment.base}/api/v1/slots/{slot.id}/bookings", headers=headers)
        assert booked.status_code == 201, booked.text


async def test_the_documented_nginx_deployment_serves_streams_and_rushes_and_survives_a_killed_worker(
    database_url: str, redis_url: str, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    with (
        slow_smtp_server(SMTP_DELAY_SECONDS) as (sink, smtp_port),
        deployed(database_url, redis_url, smtp_port, tmp_path) as deployment,
    ):
        await check_pages_and_api(http, deployment)
        latency = await check_live_update(http, deployment)
        statuses = await check_rush(http, deployment, database_url)
        await book_many(http, deployment)

        # A worker dies (SIGKILL) while it holds jobs and SMTP sessions; systemd would start it again.
        deadline = time.monotonic() + 60
        while sink.count() < 5:
            assert time.monotonic() < deadline, deployment.tail("worker@1")
            await asyncio.sleep(0.1)
        await asyncio.sleep(SMTP_DELAY_SECONDS / 2)  # the next messages are mid-DATA
        active = redis.Redis.from_url(redis_url).llen("saq:default:active")
        victim = deployment.processes["worker@1"]
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        received_at_kill = sink.count()
        deployment.start("worker@1-restarted", exec_start("office-hours-worker@.service", "1"))

        expected = sum(notification_states(database_url).values())
        restarted = time.monotonic()
        while notification_states(database_url)["sent"] < expected:
            assert time.monotonic() - restarted < RECOVERY_SECONDS, (
                f"{notification_states(database_url)}; {deployment.tail('worker@2')}"
            )
            await asyncio.sleep(0.5)
        recovery = time.monotonic() - restarted
        await asyncio.sleep(2)  # anything sent twice would arrive by now
        copies = Counter(message_key(message) for message in sink.messages)
        served = {
            port: deployment.tail(f"web@{port}", 10**7).count('"logger": "app.access"') for port in deployment.app_ports
        }

    with psycopg.connect(database_url) as conn:
        keys = {key.replace(":", ".") for (key,) in conn.execute("SELECT dedupe_key FROM notification").fetchall()}
    duplicates = sum(count - 1 for count in copies.values())
    lost = len(keys - set(copies))
    print(
        f"\ndeployment: live update through nginx in {latency * 1000:.0f} ms; rush {dict(statuses)};"
        f" {expected} mails, {active} jobs active when a worker was killed after {received_at_kill} mails;"
        f" recovered in {recovery:.0f} s: duplicates={duplicates} lost={lost}; requests per app process {served}"
    )
    assert latency < 1.0
    assert all(count > 10 for count in served.values()), served  # nginx spread the requests over both processes
    assert statuses == {201: RUSH_SLOTS * RUSH_CAPACITY, 409: RUSH - RUSH_SLOTS * RUSH_CAPACITY}
    assert active > 0
    assert received_at_kill < expected  # the kill came mid-run
    assert lost == 0
    # A message the SMTP server accepted in the instant before the killed worker could record it is sent again, under
    # the same Message-ID (test_outbox_crash.py: a mail sent again after a crash keeps its message id), so mail
    # systems show it once; at most the jobs the dead worker held can be sent twice, never a different message.
    assert duplicates <= active
    assert set(copies) == keys
