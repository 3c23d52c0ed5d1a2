"""Booking rush: N students try to book M slots of one professor at the same moment.

The script starts nothing itself: run the app first (``make run`` or ``.venv/bin/app run``), then::

    .venv/bin/python bench/booking_rush.py http://127.0.0.1:8000
    .venv/bin/python bench/booking_rush.py http://127.0.0.1:8000 --students 500 --slots 50 --capacity 1
    .venv/bin/python bench/booking_rush.py http://127.0.0.1:8000 --concurrency 100 --health-seconds 10

Steps (only the URL given is ever contacted):

1. Setup, not timed: register one professor and N students with unique random usernames through
   ``POST /api/v1/auth/register``, sign each in through ``POST /api/v1/auth/token``, and let the professor
   publish M non-overlapping 30-minute slots of capacity C, starting three days from now, one an hour.
2. The rush, timed: student i books slot ``i % M`` through ``POST /api/v1/slots/{id}/bookings``. All N
   attempts are launched together and released by one barrier; at most ``--concurrency`` are in flight
   at once (a request's latency is measured from when it may go out, so waiting for a free connection
   on the client side is not counted). Connections are opened cold, as a crowd of browsers would.
3. Check: list the professor's slots and compare every slot's ``booked_count`` to its ``capacity``.
4. Ceiling: hammer ``GET /health`` with the same concurrency for ``--health-seconds`` (or until
   ``--health-max-requests`` have been sent) and report its requests per second.

The rush and the /health hammer spread their connections over ``--clients`` httpx.AsyncClient objects
(default: one per connection, like one browser per student). One AsyncClient holding hundreds of
connections spends several milliseconds of CPU per request in its own pool bookkeeping, which caps it
near 100 req/s and makes the benchmark measure itself; ``--clients 1`` shows that.

The last line is PASS or FAIL against the target: exactly min(N, M*C) bookings, no error other than
409, no overbooked slot and a p99 latency under 250 ms. The exit status is 0 on PASS and 1 on FAIL
(2 when the setup fails).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import ssl
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import httpx

from common import VERIFY_IN_DATABASE, Account, SetupError, cpu_seconds, describe, percentile, register, seed_students

PASSWORD = "rush-password-123"
SETUP_CONCURRENCY = 20
TIMEOUT_SECONDS = 60.0
P99_TARGET_MS = 250.0
SLOT_MINUTES = 30
FIRST_SLOT_AFTER = timedelta(days=3)
PAGE_SIZE = 500

T = TypeVar("T")


@dataclass
class Outcome:
    """One booking attempt: its HTTP status, or the client-side exception's name, and its timing."""

    status: int | None
    error: str | None
    started: float
    ended: float

    @property
    def key(self) -> str:
        return str(self.status) if self.status is not None else str(self.error)

    @property
    def milliseconds(self) -> float:
        return (self.ended - self.started) * 1000


@dataclass
class HealthResult:
    requests: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="N students book M slots of one professor at the same moment.")
    parser.add_argument("base_url", help="the running server, e.g. http://127.0.0.1:8000")
    parser.add_argument(
        "--students", type=positive_int, default=500, help="N: students, one booking attempt each (default: 500)"
    )
    parser.add_argument("--slots", type=positive_int, default=50, help="M: slots the professor publishes (default: 50)")
    parser.add_argument("--capacity", type=positive_int, default=1, help="C: places per slot (default: 1)")
    parser.add_argument(
        "--concurrency", type=positive_int, default=None, help="most simultaneous connections (default: N)"
    )
    parser.add_argument(
        "--clients",
        type=positive_int,
        default=None,
        help="httpx.AsyncClient objects the connections are spread over (default: one per connection)",
    )
    parser.add_argument("--health-seconds", type=float, default=5.0, help="how long to hammer GET /health (default: 5)")
    parser.add_argument(
        "--health-max-requests",
        type=positive_int,
        default=100_000,
        help="stop hammering /health after this many (default: 100000)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="open loop: students arrive at this many per second (with --seconds; N becomes rate x seconds)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="open loop: how long they arrive (default: 10)")
    parser.add_argument(
        "--p99-target", type=float, default=None, help="ms (default: 250 for the rush, 100 for the open loop)"
    )
    parser.add_argument(
        "--pid", type=int, default=None, help="the server's process id (on this machine): report its CPU per request"
    )
    args = parser.parse_args(argv)
    if args.rate:
        args.students = max(1, round(args.rate * args.seconds))
    if args.p99_target is None:
        args.p99_target = 100.0 if args.rate else P99_TARGET_MS
    if args.concurrency is None:
        # The open loop's arrivals each have their own connection; this only sizes the /health hammering.
        args.concurrency = 20 if args.rate else args.students
    args.clients = min(args.clients or args.concurrency, args.concurrency)
    args.base_url = args.base_url.rstrip("/")
    return args


# One TLS context for every client: each client making its own (loading the CA bundle) took 10 s of CPU for 500.
TLS = ssl.create_default_context()


def make_client(base_url: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=httpx.Timeout(TIMEOUT_SECONDS), verify=TLS)


async def bounded(limit: int, jobs: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the jobs with at most `limit` at a time, results in order."""
    gate = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return await asyncio.gather(*(run(job) for job in jobs))


# --- setup (not timed) -------------------------------------------------------------------------------------------


async def create_slot(client: httpx.AsyncClient, professor: Account, start: datetime, capacity: int) -> str:
    response = await client.post(
        "/api/v1/slots",
        headers=professor.headers,
        json={
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(minutes=SLOT_MINUTES)).isoformat(),
            "capacity": capacity,
            "title": "Booking rush",
        },
    )
    if response.status_code != 201:
        raise SetupError(describe(response))
    return str(response.json()["id"])


async def setup(
    client: httpx.AsyncClient, students: int, slots: int, capacity: int
) -> tuple[Account, list[Account], list[str]]:
    run_id = secrets.token_hex(4)
    professor = await register(client, f"rush{run_id}-prof", "professor", PASSWORD)
    database_url = os.environ.get(VERIFY_IN_DATABASE)
    if database_url and students > SETUP_CONCURRENCY:
        # One student registered through the API, the others copied from it in the database (no password hashing).
        template = await register(client, f"rush{run_id}-s0", "student", PASSWORD)
        accounts = [template, *seed_students(database_url, template, f"rush{run_id}-x", students - 1)]
    else:
        accounts = await bounded(
            SETUP_CONCURRENCY,
            [partial(register, client, f"rush{run_id}-s{i}", "student", PASSWORD) for i in range(students)],
        )
    first = (datetime.now(UTC) + FIRST_SLOT_AFTER).replace(minute=0, second=0, microsecond=0)
    slot_ids = await bounded(
        SETUP_CONCURRENCY,
        [partial(create_slot, client, professor, first + timedelta(hours=i), capacity) for i in range(slots)],
    )
    return professor, accounts, slot_ids


# --- the rush (timed) --------------------------------------------------------------------------------------------


async def rush(
    clients: list[httpx.AsyncClient], students: list[Account], slot_ids: list[str], concurrency: int
) -> list[Outcome]:
    barrier = asyncio.Barrier(len(students))
    gate = asyncio.Semaphore(concurrency)

    async def attempt(client: httpx.AsyncClient, student: Account, slot_id: str) -> Outcome:
        await barrier.wait()
        async with gate:
            status: int | None = None
            error: str | None = None
            started = time.perf_counter()
            try:
                response = await client.post(
                    f"/api/v1/slots/{slot_id}/bookings", headers=student.headers, json={"topic": "rush"}
                )
                status = response.status_code
            except (httpx.HTTPError, OSError) as exc:
                error = type(exc).__name__
            ended = time.perf_counter()
        return Outcome(status=status, error=error, started=started, ended=ended)

    return await asyncio.gather(
        *(
            attempt(clients[i % len(clients)], student, slot_ids[i % len(slot_ids)])
            for i, student in enumerate(students)
        )
    )


async def arrivals(base_url: str, students: list[Account], slot_ids: list[str], rate: float) -> list[Outcome]:
    """Open loop: student i arrives at i / rate seconds, on a connection of their own, whatever the server's pace.

    Each latency runs from the planned arrival (not from when the request could go out), so a server falling behind
    shows in the figures instead of slowing the arrivals down."""
    clients = [make_client(base_url, 1) for _ in students]
    began = time.perf_counter() + 0.5  # the first arrival, once every task is in place

    async def attempt(i: int, client: httpx.AsyncClient, student: Account) -> Outcome:
        planned = began + i / rate
        await asyncio.sleep(max(0.0, planned - time.perf_counter()))
        status: int | None = None
        error: str | None = None
        try:
            response = await client.post(
                f"/api/v1/slots/{slot_ids[i % len(slot_ids)]}/bookings", headers=student.headers, json={"topic": "rush"}
            )
            status = response.status_code
        except (httpx.HTTPError, OSError) as exc:
            error = type(exc).__name__
        return Outcome(status=status, error=error, started=planned, ended=time.perf_counter())

    try:
        return await asyncio.gather(*(attempt(i, clients[i], student) for i, student in enumerate(students)))
    finally:
        for client in clients:
            await client.aclose()


# --- checks ------------------------------------------------------------------------------------------------------


async def professor_slots(client: httpx.AsyncClient, professor: Account) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        response = await client.get(
            "/api/v1/slots",
            headers=professor.headers,
            params={"professor_id": professor.user_id, "limit": PAGE_SIZE, "offset": len(items)},
        )
        if response.status_code != 200:
            raise SetupError(describe(response))
        page = response.json()
        items.extend(page["items"])
        if not page["items"] or len(items) >= int(page["total"]):
            return items


async def hammer_health(
    clients: list[httpx.AsyncClient], concurrency: int, seconds: float, max_requests: int
) -> HealthResult:
    """`concurrency` loops of GET /health until the time is up or `max_requests` have been sent."""
    result = HealthResult()
    sent = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent
        while sent < max_requests and time.perf_counter() < deadline:
            sent += 1
            try:
                response = await client.get("/health")
                result.outcomes[str(response.status_code)] += 1
            except (httpx.HTTPError, OSError) as exc:
                result.outcomes[type(exc).__name__] += 1
            result.requests += 1

    await asyncio.gather(*(worker(clients[i % len(clients)]) for i in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


# --- report ------------------------------------------------------------------------------------------------------


def line(label: str, value: object) -> None:
    print(f"{label:<24} {value}", flush=True)


def counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key}: {count}" for key, count in sorted(counter.items()))


@dataclass
class RushSummary:
    """What a run measured, for a caller comparing runs (scale_out.py)."""

    failures: list[str]
    p50: float
    p99: float
    throughput: float
    p95: float = 0.0
    health_rate: float = 0.0
    cpu_ms: float = 0.0  # the server's CPU per booking attempt (with --pid)
    health_cpu_ms: float = 0.0  # and per /health request


def report_rush(outcomes: list[Outcome], expected: int, p99_target: float = P99_TARGET_MS) -> RushSummary:
    """Print the rush's figures; return them with the target's failures so far."""
    failures: list[str] = []
    statuses = Counter(outcome.key for outcome in outcomes)
    created = statuses.get("201", 0)
    others = Counter({key: count for key, count in statuses.items() if key not in ("201", "409")})
    latencies = sorted(outcome.milliseconds for outcome in outcomes)
    p50, p95, p99 = (percentile(latencies, fraction) for fraction in (0.50, 0.95, 0.99))
    wall = max(outcome.ended for outcome in outcomes) - min(outcome.started for outcome in outcomes)
    line("requests", len(outcomes))
    line("201 created", f"{created} (expected {expected})")
    line("409 conflict", statuses.get("409", 0))
    line("other errors", f"{others.total()}" + (f" ({counts(others)})" if others else ""))
    line("latency p50/p95/p99", f"{p50:.1f} / {p95:.1f} / {p99:.1f} ms (max {latencies[-1]:.1f} ms)")
    line("rush wall time", f"{wall * 1000:.1f} ms")
    throughput = len(outcomes) / wall if wall > 0 else 0.0
    line("rush throughput", f"{throughput:.1f} req/s")
    if created != expected:
        failures.append(f"{created} created, expected {expected}")
    if others:
        failures.append(f"{others.total()} errors other than 409")
    if p99 >= p99_target:
        failures.append(f"p99 {p99:.1f} ms >= {p99_target:.0f} ms")
    return RushSummary(failures=failures, p50=p50, p95=p95, p99=p99, throughput=throughput)


async def check_slots(
    client: httpx.AsyncClient, professor: Account, slot_ids: list[str], places: int, expected: int
) -> list[str]:
    """Print the overbooking check; return its failures."""
    try:
        listed = await professor_slots(client, professor)
    except (SetupError, httpx.HTTPError) as exc:
        line("overbooked slots", f"unknown: listing the slots failed ({type(exc).__name__}: {exc})")
        return ["could not list the slots"]
    wanted = set(slot_ids)
    ours = [slot for slot in listed if slot["id"] in wanted]
    overbooked = [slot for slot in ours if int(slot["booked_count"]) > int(slot["capacity"])]
    booked = sum(int(slot["booked_count"]) for slot in ours)
    line("overbooked slots", f"{len(overbooked)} of {len(ours)} listed")
    line("booked places", f"{booked} of {places} (expected {expected})")
    failures = []
    if overbooked:
        failures.append(f"{len(overbooked)} overbooked slots")
    if len(ours) != len(slot_ids):
        failures.append(f"{len(slot_ids) - len(ours)} slots missing from the list")
    if booked != expected:
        failures.append(f"{booked} places booked, expected {expected}")
    return failures


async def measure(args: argparse.Namespace) -> RushSummary | None:
    """Set up, rush, check and hammer /health, printing as it goes; None when the setup failed."""
    expected = min(args.students, args.slots * args.capacity)
    per_client = math.ceil(args.concurrency / args.clients)
    print(
        f"booking rush against {args.base_url}: {args.students} students, {args.slots} slots "
        f"of capacity {args.capacity}, concurrency {args.concurrency} over {args.clients} client(s)",
        flush=True,
    )
    async with AsyncExitStack() as stack:
        setup_client = await stack.enter_async_context(make_client(args.base_url, SETUP_CONCURRENCY))
        started = time.perf_counter()
        try:
            professor, students, slot_ids = await setup(setup_client, args.students, args.slots, args.capacity)
        except (SetupError, httpx.HTTPError) as exc:
            print(f"setup failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return None
        line("setup (not timed)", f"{time.perf_counter() - started:.1f} s")
        clients = [await stack.enter_async_context(make_client(args.base_url, per_client)) for _ in range(args.clients)]

        cpu_before = cpu_seconds(args.pid)
        if args.rate:
            outcomes = await arrivals(args.base_url, students, slot_ids, args.rate)
            line("arrivals", f"{args.rate:g}/s for {args.seconds:g} s (open loop)")
        else:
            outcomes = await rush(clients, students, slot_ids, args.concurrency)
        summary = report_rush(outcomes, expected, args.p99_target)
        summary.cpu_ms = (cpu_seconds(args.pid) - cpu_before) * 1000 / len(outcomes)
        summary.failures += await check_slots(setup_client, professor, slot_ids, args.slots * args.capacity, expected)

        cpu_before = cpu_seconds(args.pid)
        health = await hammer_health(clients, args.concurrency, args.health_seconds, args.health_max_requests)
        summary.health_rate = health.requests / health.seconds if health.seconds > 0 else 0.0
        summary.health_cpu_ms = (cpu_seconds(args.pid) - cpu_before) * 1000 / max(health.requests, 1)
        line(
            "GET /health ceiling",
            f"{summary.health_rate:.1f} req/s ({health.requests} requests in {health.seconds:.1f} s; "
            f"{counts(health.outcomes)})",
        )
        if args.pid is not None:
            line("server CPU per request", f"{summary.cpu_ms:.2f} ms booking, {summary.health_cpu_ms:.2f} ms /health")
    return summary


async def main(args: argparse.Namespace) -> int:
    summary = await measure(args)
    if summary is None:
        return 2
    if summary.failures:
        print("FAIL: " + "; ".join(summary.failures), flush=True)
        return 1
    expected = min(args.students, args.slots * args.capacity)
    print(
        f"PASS: {expected} bookings, only 409s refused, none overbooked, "
        f"p99 {summary.p99:.1f} ms < {args.p99_target:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
