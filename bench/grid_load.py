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

import httpx

from common import percentile, register, web_session

PASSWORD = "grid-password-123"
CAPACITY = 2
MOST_SLOTS = 80  # five days, 07:00 to 23:00 UTC


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


async def measure(base_url: str, slots: int, browsers: int, warmup: float, seconds: float, htmx: bool) -> GridSummary:
    """Set up, load and print the figures."""
    started = time.perf_counter()
    professor_id, monday, marker, clients = await setup(base_url, slots, browsers)
    print(f"setup (not timed)        {time.perf_counter() - started:.1f} s", flush=True)
    try:
        summary = await load(
            clients,
            f"/professors/{professor_id}",
            {"week": monday.isoformat()},
            {"HX-Request": "true"} if htmx else {},
            marker,
            warmup,
            seconds,
        )
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
    args = parser.parse_args()
    try:
        summary = asyncio.run(
            measure(args.url.rstrip("/"), args.slots, args.browsers, args.warmup, args.seconds, args.htmx)
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
