"""Scale-out: the grid page load and the booking rush against 1 and then 2 app processes, two queue workers each time.

Unlike the other scripts this one starts what it measures, so that every run starts alike. It needs a PostgreSQL
server it may create databases on (``--admin-url``, default: the local one with trust auth)::

    .venv/bin/python bench/scale_out.py
    .venv/bin/python bench/scale_out.py --processes 1 2 3 --students 300 --slots 30 --browsers 20 --seconds 15

For each number of app processes:

1. a throwaway database is created and migrated (``app database upgrade``);
2. ``app run --wc N`` serves it with production settings (no debug), and two ``app workers run`` processes
   deliver its mail to an SMTP sink this script runs on loopback;
3. ``grid_load.py`` (signed-in students reloading one professor's week grid) and then ``booking_rush.py``
   (N students booking M slots at the same moment, then ``/health`` hammered) run against it;
4. once the workers have sent every notification, the messages the sink received are counted: each one
   must arrive exactly once, whichever worker sent it;
5. everything is stopped and the database dropped.

The last lines compare every count with the first (the 2-vs-1 ratio). The exit status is 1 when a run went
wrong (an answer that was not the grid, an overbooked slot, an error other than 409, a lost or duplicated
message), else 0; the latency targets of the other scripts are reported there, not judged here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from psycopg import sql

import booking_rush
import grid_load
from common import EMAIL_DOMAIN, VERIFY_IN_DATABASE, percentile

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
DELIVERY_TIMEOUT_SECONDS = 300.0


class MessageCounter:
    """An SMTP sink that counts every Message-ID it is handed."""

    def __init__(self) -> None:
        self.message_ids: Counter[str] = Counter()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.message_ids[str(message_from_bytes(envelope.original_content or b"")["Message-ID"])] += 1
        return "250 OK"


@dataclass
class RunFigures:
    processes: int
    grid: grid_load.GridSummary
    rush: booking_rush.RushSummary
    notifications: int
    received: int
    duplicates: int

    @property
    def problems(self) -> list[str]:
        found = [f"{self.processes} process(es): {failure}" for failure in self.rush.failures if "p99" not in failure]
        if self.grid.failures:
            found.append(f"{self.processes} process(es): {self.grid.failures} grid answers were not the grid")
        if self.received != self.notifications or self.duplicates:
            found.append(
                f"{self.processes} process(es): {self.notifications} notifications, {self.received} received, "
                f"{self.duplicates} duplicated"
            )
        return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_database(admin_url: str, database: str) -> str:
    return urlsplit(admin_url)._replace(path=f"/{database}").geturl()


def app_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "app", *arguments]


def start(arguments: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A process in a group of its own, so that `stop` also reaches the workers `app run --wc N` spawns."""
    with log.open("ab") as output:
        return subprocess.Popen(
            arguments, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_until_up(base_url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{base_url} did not answer /health within {timeout:.0f} s")


def wait_for_delivery(database_url: str) -> int:
    """Every notification sent (or the timeout): their number."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            total, waiting = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE status <> 'sent') FROM notification"
            ).fetchone() or (0, 0)
            if not waiting or time.monotonic() > deadline:
                return int(total)
            time.sleep(0.5)


def measure(processes: int, args: argparse.Namespace, sink: MessageCounter, sink_port: int, logs: Path) -> RunFigures:
    database = f"scaleout_{secrets.token_hex(4)}"
    database_url = with_database(args.admin_url, database)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "APP_URL": base_url,
        "DATABASE_URL": database_url,
        "PROFESSOR_SIGNUP_DOMAINS": EMAIL_DOMAIN,
        "RUN_WORKER_IN_PROCESS": "false",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(sink_port),
    }
    os.environ[VERIFY_IN_DATABASE] = database_url
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        subprocess.run(
            app_command("database", "upgrade", "--no-prompt"), cwd=ROOT, env=env, check=True, capture_output=True
        )
        with ExitStack() as running:
            serve = app_command("run", "--wc", str(processes), "--host", "127.0.0.1", "--port", str(port))
            app = start(serve, env, logs / f"app-{processes}.log")
            running.callback(stop, app)
            for i in range(WORKERS):
                running.callback(stop, start(app_command("workers", "run"), env, logs / f"worker-{processes}-{i}.log"))
            wait_until_up(base_url, app)
            print(f"\n=== {processes} app process(es), {WORKERS} queue workers: {base_url} (logs in {logs}) ===")
            sink.message_ids.clear()
            grid = asyncio.run(
                grid_load.measure(base_url, args.slots_in_grid, args.browsers, args.warmup, args.seconds, htmx=False)
            )
            rush_args = [base_url, "--students", str(args.students), "--slots", str(args.slots)]
            rush = asyncio.run(booking_rush.measure(booking_rush.parse_args(rush_args)))
            if rush is None:
                raise RuntimeError("the booking rush's setup failed")
            notifications = wait_for_delivery(database_url)
            time.sleep(1)  # the last message's SMTP transaction ends after its row is marked sent
            received = len(sink.message_ids)
            duplicates = sum(count - 1 for count in sink.message_ids.values())
            print(f"notifications            {notifications}; received {received}, duplicated {duplicates}")
            return RunFigures(processes, grid, rush, notifications, received, duplicates)
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def report(runs: list[RunFigures]) -> None:
    print("\n| app processes | grid page req/s | grid p50 / p95 ms | rush req/s | rush p50 / p99 ms | /health req/s |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        p50, p95 = (percentile(run.grid.latencies, fraction) for fraction in (0.5, 0.95))
        print(
            f"| {run.processes} | {run.grid.rate:.1f} | {p50:.0f} / {p95:.0f} | {run.rush.throughput:.1f} "
            f"| {run.rush.p50:.0f} / {run.rush.p99:.0f} | {run.rush.health_rate:.1f} |"
        )
    first = runs[0]
    for run in runs[1:]:
        print(
            f"{run.processes} vs {first.processes} process(es): grid x{run.grid.rate / first.grid.rate:.2f}, "
            f"rush x{run.rush.throughput / first.rush.throughput:.2f}, "
            f"/health x{run.rush.health_rate / first.rush.health_rate:.2f}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL role that may create databases (default: $BENCH_ADMIN_URL or the local server)",
    )
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="app process counts (default: 1 2)")
    parser.add_argument("--browsers", type=int, default=20, help="grid load: signed-in students (default: 20)")
    parser.add_argument("--slots-in-grid", type=int, default=15, help="grid load: slots in the week (default: 15)")
    parser.add_argument("--warmup", type=float, default=3.0, help="grid load: seconds not counted (default: 3)")
    parser.add_argument("--seconds", type=float, default=15.0, help="grid load: seconds measured (default: 15)")
    parser.add_argument("--students", type=int, default=500, help="rush: students (default: 500)")
    parser.add_argument("--slots", type=int, default=50, help="rush: slots of capacity 1 (default: 50)")
    parser.add_argument("--logs", type=Path, default=Path("/tmp/scale-out-logs"), help="server logs go here")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    sink = MessageCounter()
    sink_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink_port)
    controller.start()
    try:
        runs = [measure(processes, args, sink, sink_port, args.logs) for processes in args.processes]
    finally:
        controller.stop()
    report(runs)
    problems = [problem for run in runs for problem in run.problems]
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print("FAIL" if problems else "OK: every run served the grid, never overbooked and mailed each message once")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
