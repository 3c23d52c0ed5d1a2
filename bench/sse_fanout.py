"""SSE fan-out: open many live grids of one professor, make one booking, time its arrival in every grid.

Starts nothing itself: run the app first (``make run`` or ``.venv/bin/app run``), then::

    .venv/bin/python bench/sse_fanout.py http://127.0.0.1:8000 --streams 200

Setup (not timed): a professor with one slot and ``--viewers`` students (default 20) are registered through the
API; each viewer signs in on the web and opens ``--streams / --viewers`` streams of ``/professors/{id}/events``
(like several tabs). Once every stream has said it is subscribed, one more student books a warm-up slot (the
first event after start-up compiles templates and fills pools) and then the measured slot, through the API.
For each stream the time from sending the measured booking request to receiving that slot's event is recorded.
Target on a 2-core machine: p95 under 100 ms for 200 streams; for 1,000 streams (issue 17) p95 under 250 ms::

    .venv/bin/python bench/sse_fanout.py http://127.0.0.1:8000 --streams 1000 --target-ms 250 --pid <server pid>

With ``--pid`` (the server process, on this machine) the server's resident memory is read before the streams open
and once all are subscribed: the difference over the number of streams is the memory one open stream costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from common import cpu_seconds, register, web_session

PASSWORD = "fanout-password-123"
TARGET_P95_MS = 100.0


async def watch(
    client: httpx.AsyncClient,
    path: str,
    event_names: tuple[str, str],
    subscribed: asyncio.Event,
    ready: list[int],
    total: int,
    booked_at: list[float],
    arrived: asyncio.Event,
) -> float:
    """Wait for the warm-up event, then time the measured one. The stream stays open until every stream has had
    it, as a browser's would: streams closing while others still wait would make the server tear them down in the
    middle of the fan-out it is measured on."""
    # Raw chunks, not line parsing: the client should cost as little as a browser's EventSource.
    warm_up, measured = (f"event: {name}".encode() for name in event_names)
    async with client.stream("GET", path) as response:
        chunks = response.aiter_raw()
        seen = b""
        async for chunk in chunks:
            seen += chunk
            if b"\n:" in seen or seen.startswith(b":"):
                break
        ready.append(1)
        if len(ready) == total:
            subscribed.set()
        tail, needle = b"", warm_up
        async for chunk in chunks:
            if needle in tail + chunk:
                if needle == measured:
                    took = (time.perf_counter() - booked_at[0]) * 1000
                    ready.append(1)
                    if len(ready) == 3 * total:
                        arrived.set()
                    await arrived.wait()
                    return took
                needle, ready[:] = measured, [*ready, 1]
                if len(ready) == 2 * total:
                    subscribed.set()
            tail = chunk[-len(needle) :]
    raise RuntimeError("stream ended")


def rss_kib(pid: int) -> int:
    """Resident memory of a process, KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def start_profiler(pid: int, output: str) -> asyncio.subprocess.Process:
    """py-spy (from PyPI, beside this interpreter) recording the server for two seconds; half a second to attach."""
    py_spy = Path(sys.executable).with_name("py-spy")
    command = [str(py_spy), "record", "-p", str(pid), "-d", "2", "-r", "500", "--gil", "--format", "raw", "-o", output]
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL)
    await asyncio.sleep(0.5)
    return process


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for every stream")
    parser.add_argument("--target-ms", type=float, default=TARGET_P95_MS, help="p95 target (default: 100)")
    parser.add_argument("--pid", type=int, default=None, help="the server's process id, to report memory per stream")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="with --pid: py-spy records the server (raw format, to FILE) from just before the measured booking for "
        "two seconds, so the profile holds the event's fan-out and not the streams' opening",
    )
    args = parser.parse_args()
    if args.profile and not args.pid:
        parser.error("--profile needs --pid")
    rss = {"before": rss_kib(args.pid)} if args.pid else {}
    run = secrets.token_hex(3)
    async with httpx.AsyncClient(base_url=args.url, timeout=60) as api:
        professor = (await register(api, f"fan{run}prof", "professor", PASSWORD)).headers
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
        slot_ids = []
        for offset in (0, 60):  # a warm-up slot, then the measured one
            begins = start + timedelta(minutes=offset)
            slot = await api.post(
                "/api/v1/slots",
                json={"start_time": begins.isoformat(), "end_time": (begins + timedelta(minutes=30)).isoformat()},
                headers=professor,
            )
            slot.raise_for_status()
            slot_ids.append(slot.json()["id"])
        professor_id = slot.json()["professor_id"]
        for i in range(args.viewers):
            await register(api, f"fan{run}v{i}", "student", PASSWORD)
        booker = (await register(api, f"fan{run}booker", "student", PASSWORD)).headers
        viewers = [await web_session(args.url, f"fan{run}v{i}", PASSWORD) for i in range(args.viewers)]
        subscribed, arrived, booked_at = asyncio.Event(), asyncio.Event(), [0.0]
        ready: list[int] = []
        path = f"/professors/{professor_id}/events"
        names = (f"slot-{slot_ids[0]}", f"slot-{slot_ids[1]}")
        tasks = [
            asyncio.create_task(
                watch(viewers[i % args.viewers], path, names, subscribed, ready, args.streams, booked_at, arrived)
            )
            for i in range(args.streams)
        ]
        try:
            await asyncio.wait_for(subscribed.wait(), args.timeout)
            if args.pid:
                rss["open"] = rss_kib(args.pid)
            subscribed.clear()
            # Warm-up: the first event after start-up compiles templates and fills pools; then the real one.
            (await api.post(f"/api/v1/slots/{slot_ids[0]}/bookings", headers=booker)).raise_for_status()
            await asyncio.wait_for(subscribed.wait(), args.timeout)
            await asyncio.sleep(0.2)
            profiler = await start_profiler(args.pid, args.profile) if args.profile else None
            booked_at[0] = time.perf_counter()
            cpu_before = time.process_time(), cpu_seconds(args.pid)
            booking = await api.post(f"/api/v1/slots/{slot_ids[1]}/bookings", headers=booker)
            booking.raise_for_status()
            api_ms = (time.perf_counter() - booked_at[0]) * 1000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), args.timeout)
            arrived.set()  # also when a stream never had the event: the others return their times, it stays missing
            fan_out_ms = (time.perf_counter() - booked_at[0]) * 1000
            client_cpu_ms = (time.process_time() - cpu_before[0]) * 1000
            server_cpu_ms = (cpu_seconds(args.pid) - cpu_before[1]) * 1000
            done, _ = await asyncio.wait(tasks, timeout=args.timeout)
            if profiler is not None:
                await profiler.wait()
        finally:
            for task in tasks:
                task.cancel()
            for viewer in viewers:
                await viewer.aclose()
    arrivals = sorted(task.result() for task in done if not task.cancelled() and task.exception() is None)
    missing = args.streams - len(arrivals)
    print(f"streams: {args.streams} over {args.viewers} signed-in viewers; booking request took {api_ms:.1f} ms")
    if not arrivals:
        print("FAIL: no stream received the event")
        return 1
    p50 = statistics.median(arrivals)
    p95 = arrivals[int(0.95 * (len(arrivals) - 1))]
    print(f"received: {len(arrivals)}, missing: {missing}")
    print(f"arrival after the booking request, ms: p50 {p50:.1f}  p95 {p95:.1f}  max {arrivals[-1]:.1f}")
    # One client process reads every stream: when its CPU is near the time the fan-out took, the figures above are
    # the client's pace, not the server's.
    server = f", the server {server_cpu_ms:.0f} ms" if args.pid else ""
    print(
        f"CPU from the booking request to the last arrival ({fan_out_ms:.0f} ms): "
        f"this client {client_cpu_ms:.0f} ms{server}"
    )
    if rss:
        per_stream = (rss["open"] - rss["before"]) / args.streams
        print(
            f"server RSS: {rss['before'] / 1024:.1f} MiB before, {rss['open'] / 1024:.1f} MiB with every stream open: "
            f"{per_stream:.1f} KiB per open stream"
        )
    verdict = "PASS" if missing == 0 and p95 < args.target_ms else "FAIL"
    print(f"{verdict}: every stream served, p95 under {args.target_ms:.0f} ms")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
