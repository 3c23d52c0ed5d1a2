"""Real concurrent HTTP requests against the app served by uvicorn, on real PostgreSQL: no rush overbooks."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest

from tests.helpers import api_token, csrf_headers, in_hours, make_slot, make_user, web_login


@pytest.fixture
async def http(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the live server that can hold 100 requests open at once."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=live_server, timeout=60, limits=limits) as client:
        yield client


async def students_with_tokens(http: httpx.AsyncClient, count: int) -> list[tuple[Any, dict[str, str]]]:
    students = [await make_user() for _ in range(count)]
    return [(student, await api_token(http, student.username)) for student in students]


def active_bookings(database_url: str, **where: Any) -> int:
    clauses = " AND ".join(f"{column} = %s" for column in where)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM booking WHERE status IN ('pending', 'confirmed') AND {clauses}",
            tuple(where.values()),
        ).fetchone()
    assert row is not None
    return int(row[0])


def slot_status(database_url: str, slot_id: Any) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT status FROM consultation_slot WHERE id = %s", (slot_id,)).fetchone()
    assert row is not None
    return str(row[0])


async def test_a_booking_of_a_full_slot_is_refused_without_waiting_for_the_slots_lock(
    http: httpx.AsyncClient, database_url: str
) -> None:
    slot = await make_slot(await make_user("professor"), capacity=1)
    (_, first), (_, second) = await students_with_tokens(http, 2)
    assert (await http.post(f"/api/v1/slots/{slot.id}/bookings", headers=first)).status_code == 201
    with psycopg.connect(database_url) as holder:  # a booking in progress elsewhere holds the slot's lock
        holder.execute("SELECT 1 FROM consultation_slot WHERE id = %s FOR UPDATE", (slot.id,))
        response = await asyncio.wait_for(http.post(f"/api/v1/slots/{slot.id}/bookings", headers=second), 10)
    assert response.status_code == 409
    assert response.json()["detail"] == "This slot is full."
    assert active_bookings(database_url, slot_id=slot.id) == 1


@pytest.mark.slow
async def test_a_hundred_students_rushing_a_slot_of_three_get_exactly_three_places(
    http: httpx.AsyncClient, database_url: str
) -> None:
    slot = await make_slot(await make_user("professor"), capacity=3)
    students = await students_with_tokens(http, 100)
    responses = await asyncio.gather(
        *(http.post(f"/api/v1/slots/{slot.id}/bookings", headers=headers) for _, headers in students)
    )
    assert Counter(response.status_code for response in responses) == {201: 3, 409: 97}
    assert {response.json()["detail"] for response in responses if response.status_code == 409} == {
        "This slot is full."
    }
    assert active_bookings(database_url, slot_id=slot.id) == 3
    assert slot_status(database_url, slot.id) == "booked"


@pytest.mark.slow
async def test_a_student_submitting_the_same_booking_ten_times_at_once_gets_one_booking(
    http: httpx.AsyncClient, database_url: str
) -> None:
    slot = await make_slot(await make_user("professor"), capacity=5)
    [(student, headers)] = await students_with_tokens(http, 1)
    responses = await asyncio.gather(
        *(http.post(f"/api/v1/slots/{slot.id}/bookings", json={"topic": "Exam"}, headers=headers) for _ in range(10))
    )
    assert Counter(response.status_code for response in responses) == {201: 1, 409: 9}
    assert {response.json()["detail"] for response in responses if response.status_code == 409} == {
        "You have booked this slot already."
    }
    assert active_bookings(database_url, slot_id=slot.id, student_id=student.id) == 1
    assert slot_status(database_url, slot.id) == "available"


@pytest.mark.slow
async def test_students_booking_two_overlapping_slots_at_once_each_get_only_one(
    http: httpx.AsyncClient, database_url: str
) -> None:
    """Two professors' slots overlap; ten students each ask for both at the same moment."""
    start = in_hours(72)
    first = await make_slot(await make_user("professor"), start=start, minutes=60, capacity=10)
    second = await make_slot(await make_user("professor"), start=start + timedelta(minutes=30), capacity=10)
    students = await students_with_tokens(http, 10)
    requests = [
        http.post(f"/api/v1/slots/{slot.id}/bookings", headers=headers)
        for _, headers in students
        for slot in (first, second)
    ]
    responses = await asyncio.gather(*requests)
    for student, _ in students:
        assert active_bookings(database_url, student_id=student.id) == 1
    per_student = [sorted(r.status_code for r in responses[i : i + 2]) for i in range(0, len(responses), 2)]
    assert per_student == [[201, 409]] * 10, [r.text for r in responses if r.status_code not in (201, 409)]
    for response in responses:
        if response.status_code == 409:
            detail = response.json()["detail"]
            assert detail == "You already hold a booking at this time." or detail.startswith(
                "You already have a consultation then ("
            ), detail


@pytest.mark.slow
async def test_students_booking_two_overlapping_slots_at_once_on_the_web_each_see_why_one_was_refused(
    live_server: str, database_url: str
) -> None:
    """The web page goes on after a refusal to show the reason; the refused attempt, even one a constraint caught
    mid-insert, is undone on its own (a savepoint) and the rest of the request still works."""
    start = in_hours(72)
    first = await make_slot(await make_user("professor"), start=start, minutes=60, capacity=10)
    second = await make_slot(await make_user("professor"), start=start + timedelta(minutes=30), capacity=10)
    students = [await make_user() for _ in range(5)]
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for student in students:
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=live_server, timeout=60))
            await web_login(client, student.username)
            clients.append(client)
        requests = [
            client.post(
                f"/slots/{slot.id}/book", data={"topic": "Exam"}, headers={**csrf_headers(client), "HX-Request": "true"}
            )
            for client in clients
            for slot in (first, second)
        ]
        responses = await asyncio.gather(*requests)
    for student in students:
        assert active_bookings(database_url, student_id=student.id) == 1
    per_student = [sorted(r.status_code for r in responses[i : i + 2]) for i in range(0, len(responses), 2)]
    assert per_student == [[200, 409]] * 5, [r.text[:300] for r in responses if r.status_code not in (200, 409)]
    for response in responses:
        if response.status_code == 409:
            assert '<dialog id="booking-dialog"' in response.text
            assert "You already hold a booking at this time." in response.text or (
                "You already have a consultation then (" in response.text
            )
