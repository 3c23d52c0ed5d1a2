"""The waitlist: fair, first-come promotion into held places, accept links, expiry, auto-book."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest

from app.config import get_settings
from app.lib.formatting import local_time
from app.worker import deliver_notification, expire_waitlist_holds
from tests.helpers import PASSWORD, api_token, book, csrf_headers, make_slot, make_user, shift_into_past, web_login


async def auth(client: Any, user: Any) -> dict[str, str]:
    return await api_token(client, user.username)


async def full_slot(capacity: int = 1, **profile: Any) -> tuple[Any, Any, list[Any]]:
    professor = await make_user("professor", **profile)
    slot = await make_slot(professor, capacity=capacity)
    holders = [await make_user() for _ in range(capacity)]
    bookings = [await book(student, slot) for student in holders]
    return professor, slot, bookings


def entries(database_url: str) -> list[tuple[Any, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT student_id, status FROM waitlist_entry ORDER BY created_at").fetchall()


def kinds_for(database_url: str, user_id: Any) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT kind FROM notification WHERE user_id = %s ORDER BY created_at", (user_id,))
        return [row[0] for row in rows]


async def test_a_student_joins_a_full_slots_waitlist_and_sees_their_position(client: Any) -> None:
    _, slot, _ = await full_slot()
    first, second = await make_user(), await make_user()
    one = await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, first))
    two = await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, second))
    assert (one.status_code, two.status_code) == (201, 201)
    assert (one.json()["position"], one.json()["status"], two.json()["position"]) == (1, "waiting", 2)
    mine = await client.get("/api/v1/waitlist", headers=await auth(client, second))
    assert [(e["slot_id"], e["position"]) for e in mine.json()["items"]] == [(str(slot.id), 2)]


async def test_joining_a_slot_with_free_places_is_refused(client: Any) -> None:
    slot = await make_slot(await make_user("professor"), capacity=2)
    response = await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, await make_user()))
    assert response.status_code == 409
    assert response.json()["detail"] == "This slot has free places: book it instead."


async def test_joining_twice_is_refused(client: Any) -> None:
    _, slot, _ = await full_slot()
    headers = await auth(client, await make_user())
    await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=headers)
    again = await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=headers)
    assert again.status_code == 409
    assert again.json()["detail"] == "You are on this slot's waitlist already."


async def test_joining_a_past_slot_is_refused(client: Any, database_url: str) -> None:
    _, slot, _ = await full_slot()
    shift_into_past(database_url, slot.id)
    response = await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, await make_user()))
    assert response.status_code == 409
    assert response.json()["detail"] == "This slot is in the past."


async def test_a_professor_cannot_join_a_waitlist(client: Any) -> None:
    professor, slot, _ = await full_slot()
    response = await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, professor))
    assert response.status_code == 403


async def test_leaving_the_waitlist_moves_the_next_one_up(client: Any) -> None:
    _, slot, _ = await full_slot()
    first, second = await make_user(), await make_user()
    await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, first))
    await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, second))
    left = await client.request("DELETE", f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, first))
    assert left.status_code == 204
    mine = await client.get("/api/v1/waitlist", headers=await auth(client, second))
    assert mine.json()["items"][0]["position"] == 1


async def test_a_cancellation_offers_the_place_to_the_first_in_line(client: Any, database_url: str) -> None:
    _, slot, (taken,) = await full_slot()
    first, second = await make_user(), await make_user()
    for student in (first, second):
        await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, student))
    holder_headers = await api_token(client, taken.student.username)
    assert (await client.post(f"/api/v1/bookings/{taken.id}/cancel", headers=holder_headers)).status_code == 200
    assert entries(database_url) == [(first.id, "offered"), (second.id, "waiting")]
    assert kinds_for(database_url, first.id) == ["waitlist_offer"]
    # The held place counts against capacity: nobody else can book it meanwhile.
    intruder = await client.post(f"/api/v1/slots/{slot.id}/bookings", headers=await auth(client, await make_user()))
    assert intruder.status_code == 409
    assert intruder.json()["detail"] == "This slot is full."


async def test_accepting_the_offer_books_the_place(client: Any, database_url: str) -> None:
    _, slot, (taken,) = await full_slot()
    student = await make_user()
    headers = await auth(client, student)
    entry = (await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=headers)).json()
    await client.post(f"/api/v1/bookings/{taken.id}/cancel", headers=await api_token(client, taken.student.username))
    response = await client.post(f"/api/v1/waitlist/{entry['id']}/accept", headers=headers)
    assert response.status_code == 201
    assert (response.json()["slot_id"], response.json()["student_id"]) == (str(slot.id), str(student.id))
    assert entries(database_url) == [(student.id, "accepted")]


async def test_accepting_after_the_hold_expired_fails_cleanly(client: Any, database_url: str) -> None:
    _, slot, (taken,) = await full_slot()
    student = await make_user()
    headers = await auth(client, student)
    entry = (await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=headers)).json()
    await client.post(f"/api/v1/bookings/{taken.id}/cancel", headers=await api_token(client, taken.student.username))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE waitlist_entry SET hold_expires_at = now() - interval '1 minute'")
    response = await client.post(f"/api/v1/waitlist/{entry['id']}/accept", headers=headers)
    assert response.status_code == 409
    assert response.json()["detail"] == "This offer has expired; the place went to the next student."
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM booking WHERE student_id = %s", (student.id,)).fetchone() == (0,)


async def test_an_expired_hold_moves_to_the_next_student_who_is_emailed(
    client: Any, database_url: str, backend: str
) -> None:
    """On both queue backends: the offer's mail is queued on PostgreSQL, or on Redis with QUEUE_URL=redis://."""
    from app.lib.queue import get_queue

    _, slot, (taken,) = await full_slot()
    first, second = await make_user(), await make_user()
    for student in (first, second):
        await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, student))
    await client.post(f"/api/v1/bookings/{taken.id}/cancel", headers=await api_token(client, taken.student.username))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE waitlist_entry SET hold_expires_at = now() - interval '1 minute' WHERE status = 'offered'")
    assert await expire_waitlist_holds({}) == 1
    assert entries(database_url) == [(first.id, "expired"), (second.id, "offered")]
    assert kinds_for(database_url, second.id) == ["waitlist_offer"]
    with psycopg.connect(database_url) as conn:
        (offer,) = conn.execute("SELECT id FROM notification WHERE user_id = %s", (second.id,)).fetchone()
    assert await (await get_queue()).job(f"deliver:{offer}:0") is not None


async def test_auto_book_mode_books_the_next_student_at_once(client: Any, database_url: str) -> None:
    _, slot, (taken,) = await full_slot(waitlist_auto_book=True)
    student = await make_user()
    await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, student))
    await client.post(f"/api/v1/bookings/{taken.id}/cancel", headers=await api_token(client, taken.student.username))
    assert entries(database_url) == [(student.id, "accepted")]
    with psycopg.connect(database_url) as conn:
        booked = conn.execute("SELECT status FROM booking WHERE student_id = %s", (student.id,)).fetchall()
    assert booked == [("pending",)]
    assert kinds_for(database_url, student.id) == ["waitlist_booked"]


async def test_a_busy_student_is_skipped_for_the_next_one(client: Any, database_url: str) -> None:
    _, slot, (taken,) = await full_slot()
    busy, free = await make_user(), await make_user()
    for student in (busy, free):
        await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, student))
    other = await make_slot(await make_user("professor"), start=slot.start_time)
    await book(busy, other)
    await client.post(f"/api/v1/bookings/{taken.id}/cancel", headers=await api_token(client, taken.student.username))
    assert entries(database_url) == [(busy.id, "waiting"), (free.id, "offered")]


async def test_raising_the_capacity_promotes_from_the_waitlist(client: Any, database_url: str) -> None:
    professor, slot, _ = await full_slot()
    student = await make_user()
    await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, student))
    response = await client.patch(
        f"/api/v1/slots/{slot.id}", json={"capacity": 2}, headers=await auth(client, professor)
    )
    assert response.status_code == 200
    assert entries(database_url) == [(student.id, "offered")]


async def offer_with_nonce(client: Any, database_url: str) -> tuple[Any, dict[str, Any], str]:
    _, slot, (taken,) = await full_slot()
    student = await make_user()
    entry = (await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, student))).json()
    await client.post(f"/api/v1/bookings/{taken.id}/cancel", headers=await api_token(client, taken.student.username))
    with psycopg.connect(database_url) as conn:
        (nonce,) = conn.execute("SELECT offer_nonce FROM waitlist_entry").fetchone()
    await web_login(client, student.username)
    return student, entry, nonce


async def test_a_forged_accept_link_is_refused(client: Any, database_url: str) -> None:
    _, entry, _ = await offer_with_nonce(client, database_url)
    forged = await client.get(f"/waitlist/{entry['id']}/accept", params={"t": "forged"})
    assert forged.status_code == 409
    assert "This link is not valid" in forged.text


async def test_the_accept_link_opens_a_page_that_books_on_its_button(client: Any, database_url: str) -> None:
    student, entry, nonce = await offer_with_nonce(client, database_url)
    page = await client.get(f"/waitlist/{entry['id']}/accept", params={"t": nonce})
    assert page.status_code == 200
    assert "Accept this place" in page.text
    assert entries(database_url) == [(student.id, "offered")]  # opening the link books nothing
    done = await client.post(f"/waitlist/{entry['id']}/accept", data={"t": nonce}, headers=csrf_headers(client))
    assert done.status_code == 200
    assert "It's yours" in done.text
    assert entries(database_url) == [(student.id, "accepted")]


async def test_the_accept_link_works_once(client: Any, database_url: str) -> None:
    _, entry, nonce = await offer_with_nonce(client, database_url)
    await client.post(f"/waitlist/{entry['id']}/accept", data={"t": nonce}, headers=csrf_headers(client))
    reused = await client.post(f"/waitlist/{entry['id']}/accept", data={"t": nonce}, headers=csrf_headers(client))
    assert reused.status_code == 409
    assert "no longer open" in reused.text


async def test_someone_elses_offer_link_is_refused(client: Any) -> None:
    _, slot, (taken,) = await full_slot()
    student = await make_user()
    entry = (await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, student))).json()
    await client.post(f"/api/v1/bookings/{taken.id}/cancel", headers=await api_token(client, taken.student.username))
    await web_login(client, (await make_user()).username)
    page = await client.get(f"/waitlist/{entry['id']}/accept", params={"t": "anything"})
    assert page.status_code == 409
    assert "it is not yours" in page.text
    api = await client.post(f"/api/v1/waitlist/{entry['id']}/accept", headers=await auth(client, await make_user()))
    assert api.status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/slots/{slot}/waitlist"),
        ("DELETE", "/api/v1/slots/{slot}/waitlist"),
        ("GET", "/api/v1/waitlist"),
        ("POST", "/api/v1/waitlist/{slot}/accept"),
        ("POST", "/api/v1/waitlist/{slot}/decline"),
    ],
)
async def test_waitlist_routes_refuse_anonymous_and_professors(client: Any, method: str, path: str) -> None:
    professor, slot, _ = await full_slot()
    url = path.format(slot=slot.id)
    assert (await client.request(method, url)).status_code == 401
    assert (await client.request(method, url, headers=await auth(client, professor))).status_code == 403


@pytest.mark.slow
async def test_two_concurrent_cancellations_promote_two_different_students(live_server: str, database_url: str) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor, capacity=2)
    holders = [await make_user(), await make_user()]
    bookings = [await book(student, slot) for student in holders]
    waiting = [await make_user() for _ in range(3)]
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as api:
        tokens = {}
        for student in [*holders, *waiting]:
            response = await api.post("/api/v1/auth/token", json={"username": student.username, "password": PASSWORD})
            tokens[student.id] = {"Authorization": f"Bearer {response.json()['token']}"}
        for student in waiting:
            await api.post(f"/api/v1/slots/{slot.id}/waitlist", headers=tokens[student.id])
            await asyncio.sleep(0.01)  # a clear order of arrival
        results = await asyncio.gather(
            *(api.post(f"/api/v1/bookings/{b.id}/cancel", headers=tokens[b.student_id]) for b in bookings)
        )
    assert [r.status_code for r in results] == [200, 200]
    assert entries(database_url) == [(waiting[0].id, "offered"), (waiting[1].id, "offered"), (waiting[2].id, "waiting")]
    with psycopg.connect(database_url) as conn:
        held = conn.execute(
            "SELECT count(*) FROM waitlist_entry WHERE offered_slot_id = %s AND status = 'offered'", (slot.id,)
        ).fetchone()
    assert held == (2,)


async def test_a_window_entry_is_offered_any_matching_slot(client: Any, database_url: str) -> None:
    professor, slot, (taken,) = await full_slot()
    student = await make_user()
    window = {
        "start": (slot.start_time - timedelta(days=1)).isoformat(),
        "end": (slot.start_time + timedelta(days=1)).isoformat(),
    }
    joined = await client.post(
        f"/api/v1/professors/{professor.id}/waitlist", json=window, headers=await auth(client, student)
    )
    assert joined.status_code == 201
    assert joined.json()["slot_id"] is None
    await client.post(f"/api/v1/bookings/{taken.id}/cancel", headers=await api_token(client, taken.student.username))
    assert entries(database_url) == [(student.id, "offered")]


async def test_stats_count_promotions_and_expired_holds(client: Any, database_url: str, backend: str) -> None:
    professor, slot, (taken,) = await full_slot()
    first, second = await make_user(), await make_user()
    for student in (first, second):
        await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, student))
    await client.post(f"/api/v1/bookings/{taken.id}/cancel", headers=await api_token(client, taken.student.username))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE waitlist_entry SET hold_expires_at = now() - interval '1 minute' WHERE status = 'offered'")
    await expire_waitlist_holds({})
    stats = await client.get("/api/v1/stats", headers=await auth(client, professor))
    assert (stats.json()["waitlist_promotions"], stats.json()["waitlist_expired_holds"]) == (2, 1)


async def offered(client: Any, **profile: Any) -> tuple[Any, Any, dict[str, Any]]:
    """A full slot, a student waiting on it, and the cancellation that offers them the place."""
    _, slot, (taken,) = await full_slot(**profile)
    student = await make_user(timezone="America/Los_Angeles")
    entry = (await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, student))).json()
    await client.post(f"/api/v1/bookings/{taken.id}/cancel", headers=await api_token(client, taken.student.username))
    return slot, student, entry


def places_taken(database_url: str, slot_id: Any) -> tuple[str, int]:
    with psycopg.connect(database_url) as conn:
        (status,) = conn.execute("SELECT status FROM consultation_slot WHERE id = %s", (slot_id,)).fetchone()
        (active,) = conn.execute(
            "SELECT count(*) FROM booking WHERE slot_id = %s AND status IN ('pending', 'confirmed')", (slot_id,)
        ).fetchone()
    return status, active


async def test_declining_an_offer_through_the_api_passes_the_place_to_the_next_student(
    client: Any, database_url: str
) -> None:
    _, slot, (taken,) = await full_slot()
    first, second = await make_user(), await make_user()
    first_entry = (await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, first))).json()
    await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, second))
    await client.post(f"/api/v1/bookings/{taken.id}/cancel", headers=await api_token(client, taken.student.username))
    response = await client.post(f"/api/v1/waitlist/{first_entry['id']}/decline", headers=await auth(client, first))
    assert response.status_code == 200
    assert response.json()["status"] == "left"
    assert entries(database_url) == [(first.id, "left"), (second.id, "offered")]
    assert kinds_for(database_url, second.id) == ["waitlist_offer"]


async def test_declining_an_offer_on_the_web_passes_the_place_on(client: Any, database_url: str) -> None:
    slot, student, entry = await offered(client)
    await web_login(client, student.username)
    response = await client.post(f"/waitlist/{entry['id']}/pass", headers=csrf_headers(client))
    assert (response.status_code, response.headers["location"]) == (303, "/waitlist")
    assert entries(database_url) == [(student.id, "left")]
    assert places_taken(database_url, slot.id) == ("available", 0)  # nobody else waits: the place is free again


async def test_leaving_a_waitlist_from_the_grid_on_the_web(client: Any, database_url: str) -> None:
    _, slot, _ = await full_slot()
    student = await make_user()
    await web_login(client, student.username)
    joined = await client.post(f"/slots/{slot.id}/waitlist", headers={**csrf_headers(client), "HX-Request": "true"})
    assert "You are number 1 on the waitlist." in joined.text
    left = await client.post(f"/slots/{slot.id}/waitlist/leave", headers={**csrf_headers(client), "HX-Request": "true"})
    assert left.status_code == 200
    assert "You left the waitlist." in left.text
    assert entries(database_url) == [(student.id, "left")]


async def test_leaving_a_waitlist_from_my_waitlist_page(client: Any, database_url: str) -> None:
    _, slot, _ = await full_slot()
    student = await make_user()
    entry = (await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await auth(client, student))).json()
    await web_login(client, student.username)
    response = await client.post(f"/waitlist/{entry['id']}/leave", headers=csrf_headers(client))
    assert (response.status_code, response.headers["location"]) == (303, "/waitlist")
    assert entries(database_url) == [(student.id, "left")]


async def test_the_hold_lasts_as_long_as_the_professor_set(client: Any, database_url: str) -> None:
    before = datetime.now(UTC)
    await offered(client, waitlist_hold_minutes=45)
    after = datetime.now(UTC)
    with psycopg.connect(database_url) as conn:
        (expires,) = conn.execute("SELECT hold_expires_at FROM waitlist_entry").fetchone()
    assert before + timedelta(minutes=45) <= expires <= after + timedelta(minutes=45)


async def test_an_expired_hold_with_nobody_else_waiting_frees_the_place(client: Any, database_url: str) -> None:
    slot, student, _ = await offered(client)
    assert places_taken(database_url, slot.id)[0] == "booked"  # the held place counts as taken
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE waitlist_entry SET hold_expires_at = now() - interval '1 minute'")
    assert await expire_waitlist_holds({}) == 1
    assert entries(database_url) == [(student.id, "expired")]
    assert places_taken(database_url, slot.id) == ("available", 0)
    assert kinds_for(database_url, student.id) == ["waitlist_offer"]  # no second offer to anyone


async def test_the_offer_mails_accept_link_books_the_place_and_shows_the_expiry_in_the_students_zone(
    client: Any, database_url: str, mailbox: Any
) -> None:
    slot, student, _ = await offered(client, waitlist_hold_minutes=45)
    (offer_id,) = [r[0] for r in notification_ids(database_url, student.id, "waitlist_offer")]
    assert await deliver_notification({}, notification_id=str(offer_id)) == "sent"
    (mail,) = mailbox.to(student.email)
    text = mail.get_body(("plain",)).get_content()
    with psycopg.connect(database_url) as conn:
        (expires,) = conn.execute("SELECT hold_expires_at FROM waitlist_entry").fetchone()
    until = local_time(expires, "America/Los_Angeles", "day_time")
    assert f"is held for you until {until}. Accept it here: " in text
    assert "\nIf you do not accept in time, it passes to the next student on the waitlist." in text
    link = re.search(r"Accept it here: (\S+)", text).group(1)  # type: ignore[union-attr]
    path = link.removeprefix(get_settings().app_url)
    await web_login(client, student.username)
    page = await client.get(path)
    assert page.status_code == 200, page.text
    assert "Accept this place" in page.text
    token = parse_qs(urlsplit(path).query)["t"][0]
    done = await client.post(urlsplit(path).path, data={"t": token}, headers=csrf_headers(client))
    assert done.status_code == 200
    assert entries(database_url) == [(student.id, "accepted")]
    assert places_taken(database_url, slot.id) == ("booked", 1)


def notification_ids(database_url: str, user_id: Any, kind: str) -> list[tuple[Any]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT id FROM notification WHERE user_id = %s AND kind = %s", (user_id, kind)).fetchall()
