"""Grid page load: many signed-in students reload one professor's week grid, as fast as it answers.

Starts nothing itself: run the app first (``make run`` or ``.venv/bin/app run``), then::

    .venv/bin/python bench/grid_load.py http://127.0.0.1:8000
    .venv/bin/python bench/grid_load.py http://127.0.0.1:8000 --browsers 50 --seconds 20 --htmx

Setup (not timed): a professor publishes ``--slots`` slots of capacity 2 (default 15, at most 80: 30 minutes
each, spread over Monday to Friday of next week) and ``--browsers`` students (default 20) register through the
API and sign in on the web, one browser each. Every student books one slot, so the grid shows free, partly
booked, full and own cells.

Load: every browser requests ``GET /professors/{id}?week=<next Monday>`` in a loop, one request after the
other, like a student pressing reload. The first ``--warmup`` seconds (default 3: template compilation, pools)
are not counted; then ``--seconds`` seconds (default 10) are. ``--htmx`` sends ``HX-Request: true``, as the
week navigation does, and gets the grid fragment instead of the whole page.

Prints requests per second, latency p50/p95/p99 and status counts. Every answer must be a 200 holding the
week's last slot cell; the exit status is 1 when one is not (2 when the setup fails).

Memory (issue 17), with ``--pid <server pid>`` (a server on this machine): the server's resident memory before and
after the load. ``--soak S`` then goes on for S more seconds with the grid loads and one more student booking and
cancelling a place in a loop, sampling the server's RSS every ``--sample-every`` seconds, and prints the start and
end RSS (a process that keeps growing under a steady load leaks)::

    .venv/bin/python bench/grid_load.py http://127.0.0.1:8000 --pid 12345 --soak 180
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import httpx

from common import percentile, register, web_session

PASSWORD = "grid-password-123"
CAPACITY = 2
MOST_SLOTS = 80  # five days, 07:00 to 23:00 UTC
# What the last setup made, for the soak's booker: the slots and the professor's id.
LAST_SETUP: dict[str, list[str]] = {}


@dataclass
class GridSummary:
    """The measured window's figures."""

    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def failures(self) -> int:
        return self.requests - self.outcomes["200"]


def next_monday(today: date) -> date:
    return today + timedelta(days=7 - today.weekday())


async def setup(base_url: str, slots: int, browsers: int) -> tuple[str, date, str, list[httpx.AsyncClient]]:
    """The professor's id, the week to show, the last slot cell's id attribute, and the signed-in browsers."""
    run = secrets.token_hex(3)
    monday = next_monday(datetime.now(UTC).date())
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as api:
        professor = (await register(api, f"grid{run}prof", "professor", PASSWORD)).headers
        slot_ids: list[str] = []
        for i in range(slots):
            begins = datetime.combine(monday + timedelta(days=i % 5), clock(7 + i // 5), UTC)
            response = await api.post(
                "/api/v1/slots",
                headers=professor,
                json={
                    "start_time": begins.isoformat(),
                    "end_time": (begins + timedelta(minutes=30)).isoformat(),
                    "capacity": CAPACITY,
                    "title": "Grid load",
                },
            )
            response.raise_for_status()
            slot_ids.append(str(response.json()["id"]))
        professor_id = str(response.json()["professor_id"])
        browser_clients = []
        for i in range(browsers):
            student = (await register(api, f"grid{run}s{i}", "student", PASSWORD)).headers
            booked = await api.post(f"/api/v1/slots/{slot_ids[i % slots]}/bookings", headers=student)
            if booked.status_code not in (201, 409):  # 409: the slot filled up, which the grid shows too
                booked.raise_for_status()
            browser_clients.append(await web_session(base_url, f"grid{run}s{i}", PASSWORD))
    LAST_SETUP["slot_ids"] = slot_ids
    first = await browser_clients[0].get(f"/professors/{professor_id}", params={"week": monday.isoformat()})
    missing = [slot_id for slot_id in slot_ids if f'id="slot-{slot_id}"' not in first.text]
    if first.status_code != 200 or missing:
        raise RuntimeError(f"the grid page answered {first.status_code} without {len(missing)} of the slots")
    return professor_id, monday, f'id="slot-{slot_ids[-1]}"', browser_clients


async def load(
    browsers: list[httpx.AsyncClient], path: str, params: dict[str, str], headers: dict[str, str], marker: str,
    warmup: float, seconds: float,
) -> GridSummary:  # fmt: skip
    summary = GridSummary()
    measured_from = time.perf_counter() + warmup
    deadline = measured_from + seconds
    last_end = measured_from

    async def browser(client: httpx.AsyncClient) -> None:
        nonlocal last_end
        while (started := time.perf_counter()) < deadline:
            try:
                response = await client.get(path, params=params, headers=headers)
                outcome = str(response.status_code) if marker in response.text else f"{response.status_code} no grid"
            except (httpx.HTTPError, OSError) as exc:
                outcome = type(exc).__name__
            ended = time.perf_counter()
            if started >= measured_from:
                summary.requests += 1
                summary.latencies.append((ended - started) * 1000)
                summary.outcomes[outcome] += 1
                last_end = max(last_end, ended)

    await asyncio.gather(*(browser(client) for client in browsers))
    summary.seconds = last_end - measured_from
    summary.latencies.sort()
    return summary


def rss_mib(pid: int | None) -> float:
    """Resident memory of a process on this machine, MiB (Linux /proc); 0 without a pid."""
    if not pid:
        return 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def book_and_cancel(base_url: str, slot_id: str, deadline: float) -> Counter[str]:
    """One student booking a place and cancelling it again, over and over, until `deadline`."""
    answers: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as api:
        student = (await register(api, f"soak{secrets.token_hex(3)}", "student", PASSWORD)).headers
        while time.perf_counter() < deadline:
            booked = await api.post(f"/api/v1/slots/{slot_id}/bookings", headers=student, json={"topic": "soak"})
            answers[f"book {booked.status_code}"] += 1
            if booked.status_code == 201:
                cancelled = await api.post(
                    f"/api/v1/bookings/{booked.json()['id']}/cancel", headers=student, json={"reason": "soak"}
                )
                answers[f"cancel {cancelled.status_code}"] += 1
    return answers


async def soak(
    base_url: str, clients: list[httpx.AsyncClient], request: tuple[str, dict[str, str], dict[str, str], str],
    seconds: float, pid: int | None, every: float,
) -> None:  # fmt: skip
    """Grid loads and bookings for `seconds`, the server's RSS sampled every `every` seconds."""
    deadline = time.perf_counter() + seconds
    samples = [rss_mib(pid)]
    print(f"soak: {seconds:.0f} s of grid loads and bookings; RSS {samples[0]:.1f} MiB at the start", flush=True)

    async def sample() -> None:
        while time.perf_counter() < deadline:
            await asyncio.sleep(min(every, max(0.0, deadline - time.perf_counter())))
            samples.append(rss_mib(pid))
            print(f"  RSS {samples[-1]:.1f} MiB", flush=True)

    path, params, headers, marker = request
    loads, answers, _ = await asyncio.gather(
        load(clients, path, params, headers, marker, 0.0, seconds),
        book_and_cancel(base_url, LAST_SETUP["slot_ids"][-1], deadline),
        sample(),
    )
    print(
        f"soak grid loads          {loads.requests} "
        f"({', '.join(f'{k}: {n}' for k, n in sorted(loads.outcomes.items()))})"
    )
    print(f"soak bookings            {', '.join(f'{k}: {n}' for k, n in sorted(answers.items()))}")
    if pid:
        print(
            f"soak RSS                 start {samples[0]:.1f} MiB, end {samples[-1]:.1f} MiB, "
            f"most {max(samples):.1f} MiB "
            f"({samples[-1] - samples[0]:+.1f} MiB over {seconds:.0f} s)"
        )


async def measure(
    base_url: str, slots: int, browsers: int, warmup: float, seconds: float, htmx: bool,
    pid: int | None = None, soak_seconds: float = 0.0, sample_every: float = 15.0,
) -> GridSummary:  # fmt: skip
    """Set up, load and print the figures."""
    started = time.perf_counter()
    before = rss_mib(pid)
    professor_id, monday, marker, clients = await setup(base_url, slots, browsers)
    print(f"setup (not timed)        {time.perf_counter() - started:.1f} s", flush=True)
    request = (
        f"/professors/{professor_id}",
        {"week": monday.isoformat()},
        {"HX-Request": "true"} if htmx else {},
        marker,
    )
    try:
        summary = await load(clients, *request, warmup, seconds)
        if pid:
            print(f"server RSS               {before:.1f} MiB before, {rss_mib(pid):.1f} MiB after the grid load")
        if soak_seconds:
            await soak(base_url, clients, request, soak_seconds, pid, sample_every)
    finally:
        for client in clients:
            await client.aclose()
    p50, p95, p99 = (percentile(summary.latencies, fraction) for fraction in (0.50, 0.95, 0.99))
    print(f"grid {'fragment' if htmx else 'page'} requests   {summary.requests} in {summary.seconds:.1f} s")
    print(f"throughput               {summary.rate:.1f} req/s")
    print(f"latency p50/p95/p99      {p50:.1f} / {p95:.1f} / {p99:.1f} ms")
    print(f"answers                  {', '.join(f'{key}: {n}' for key, n in sorted(summary.outcomes.items()))}")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="the running server, e.g. http://127.0.0.1:8000")
    parser.add_argument(
        "--slots", type=int, choices=range(1, MOST_SLOTS + 1), default=15, metavar="1-80", help="(default: 15)"
    )
    parser.add_argument("--browsers", type=int, default=20, help="signed-in students reloading (default: 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds not counted first (default: 3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds measured (default: 10)")
    parser.add_argument("--htmx", action="store_true", help="ask for the grid fragment, as week navigation does")
    parser.add_argument("--pid", type=int, default=None, help="the server's process id: report its memory")
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of grid loads and bookings after (default: 0)")
    parser.add_argument("--sample-every", type=float, default=15.0, help="soak: RSS sampling interval (default: 15)")
    args = parser.parse_args()
    try:
        summary = asyncio.run(
            measure(
                args.url.rstrip("/"),
                args.slots,
                args.browsers,
                args.warmup,
                args.seconds,
                args.htmx,
                args.pid,
                args.soak,
                args.sample_every,
            )
        )
    except (httpx.HTTPError, RuntimeError) as exc:
        print(f"setup failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if summary.failures or not summary.requests:
        print(f"FAIL: {summary.failures} of {summary.requests} answers were not the grid")
        return 1
    print(f"OK: {summary.requests} grids served")
    return 0


if __name__ == "__main__":
    sys.exit(main())
