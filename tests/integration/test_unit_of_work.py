"""One unit of work per request, job and command: what was registered to follow a commit runs after it, and only then.

The outbox test runs no worker and no sweep: each delivery job must have been queued by the commit itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from app.lib.unit_of_work import after_commit, savepoint, unit_of_work
from app.worker import send_due_reminders
from tests.helpers import api_token, book, csrf_headers, in_hours, make_admin, make_slot, make_user, web_login

HTMX = {"HX-Request": "true"}


def outbox(database_url: str) -> list[tuple[Any, str, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT id, kind, status FROM notification ORDER BY created_at").fetchall()


def queued_job_keys(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        return {row[0] for row in conn.execute("SELECT key FROM saq_jobs WHERE status = 'queued'")}


def rows_without_a_delivery_job(database_url: str) -> list[tuple[Any, str]]:
    jobs = queued_job_keys(database_url)
    return [(row_id, kind) for row_id, kind, status in outbox(database_url) if f"deliver:{row_id}:0" not in jobs]


async def test_every_change_that_writes_an_outbox_row_queues_its_delivery_at_commit(
    client: Any, other_client: Any, database_url: str
) -> None:
    professor = await make_user("professor", waitlist_hold_minutes=60)
    admin = await make_admin()
    first, second, third = await make_user(), await make_user(), await make_user()
    slot = await make_slot(professor, in_hours(72))
    as_professor = await api_token(client, professor.username)
    as_first, as_second = await api_token(client, first.username), await api_token(client, second.username)

    booked = await client.post(f"/api/v1/slots/{slot.id}/bookings", headers=as_first)  # booking_requested
    await client.post(f"/api/v1/bookings/{booked.json()['id']}/confirm", headers=as_professor)  # booking_confirmed
    await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=as_second)
    await client.post(f"/api/v1/bookings/{booked.json()['id']}/cancel", headers=as_first)  # cancelled + offer
    (offer,) = (await client.get("/api/v1/waitlist", headers=as_second)).json()["items"]
    accepted = await client.post(f"/api/v1/waitlist/{offer['id']}/accept", headers=as_second)  # requested
    await web_login(other_client, professor.username)
    declined = await other_client.post(  # booking_declined, from the dashboard
        f"/dashboard/bookings/{accepted.json()['id']}/cancel",
        data={"reason": "Please come to the lecture instead."},
        headers={**HTMX, **csrf_headers(other_client)},
    )

    later = await make_slot(professor, in_hours(96))
    await web_login(client, third.username)  # booking_requested, from the grid's dialog
    web_booked = await client.post(f"/slots/{later.id}/book", data={"topic": "Exam"}, headers=csrf_headers(client))
    with psycopg.connect(database_url) as conn:
        (third_booking,) = conn.execute("SELECT id FROM booking WHERE student_id = %s", (third.id,)).fetchone()
    await other_client.post(  # booking_confirmed, from the dashboard
        f"/dashboard/bookings/{third_booking}/confirm", headers={**HTMX, **csrf_headers(other_client)}
    )
    moved = in_hours(100)
    await other_client.patch(  # booking_moved
        f"/api/v1/slots/{later.id}",
        json={"start_time": moved.isoformat(), "end_time": (moved + timedelta(minutes=30)).isoformat()},
        headers=as_professor,
    )
    await other_client.request(  # slot_cancelled
        "DELETE", f"/api/v1/slots/{later.id}", json={"reason": "Ill"}, headers=as_professor
    )

    soon = await make_slot(professor, in_hours(23))
    reminded = await book(first, soon)
    await other_client.post(f"/api/v1/bookings/{reminded.id}/confirm", headers=as_professor)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE booking SET created_at = now() - interval '2 days' WHERE id = %s", (reminded.id,))
        failed = conn.execute(
            "UPDATE notification SET status = 'failed', attempts = 5 WHERE kind = 'booking_declined' RETURNING id"
        ).fetchone()
        conn.execute("DELETE FROM saq_jobs WHERE key = %s", (f"deliver:{failed[0]}:0",))
    assert await send_due_reminders({}) == 2  # reminder, to the student and the professor
    await web_login(client, admin.username)  # the failed row queued again, from the admin page
    resent = await client.post("/admin/notifications/resend", headers=csrf_headers(client))

    assert (declined.status_code, web_booked.status_code, resent.status_code) == (200, 200, 303)
    assert {kind for _, kind, _ in outbox(database_url)} == {
        "booking_requested",
        "booking_received",
        "booking_confirmed",
        "booking_cancelled",
        "waitlist_offer",
        "booking_declined",
        "booking_moved",
        "slot_cancelled",
        "reminder",
    }
    assert {status for _, _, status in outbox(database_url)} == {"queued"}
    assert rows_without_a_delivery_job(database_url) == []


async def test_a_rolled_back_request_leaves_no_outbox_row_and_queues_nothing(client: Any, database_url: str) -> None:
    professor, other_professor, student = await make_user("professor"), await make_user("professor"), await make_user()
    slot = await make_slot(professor, in_hours(48))
    elsewhere = await make_slot(other_professor, in_hours(72))
    await book(student, slot)
    await book(student, elsewhere)
    before_rows, before_jobs = outbox(database_url), queued_job_keys(database_url)
    response = await client.patch(  # the booked student has the other consultation then: refused at the flush
        f"/api/v1/slots/{slot.id}",
        json={"start_time": elsewhere.start_time.isoformat(), "end_time": elsewhere.end_time.isoformat()},
        headers=await api_token(client, professor.username),
    )
    assert (response.status_code, response.json()["detail"]) == (
        409,
        "A booked student has another consultation at the new time.",
    )
    assert (outbox(database_url), queued_job_keys(database_url)) == (before_rows, before_jobs)


async def test_after_commit_actions_run_once_after_the_commit_with_every_item(database_url: str) -> None:
    seen: list[tuple[list[Any], int]] = []

    async def action(items: list[Any]) -> None:
        async with unit_of_work() as other:  # what the action sees: the change is committed already
            count = await other.session.scalar(text("SELECT count(*) FROM auth_failure WHERE key LIKE 'uow:%'"))
        seen.append((items, int(count or 0)))

    async with unit_of_work() as unit:
        await unit.session.execute(
            text(
                "INSERT INTO auth_failure (id, key, created_at, updated_at) "
                "VALUES (gen_random_uuid(), 'uow:a', now(), now())"
            )
        )
        after_commit(unit.session, action, "first")
        after_commit(unit.session, action, "second")
        assert seen == []
    assert seen == [(["first", "second"], 1)]


async def test_a_unit_of_work_that_raises_runs_no_after_commit_action(database_url: str) -> None:
    seen: list[Any] = []

    async def action(items: list[Any]) -> None:
        seen.extend(items)

    async def failing_work() -> None:
        async with unit_of_work() as unit:
            after_commit(unit.session, action, "never")
            raise RuntimeError("the work failed")

    with pytest.raises(RuntimeError):
        await failing_work()
    assert seen == []


async def test_a_failed_savepoint_drops_only_the_actions_it_registered(database_url: str) -> None:
    seen: list[Any] = []

    async def action(items: list[Any]) -> None:
        seen.extend(items)

    async def failing_part(unit: Any) -> None:
        async with savepoint(unit.session):
            after_commit(unit.session, action, "undone")
            raise RuntimeError("this part failed")

    async with unit_of_work() as unit:
        after_commit(unit.session, action, "kept")
        with pytest.raises(RuntimeError):
            await failing_part(unit)
    assert seen == ["kept"]
