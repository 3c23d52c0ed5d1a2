"""Per-request cost as ratios to a plain Litestar page, measured side by side in one run (issue 17).

Starts what it measures, so every run starts alike, on a throwaway database it creates, migrates and drops
(``--admin-url``, default: the local PostgreSQL as ``postgres``)::

    .venv/bin/python bench/ratios.py                       # about 2 minutes
    .venv/bin/python bench/ratios.py --seconds 10 --connections 20 --rush-students 200

1. the app (``app run``: one uvicorn process, ``APP_ENV=production``, no in-process queue worker) and the plain page
   app (``bench/plain_app.py``: Litestar + one asyncpg query of 40 rows + a Jinja table of 40 rows), both through
   Litestar's ``run`` command on this interpreter, so the same server and settings serve both;
2. seeding (not timed): a professor with 25 slots next week (``grid_load.setup``: students book some of them),
   ``--browsers`` students signed in on the web (their session cookies), a student's API token, and 40 rows for
   the plain page;
3. one load generator drives every endpoint in turn for ``--seconds`` (after ``--warmup`` seconds not counted):
   ``wrk -t1 -c<connections>`` when installed (Debian's ``wrk``; the signed-in pages cycle through the browsers'
   cookies), else a Python client with one connection per simulated browser. With ``--rounds N`` the whole turn
   is taken N times and each ratio is the median of the rounds' ratios, each to the plain page of its own round: on
   a shared machine whose speed drifts within a minute, a page is then compared with the plain page measured next
   to it, not a minute before;
4. the booking rush (``booking_rush.py``: ``--rush-students`` at once on a tenth as many slots) and its own
   ``/health`` ceiling with the same client, for the rush/health ratio;
5. the table: req/s, p50/p99, the ratio to the plain page (to ``/health`` for the rush) and PASS/FAIL against
   issue 17's targets. Exit status 1 when a target is missed or an answer was wrong.

``--hold`` keeps both servers running after the table (their pids are printed) for a profiler such as py-spy;
each endpoint's URL, headers and a cookie are written to ``/tmp/ratios-logs/endpoints.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import httpx
import psycopg
from psycopg import sql

import booking_rush
import grid_load
from common import EMAIL_DOMAIN, VERIFY_IN_DATABASE, cpu_seconds, percentile, register
from scale_out import app_command, free_port, start, stop, wait_until_up, with_database

ROOT = Path(__file__).resolve().parent.parent
LOGS = Path(tempfile.gettempdir()) / "ratios-logs"
GRID_SLOTS = 25
PLAIN_ROWS = 40


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    server: str  # "app" or "plain"
    path: str
    target: float | None  # least ratio to the plain page
    headers: tuple[tuple[str, str], ...] = ()
    cookies: tuple[str, ...] = ()  # one Cookie header per simulated browser, cycled
    must_contain: str = ""


@dataclass
class Measured:
    endpoint: Endpoint
    rate: float
    p50_ms: float
    p99_ms: float
    bad: int  # answers that were not 2xx/3xx, or socket errors
    cpu_ms: float = 0.0  # the serving process's CPU time per request (independent of what else the machine runs)


# --- the load generator ----------------------------------------------------------------------------------------------


def lua_script(endpoint: Endpoint) -> str:
    """A wrk script sending `endpoint`'s headers, each request with the next browser's cookie."""
    headers = ", ".join(f'["{name}"] = "{value}"' for name, value in endpoint.headers)
    cookies = ", ".join(f'"{cookie}"' for cookie in endpoint.cookies) or '""'
    return f"""
local cookies = {{ {cookies} }}
local headers = {{ {headers} }}
local n = 0
request = function()
  n = n + 1
  local cookie = cookies[(n % #cookies) + 1]
  if cookie ~= "" then headers["Cookie"] = cookie end
  return wrk.format("GET", "{endpoint.path}", headers)
end
"""


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


def run_wrk(base_url: str, endpoint: Endpoint, seconds: float, connections: int) -> Measured:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua_script(endpoint))
    try:
        command = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            script.name,
            base_url,
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", output))
    if socket := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        bad += sum(int(n) for n in socket.groups())
    return Measured(endpoint, rate, p50, p99, bad)


async def run_python(base_url: str, endpoint: Endpoint, seconds: float, connections: int) -> Measured:
    """One client (one connection) per simulated browser, each sending its next request when the last answered."""
    latencies: list[float] = []
    bad = 0
    deadline = time.perf_counter() + seconds

    async def browser(i: int) -> None:
        nonlocal bad
        headers = dict(endpoint.headers)
        if endpoint.cookies:
            headers["Cookie"] = endpoint.cookies[i % len(endpoint.cookies)]
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
            while (began := time.perf_counter()) < deadline:
                try:
                    response = await client.get(endpoint.path, headers=headers)
                    bad += response.status_code >= 400
                except httpx.HTTPError:
                    bad += 1
                latencies.append((time.perf_counter() - began) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(browser(i) for i in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Measured(endpoint, len(latencies) / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99), bad)


def drive(base_url: str, endpoint: Endpoint, args: argparse.Namespace, pid: int) -> Measured:
    if args.warmup > 0:
        load(base_url, endpoint, args.warmup, args.connections, args.client)
    before = cpu_seconds(pid)
    measured = load(base_url, endpoint, args.seconds, args.connections, args.client)
    requests = measured.rate * args.seconds
    measured.cpu_ms = (cpu_seconds(pid) - before) * 1000 / requests if requests else 0.0
    print(
        f"  {endpoint.label:<38} {measured.rate:>9.1f} req/s  p50 {measured.p50_ms:7.1f} ms  "
        f"server CPU {measured.cpu_ms:6.2f} ms/req",
        flush=True,
    )
    return measured


def load(base_url: str, endpoint: Endpoint, seconds: float, connections: int, client: str) -> Measured:
    if client == "wrk":
        return run_wrk(base_url, endpoint, seconds, connections)
    return asyncio.run(run_python(base_url, endpoint, seconds, connections))


# --- setup -----------------------------------------------------------------------------------------------------------


def prepare_database(admin_url: str, database: str, env: dict[str, str]) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    subprocess.run(
        app_command("database", "upgrade", "--no-prompt"), cwd=ROOT, env=env, check=True, capture_output=True
    )
    with psycopg.connect(with_database(admin_url, database), autocommit=True) as conn:
        conn.execute("CREATE TABLE plain_row (id int PRIMARY KEY, name text, starts timestamptz, places int)")
        conn.execute(
            "INSERT INTO plain_row SELECT i, 'Row number ' || i, now() + i * interval '1 hour', i %% 3 "
            "FROM generate_series(1, %s) AS i",
            (PLAIN_ROWS,),
        )


def cookie_header(client: httpx.AsyncClient) -> str:
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in client.cookies.jar)


async def seed(base_url: str, browsers: int) -> list[Endpoint]:
    """The app's endpoints to measure, with what they need (professor, week, cookies, token)."""
    professor_id, monday, last_cell, clients = await grid_load.setup(base_url, GRID_SLOTS, browsers)
    try:
        cookies = tuple(cookie_header(client) for client in clients)
    finally:
        for client in clients:
            await client.aclose()
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as api:
        student = await register(api, f"ratios{secrets.token_hex(3)}", "student", grid_load.PASSWORD)
    grid = f"/professors/{professor_id}?week={monday.isoformat()}"
    slots = f"/api/v1/slots?professor_id={professor_id}&start={monday.isoformat()}T00:00:00Z"
    return [
        Endpoint("health", "app /health", "app", "/health", 0.5),
        Endpoint(
            "grid", "app grid page, signed in, 25 slots", "app", grid, 0.20, cookies=cookies, must_contain=last_cell
        ),
        Endpoint(
            "fragment",
            "app grid fragment (htmx)",
            "app",
            grid,
            0.20,
            headers=(("HX-Request", "true"),),
            cookies=cookies,
            must_contain=last_cell,
        ),
        Endpoint(
            "api",
            "app API slot list (bearer)",
            "app",
            slots,
            0.25,
            headers=(("Authorization", f"Bearer {student.token}"),),
            must_contain='"total":25',
        ),
    ]


async def check(base_url: str, endpoint: Endpoint) -> None:
    """One request as the load sends it: a 200 with what the page must show, or the run stops."""
    headers = dict(endpoint.headers)
    if endpoint.cookies:
        headers["Cookie"] = endpoint.cookies[0]
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        response = await client.get(endpoint.path, headers=headers)
    if response.status_code != 200 or endpoint.must_contain not in response.text.replace(" ", ""):
        raise RuntimeError(f"{endpoint.label}: {response.status_code} {response.text[:300]}")


# --- the run ---------------------------------------------------------------------------------------------------------


def verdict(ratio: float, target: float | None) -> str:
    if target is None:
        return ""
    return f"{'PASS' if ratio >= target else 'FAIL'} (>= {target:.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per endpoint (default: 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds not counted first (default: 2)")
    parser.add_argument("--connections", type=int, default=20, help="simultaneous browsers (default: 20)")
    parser.add_argument("--browsers", type=int, default=20, help="signed-in students whose cookies cycle (default: 20)")
    parser.add_argument("--rush-students", type=int, default=200, help="booking rush size; 0 skips it (default: 200)")
    parser.add_argument("--client", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--only", nargs="*", help="endpoint keys: hello plain health grid fragment api rush")
    parser.add_argument("--rounds", type=int, default=1, help="turns over every endpoint; medians (default: 1)")
    parser.add_argument("--hold", action="store_true", help="keep the servers running after the table")
    args = parser.parse_args()

    LOGS.mkdir(exist_ok=True)
    database = f"ratios_{secrets.token_hex(4)}"
    app_port, plain_port = free_port(), free_port()
    app_url, plain_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{plain_port}"
    database_url = with_database(args.admin_url, database)
    env = {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "APP_URL": app_url,
        "DATABASE_URL": database_url,
        "PROFESSOR_SIGNUP_DOMAINS": EMAIL_DOMAIN,
        "RUN_WORKER_IN_PROCESS": "false",
        "PLAIN_DATABASE_URL": database_url,
    }
    prepare_database(args.admin_url, database, env)
    os.environ[VERIFY_IN_DATABASE] = database_url
    processes: list[subprocess.Popen[bytes]] = []
    try:
        app = start(app_command("run", "--host", "127.0.0.1", "--port", str(app_port)), env, LOGS / "app.log")
        processes.append(app)
        plain_serve = [
            sys.executable,
            "-m",
            "litestar",
            "--app-dir",
            str(ROOT / "bench"),
            "--app",
            "plain_app:app",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(plain_port),
        ]
        plain = start(plain_serve, env, LOGS / "plain.log")
        processes.append(plain)
        wait_until_up(app_url, app)
        for _ in range(100):
            try:
                if httpx.get(f"{plain_url}/hello").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        print(f"app {app_url} (pid {app.pid}), plain page app {plain_url} (pid {plain.pid}); logs in {LOGS}")
        print(f"seeding: a professor with {GRID_SLOTS} slots, {args.browsers} signed-in students, an API token ...")
        endpoints = [
            Endpoint("hello", "bare Litestar returning hello", "plain", "/hello", None),
            Endpoint(
                "plain", "plain page (asyncpg 40 rows + Jinja)", "plain", "/page", None, must_contain="<td>40</td>"
            ),
            *asyncio.run(seed(app_url, args.browsers)),
        ]
        if args.only:
            endpoints = [e for e in endpoints if e.key in args.only or e.key == "plain"]
        (LOGS / "endpoints.json").write_text(
            json.dumps(
                [
                    {
                        "url": (app_url if e.server == "app" else plain_url) + e.path,
                        "headers": dict(e.headers),
                        "cookie": e.cookies[0] if e.cookies else "",
                    }
                    for e in endpoints
                ],
                indent=1,
            )
        )
        for endpoint in endpoints:
            asyncio.run(check(app_url if endpoint.server == "app" else plain_url, endpoint))
        print(
            f"load: {args.client}, {args.connections} connections, {args.seconds:g} s each (+{args.warmup:g} s warm-up)"
        )
        rounds = []
        for number in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f"round {number} of {args.rounds}")
            rounds.append(
                [
                    drive(app_url, e, args, app.pid) if e.server == "app" else drive(plain_url, e, args, plain.pid)
                    for e in endpoints
                ]
            )
        rush = None
        if args.rush_students and (not args.only or "rush" in args.only):
            students = args.rush_students
            rush_args = [
                app_url,
                "--students",
                str(students),
                "--slots",
                str(max(1, students // 10)),
                "--health-seconds",
                str(args.seconds),
                "--pid",
                str(app.pid),
            ]
            rush = asyncio.run(booking_rush.measure(booking_rush.parse_args(rush_args)))
        failed = report(rounds, rush, args)
        if args.hold:
            print("holding the servers; Ctrl-C (or SIGTERM to this process) stops them and drops the database")
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the clean-up short
        return 1 if failed else 0
    finally:
        for process in processes:
            stop(process)
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def _over(value: float, base: float) -> float:
    return value / base if base else 0.0


def report(rounds: list[list[Measured]], rush: booking_rush.RushSummary | None, args: argparse.Namespace) -> bool:
    """The table; with several rounds, each figure is the median of the rounds', each ratio the median of the
    rounds' ratios (an endpoint over the plain page of the same round)."""
    plains = [next(r for r in measured if r.endpoint.key == "plain") for measured in rounds]
    print("\n| endpoint | req/s | p50 / p99 ms | vs plain page | target | server CPU ms/req | CPU vs plain |")
    print("|---|---|---|---|---|---|---|")
    failed = False
    for index, first in enumerate(rounds[0]):
        each = [measured[index] for measured in rounds]
        r = Measured(
            endpoint=first.endpoint,
            rate=median(m.rate for m in each),
            p50_ms=median(m.p50_ms for m in each),
            p99_ms=median(m.p99_ms for m in each),
            bad=sum(m.bad for m in each),
            cpu_ms=median(m.cpu_ms for m in each),
        )
        ratio = median(_over(m.rate, plain.rate) for m, plain in zip(each, plains, strict=True))
        cpu_ratio = median(_over(plain.cpu_ms, m.cpu_ms) for m, plain in zip(each, plains, strict=True))
        shown = "—" if r.endpoint.key == "hello" else f"{ratio:.3f}"
        if len(rounds) > 1 and r.endpoint.key not in ("hello", "plain"):
            ratios = sorted(_over(m.rate, plain.rate) for m, plain in zip(each, plains, strict=True))
            shown += f" ({ratios[0]:.3f}–{ratios[-1]:.3f})"
        mark = verdict(ratio, r.endpoint.target)
        if r.bad:
            mark += f" ({r.bad} bad answers)"
            failed = True
        failed = failed or mark.startswith("FAIL")
        print(
            f"| {r.endpoint.label} | {r.rate:,.1f} | {r.p50_ms:.1f} / {r.p99_ms:.1f} | {shown} | {mark} "
            f"| {r.cpu_ms:.2f} | {cpu_ratio:.3f} |"
        )
    if rush is not None:
        ratio = rush.throughput / rush.health_rate if rush.health_rate else 0.0
        cpu_ratio = rush.health_cpu_ms / rush.cpu_ms if rush.cpu_ms else 0.0
        mark = verdict(ratio, 0.5)
        problems = [f for f in rush.failures if "p99" not in f]
        if problems:
            mark += " (" + "; ".join(problems) + ")"
            failed = True
        failed = failed or mark.startswith("FAIL")
        print(
            f"| booking rush, {args.rush_students} at once (vs its /health {rush.health_rate:,.1f}) | "
            f"{rush.throughput:,.1f} | {rush.p50:.1f} / {rush.p99:.1f} | {ratio:.3f} of /health | {mark} "
            f"| {rush.cpu_ms:.2f} (/health {rush.health_cpu_ms:.2f}) | {cpu_ratio:.3f} of /health |"
        )
    print("\nFAIL" if failed else "\nPASS")
    return failed


if __name__ == "__main__":
    sys.exit(main())
