"""Live updates speak each listener's language: one event, rendered for a German and an English listener alike.

Streams are read over real HTTP from the app served by uvicorn, as a browser's EventSource reads them (the helpers
of test_live_updates.py).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import make_slot, make_user
from tests.integration.german import english_in_html
from tests.integration.test_live_updates import EventStream, bearer, grid_stream, signed_in_client

pytestmark = pytest.mark.slow

NAMES = {"first_name": "Zofia", "last_name": "Kowalczyk"}


async def book_through_the_api(base_url: str, student: Any, slot: Any) -> None:
    async with httpx.AsyncClient(base_url=base_url) as api:
        booked = await api.post(f"/api/v1/slots/{slot.id}/bookings", headers=await bearer(base_url, student.username))
    assert booked.status_code == 201, booked.text


async def test_one_event_reaches_a_german_and_an_english_listener_each_in_their_language(live_server: str) -> None:
    professor = await make_user("professor", **NAMES)
    german, english = await make_user(locale="de"), await make_user(locale="en")
    booker = await make_user(first_name="Jonas", last_name="Weber")
    slot = await make_slot(professor, capacity=1, title="Klausurvorbereitung")
    async with (
        signed_in_client(live_server, german.username) as german_client,
        signed_in_client(live_server, english.username) as english_client,
        grid_stream(german_client, professor.id) as german_stream,
        grid_stream(english_client, professor.id) as english_stream,
    ):
        await book_through_the_api(live_server, booker, slot)
        german_name, german_html = await german_stream.next_event()
        english_name, english_html = await english_stream.next_event()
    assert german_name == english_name == f"slot-{slot.id}"
    assert '<span aria-hidden="true">✖ </span>Voll' in german_html
    assert '<span aria-hidden="true">✖ </span>Full' in english_html
    assert english_in_html(german_html, ["Klausurvorbereitung"]) == []


async def test_a_german_student_waiting_for_a_place_gets_the_offer_toast_in_german(live_server: str) -> None:
    professor = await make_user("professor", **NAMES)
    holder, waiting = await make_user(), await make_user(locale="de")
    slot = await make_slot(professor, capacity=1)
    # Booked and given up through the served app, as its other live tests do (its queue, not this process's).
    await book_through_the_api(live_server, holder, slot)
    async with httpx.AsyncClient(base_url=live_server) as api:
        joined = await api.post(
            f"/api/v1/slots/{slot.id}/waitlist", headers=await bearer(live_server, waiting.username)
        )
        assert joined.status_code == 201, joined.text
        holder_headers = await bearer(live_server, holder.username)
        (held,) = (await api.get("/api/v1/bookings", headers=holder_headers)).json()["items"]
        async with (
            signed_in_client(live_server, waiting.username) as client,
            grid_stream(client, professor.id) as stream,
        ):
            cancelled = await api.post(f"/api/v1/bookings/{held['id']}/cancel", json={}, headers=holder_headers)
            assert cancelled.status_code == 200, cancelled.text
            events = dict([await stream.next_event() for _ in range(2)])
    assert "Ein Platz ist für Sie frei" in events["toast"], events["toast"]
    assert {name: english_in_html(html) for name, html in events.items()} == {name: [] for name in events}


async def test_a_german_professors_dashboard_stream_shows_row_requests_and_toast_in_german(live_server: str) -> None:
    professor = await make_user("professor", locale="de", **NAMES)
    student = await make_user(first_name="Jonas", last_name="Weber")
    slot = await make_slot(professor, title="Klausurvorbereitung", location="Raum 3.14")
    known = ["Jonas Weber", "Jonas", "Weber", student.username, student.email, "Klausurvorbereitung", "Raum 3.14"]
    async with (
        signed_in_client(live_server, professor.username) as dashboard,
        dashboard.stream("GET", "/dashboard/events", timeout=None) as response,
    ):
        stream = EventStream(response.aiter_lines())
        await stream.ready()
        await book_through_the_api(live_server, student, slot)
        events = dict([await stream.next_event() for _ in range(3)])
    assert set(events) == {f"slot-row-{slot.id}", "pending", "toast"}
    assert "Neue Buchung: Jonas Weber" in events["toast"]
    assert {name: english_in_html(html, known) for name, html in events.items()} == {name: [] for name in events}
