"""Statistics over a large history: seed 100 000 bookings for one professor, then time GET /api/v1/stats.

Starts nothing itself: run the app against a database (``make run``, or ``app run`` with DATABASE_URL), then::

    .venv/bin/python bench/stats_load.py http://127.0.0.1:8000 postgresql://postgres@127.0.0.1:5432/office_hours

Setup (not timed): ``--professors`` professors (default 50) and 1000 students are registered through the API;
2000 past slots of capacity 50, shared out among the professors and never overlapping, are written with SQL
and filled with 50 bookings each: 100 000 bookings (statuses: 70 % completed, 10 % no-show, 15 % cancelled by
students or the professor, 5 % confirmed), with ratings on the completed ones. Then ``--requests`` stats
requests by the first professor over the whole range are timed one after another.
``--professors 1`` puts all 100 000 bookings on one professor: the worst case.
Target on a 2-core machine: under 50 ms per stats request.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg

PASSWORD = "stats-bench-password"
STUDENTS = 1000
SLOTS = 2000
PER_SLOT = 50
TARGET_MS = 50.0

# Students straight into the tables (registering 1000 through the API costs minutes of argon2 hashing).
STUDENTS_SQL = """
WITH made AS (
    INSERT INTO user_account (id, username, email, password_hash, user_type, first_name, last_name, phone_number,
                              is_active, is_admin, timezone, created_at, updated_at)
    SELECT gen_random_uuid(), %(prefix)s || 's' || lpad(n::text, 4, '0'), %(prefix)s || 's' || n || '@bench.example',
           NULL, 'student', 'Student', n::text, '', true, false, 'Europe/Berlin', now(), now()
    FROM generate_series(0, %(students)s - 1) AS n
    RETURNING id
)
INSERT INTO profile (id, user_id, department, bio, calendar_sync_enabled, auto_confirm, booking_notice_hours,
                     cancellation_notice_hours, max_active_bookings_per_student, ics_feed_token, created_at, updated_at)
SELECT gen_random_uuid(), id, '', '', false, false, 2, 2, 2, md5(random()::text || id::text), now(), now() FROM made
"""

SEED_SQL = """
WITH params AS (SELECT %(first)s::timestamptz AS first_start),
professors AS (
    SELECT id, row_number() OVER (ORDER BY id) - 1 AS p FROM user_account WHERE username LIKE %(professor_prefix)s
),
slots AS (
    INSERT INTO consultation_slot (id, professor_id, start_time, end_time, capacity, location, meeting_url, title,
                                   notes, status, created_at, updated_at)
    SELECT gen_random_uuid(), professors.id, params.first_start + (n * interval '2 hours'),
           params.first_start + (n * interval '2 hours') + interval '30 minutes', %(per_slot)s, 'Room', '', '', '',
           'completed', params.first_start - interval '30 days', now()
    FROM params, generate_series(0, %(slots)s - 1) AS n
    JOIN professors ON professors.p = n %% %(professors)s
    RETURNING id, professor_id, start_time, end_time
),
numbered AS (SELECT id, professor_id, start_time, end_time, row_number() OVER (ORDER BY start_time) AS n FROM slots),
students AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM user_account WHERE username LIKE %(prefix)s),
inserted AS (
    INSERT INTO booking (id, slot_id, student_id, topic, status, start_time, end_time, cancelled_by, cancel_reason,
                         sequence, created_at, updated_at)
    SELECT gen_random_uuid(), numbered.id, students.id, 'bench',
           CASE WHEN r < 0.70 THEN 'completed' WHEN r < 0.80 THEN 'no_show' WHEN r < 0.95 THEN 'cancelled'
                ELSE 'confirmed' END,
           numbered.start_time, numbered.end_time,
           CASE WHEN r >= 0.80 AND r < 0.90 THEN students.id WHEN r >= 0.90 AND r < 0.95 THEN numbered.professor_id END,
           '', 0, numbered.start_time - (random() * interval '10 days') - interval '1 hour', now()
    FROM numbered CROSS JOIN params
    CROSS JOIN LATERAL (
        SELECT * FROM students WHERE (students.k + numbered.n) %% %(students)s < %(per_slot)s
    ) AS students
    -- a pseudo-random number per row (a LATERAL random() would be drawn once for all rows)
    CROSS JOIN LATERAL (SELECT abs(hashtext(numbered.id::text || students.id::text)) %% 1000 / 1000.0 AS r) AS rnd
    RETURNING id, status
)
INSERT INTO consultation_note (id, booking_id, professor_notes, student_feedback, rating, feedback_signed, rated_at,
                               created_at, updated_at)
SELECT gen_random_uuid(), id, '', '', 1 + floor(random() * 5)::int, false, now(), now(), now()
FROM inserted WHERE status = 'completed'
"""


async def register(client: httpx.AsyncClient, username: str, user_type: str) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": username, "email": f"{username}@bench.example", "password": PASSWORD, "user_type": user_type},
    )
    response.raise_for_status()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("database_url", help="the server's database (libpq URL), for the bulk seed")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--professors", type=int, default=50)
    args = parser.parse_args()
    run = secrets.token_hex(3)
    prefix = f"statsbench{run}"
    async with httpx.AsyncClient(base_url=args.url, timeout=60) as client:
        professor_name = f"{prefix}prof0000"
        semaphore = asyncio.Semaphore(20)

        async def professor(i: int) -> None:
            async with semaphore:
                await register(client, f"{prefix}prof{i:04d}", "professor")

        started = time.perf_counter()
        await asyncio.gather(*(professor(i) for i in range(args.professors)))
        token = (
            await client.post("/api/v1/auth/token", json={"username": professor_name, "password": PASSWORD})
        ).json()
        headers = {"Authorization": f"Bearer {token['token']}"}
        professor_id = (await client.get("/api/v1/me", headers=headers)).json()["id"]
        first = datetime.now(UTC) - timedelta(days=400)
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(STUDENTS_SQL, {"prefix": prefix, "students": STUDENTS})
            conn.execute(
                SEED_SQL,
                {
                    "first": first,
                    "slots": SLOTS,
                    "per_slot": PER_SLOT,
                    "students": STUDENTS,
                    "prefix": f"{prefix}s%",
                    "professor_prefix": f"{prefix}prof%",
                    "professors": args.professors,
                },
            )
            conn.execute("ANALYZE booking; ANALYZE consultation_slot; ANALYZE consultation_note")
            (count,) = conn.execute(
                "SELECT count(*) FROM booking b JOIN consultation_slot s ON s.id = b.slot_id WHERE s.professor_id = %s",
                (professor_id,),
            ).fetchone() or (0,)
            (everything,) = conn.execute("SELECT count(*) FROM booking").fetchone() or (0,)
        print(
            f"seeded {everything} bookings in all, {count} of them the measured professor's "
            f"({args.professors} professors), in {time.perf_counter() - started:.1f} s"
        )
        params = {"start": (first - timedelta(days=1)).date().isoformat(), "end": datetime.now(UTC).date().isoformat()}
        await client.get("/api/v1/stats", params=params, headers=headers)  # warm-up
        timings = []
        body = {}
        for _ in range(args.requests):
            began = time.perf_counter()
            response = await client.get("/api/v1/stats", params=params, headers=headers)
            timings.append((time.perf_counter() - began) * 1000)
            response.raise_for_status()
            body = response.json()
    timings.sort()
    p50 = statistics.median(timings)
    p95 = timings[int(0.95 * (len(timings) - 1))]
    print(f"stats requests: {len(timings)}, total_bookings in answer: {body.get('total_bookings')}")
    print(f"latency ms: p50 {p50:.1f}  p95 {p95:.1f}  max {timings[-1]:.1f}")
    verdict = "PASS" if p95 < TARGET_MS else "FAIL"
    print(f"{verdict}: target p95 under {TARGET_MS:.0f} ms")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
