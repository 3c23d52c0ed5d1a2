"""Moving a booking to another free slot of the same professor, in one step (API and booking page), and the booking
page's other parts: the student's cancel button, the professor's private notes, the professor's setting.

A move keeps the current place until the new one is taken; refused, it changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from icalendar import Calendar
from psycopg.rows import dict_row

from app.domain.accounts.models import User
from app.domain.consultations.models import Booking, ConsultationSlot
from app.lib.formatting import describe_time, local_time
from app.worker import deliver_notification
from tests.conftest import Mailbox
from tests.helpers import api_token, book, csrf_headers, in_hours, make_slot, make_user, web_login

HTMX = {"HX-Request": "true"}


async def make_professor(**fields: Any) -> User:
    return await make_user("professor", first_name="Grace", last_name="Hopper", timezone="Europe/Berlin", **fields)


async def make_student(**fields: Any) -> User:
    return await make_user(**{"first_name": "Ada", "last_name": "Lovelace", "timezone": "Europe/Berlin", **fields})


def booking_rows(database_url: str, student: User) -> list[tuple[Any, str, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT slot_id, status, cancel_reason FROM booking WHERE student_id = %s ORDER BY created_at",
            (student.id,),
        ).fetchall()


def snapshot(database_url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[Any, str]]]:
    """Every booking, every slot's status and every outbox row: what a refused move must leave as it was."""
    with psycopg.connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cursor:
        bookings = cursor.execute("SELECT * FROM booking ORDER BY created_at, id").fetchall()
        slots = cursor.execute("SELECT id, status FROM consultation_slot ORDER BY id").fetchall()
        outbox = [(r["user_id"], r["kind"]) for r in cursor.execute("SELECT * FROM notification ORDER BY created_at")]
    return bookings, slots, outbox


def scalars(database_url: str, query: str, *params: Any) -> list[Any]:
    with psycopg.connect(database_url) as conn:
        return [row[0] for row in conn.execute(query, params).fetchall()]


def kinds(database_url: str) -> list[tuple[Any, str, Any]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT user_id, kind, booking_id FROM notification ORDER BY created_at, id").fetchall()


async def a_booking(**professor_fields: Any) -> tuple[User, User, Booking, ConsultationSlot]:
    """A student's pending booking in two days, and another free slot of the same professor a day later."""
    professor, student = await make_professor(**professor_fields), await make_student()
    booking = await book(student, await make_slot(professor, start=in_hours(48)), topic="Exam prep")
    return professor, student, booking, await make_slot(professor, start=in_hours(72), location="Room 12")


async def move(client: Any, student: User, booking: Any, slot: Any) -> Any:
    return await client.post(
        f"/api/v1/bookings/{booking.id}/reschedule",
        json={"slot_id": str(slot.id)},
        headers=await api_token(client, student.username),
    )


# The move.


async def test_a_student_moves_their_booking_to_another_free_slot_of_the_professor(
    client: Any, database_url: str
) -> None:
    professor, student, booking, later = await a_booking()
    response = await move(client, student, booking, later)
    assert response.status_code == 201
    body = response.json()
    assert (body["slot_id"], body["student_id"], body["status"], body["topic"]) == (
        str(later.id),
        str(student.id),
        "pending",
        "Exam prep",
    )
    moved_to = describe_time(later.start_time, later.end_time, "Europe/Berlin")
    assert booking_rows(database_url, student) == [
        (booking.slot_id, "cancelled", f"Moved to {moved_to}"),
        (later.id, "pending", ""),
    ]
    # The professor is told of the move (once, with the new request to answer); the student's request is acknowledged.
    assert [(user_id, kind) for user_id, kind, _ in kinds(database_url)] == [
        (professor.id, "booking_requested"),
        (student.id, "booking_received"),
        (professor.id, "booking_rescheduled"),
        (student.id, "booking_received"),
    ]
    with psycopg.connect(database_url) as conn:
        statuses = dict(conn.execute("SELECT id, status FROM consultation_slot").fetchall())
    assert statuses == {booking.slot_id: "available", later.id: "booked"}


async def test_the_professor_is_emailed_the_move_with_both_times_and_the_buttons_to_answer(
    client: Any, database_url: str, mailbox: Mailbox
) -> None:
    professor, student, booking, later = await a_booking()
    assert (await move(client, student, booking, later)).status_code == 201
    (notification_id,) = scalars(database_url, "SELECT id FROM notification WHERE kind = 'booking_rescheduled'")
    assert await deliver_notification({}, notification_id=str(notification_id)) == "sent"
    (message,) = mailbox.to(professor.email)
    start = f"{local_time(later.start_time, 'Europe/Berlin')} (Europe/Berlin)"
    assert str(message["Subject"]).strip() == f"Moved: Ada Lovelace's consultation, now {start}"
    plain = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    old = describe_time(booking.start_time, booking.end_time, "Europe/Berlin")
    new = describe_time(later.start_time, later.end_time, "Europe/Berlin")
    assert f"Ada Lovelace moved their consultation from {old} to {new}." in plain
    assert "The new time needs your answer: confirm or decline it with the buttons below." in plain
    assert "\nConfirm: http" in plain
    assert "\nDecline: http" in plain


async def test_a_move_to_an_auto_confirming_professor_is_confirmed_at_once(client: Any, database_url: str) -> None:
    professor, student, booking, later = await a_booking(auto_confirm=True)
    response = await move(client, student, booking, later)
    assert (response.status_code, response.json()["status"]) == (201, "confirmed")
    assert [(user_id, kind) for user_id, kind, _ in kinds(database_url)][2:] == [
        (professor.id, "booking_rescheduled"),
        (student.id, "booking_confirmed"),
        (student.id, "booking_cancelled"),  # the old time's calendar CANCEL: the student had its invitation
    ]


async def test_moving_a_confirmed_booking_takes_its_old_time_out_of_the_students_calendar(
    client: Any, database_url: str, mailbox: Mailbox
) -> None:
    _, student, booking, later = await a_booking(auto_confirm=True)
    assert (await move(client, student, booking, later)).status_code == 201
    (notification_id,) = scalars(
        database_url, "SELECT id FROM notification WHERE kind = 'booking_cancelled' AND booking_id = %s", booking.id
    )
    assert await deliver_notification({}, notification_id=str(notification_id)) == "sent"
    (message,) = mailbox.to(student.email)
    plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "You moved this consultation: its old time is taken out of your calendar." in plain
    (part,) = [part for part in message.walk() if part.get_content_type() == "text/calendar"]
    calendar = Calendar.from_ical(part.get_payload(decode=True))
    (event,) = calendar.walk("VEVENT")
    assert (str(calendar["METHOD"]), str(event["UID"])) == ("CANCEL", f"booking-{booking.id}@office-hours")


async def test_the_booking_being_moved_does_not_count_against_the_per_professor_limit(
    client: Any, database_url: str
) -> None:
    _, student, booking, later = await a_booking(max_active_bookings_per_student=1)
    response = await move(client, student, booking, later)
    assert response.status_code == 201
    assert [status for _, status, _ in booking_rows(database_url, student)] == ["cancelled", "pending"]


async def test_a_move_into_a_slot_held_for_the_student_on_the_waitlist_takes_the_held_place(
    client: Any, database_url: str
) -> None:
    _, student, booking, later = await a_booking()
    holder = await make_user()
    taken = await book(holder, later)
    headers = await api_token(client, student.username)
    assert (await client.post(f"/api/v1/slots/{later.id}/waitlist", headers=headers)).status_code == 201
    cancelled = await client.post(
        f"/api/v1/bookings/{taken.id}/cancel", headers=await api_token(client, holder.username)
    )
    assert cancelled.status_code == 200
    response = await move(client, student, booking, later)
    assert response.status_code == 201
    assert (response.json()["slot_id"], response.json()["status"]) == (str(later.id), "pending")
    assert scalars(database_url, "SELECT status FROM waitlist_entry") == ["accepted"]


# Refused moves change nothing.


async def test_a_move_into_a_full_slot_leaves_the_booking_untouched(client: Any, database_url: str) -> None:
    _, student, booking, later = await a_booking()
    await book(await make_user(), later)
    before = snapshot(database_url)
    response = await move(client, student, booking, later)
    assert (response.status_code, response.json()["detail"]) == (409, "This slot is full.")
    assert snapshot(database_url) == before


async def test_a_move_to_a_time_the_student_is_busy_leaves_the_booking_untouched(
    client: Any, database_url: str
) -> None:
    _, student, booking, later = await a_booking()
    elsewhere = await book(student, await make_slot(await make_user("professor"), start=later.start_time))
    before = snapshot(database_url)
    response = await move(client, student, booking, later)
    busy = describe_time(elsewhere.start_time, elsewhere.end_time, "Europe/Berlin")
    assert (response.status_code, response.json()["detail"]) == (409, f"You already have a consultation then ({busy}).")
    assert snapshot(database_url) == before


async def test_a_move_to_a_slot_too_soon_to_book_leaves_the_booking_untouched(client: Any, database_url: str) -> None:
    professor, student, booking, _ = await a_booking(booking_notice_hours=24, cancellation_notice_hours=2)
    soon = await make_slot(professor, start=in_hours(5))
    before = snapshot(database_url)
    response = await move(client, student, booking, soon)
    assert (response.status_code, response.json()["detail"]) == (409, "Book at least 24 hours before the start.")
    assert snapshot(database_url) == before


async def test_a_move_after_the_cancellation_deadline_is_refused(client: Any, database_url: str) -> None:
    _, student, booking, later = await a_booking(cancellation_notice_hours=72)
    before = snapshot(database_url)
    response = await move(client, student, booking, later)
    assert (response.status_code, response.json()["detail"]) == (
        409,
        "Bookings can be moved up to 72 hours before the start.",
    )
    assert snapshot(database_url) == before


async def test_a_move_to_another_professors_slot_is_refused(client: Any, database_url: str) -> None:
    _, student, booking, _ = await a_booking()
    elsewhere = await make_slot(await make_user("professor"), start=in_hours(80))
    before = snapshot(database_url)
    response = await move(client, student, booking, elsewhere)
    assert (response.status_code, response.json()["detail"]) == (
        409,
        "A booking moves only to another time of the same professor.",
    )
    assert snapshot(database_url) == before


async def test_moving_is_refused_when_the_professor_does_not_allow_it(client: Any, database_url: str) -> None:
    _, student, booking, later = await a_booking(students_may_reschedule=False)
    before = snapshot(database_url)
    response = await move(client, student, booking, later)
    assert (response.status_code, response.json()["detail"]) == (
        403,
        "Grace Hopper does not let students move bookings; cancel it and book again.",
    )
    assert snapshot(database_url) == before


async def test_someone_elses_booking_cannot_be_moved(client: Any, database_url: str) -> None:
    _, _, booking, later = await a_booking()
    before = snapshot(database_url)
    response = await move(client, await make_user(), booking, later)
    assert (response.status_code, response.json()["detail"]) == (404, "Booking not found.")
    assert snapshot(database_url) == before


async def test_a_cancelled_booking_cannot_be_moved(client: Any, database_url: str) -> None:
    _, student, booking, later = await a_booking()
    headers = await api_token(client, student.username)
    assert (await client.post(f"/api/v1/bookings/{booking.id}/cancel", headers=headers)).status_code == 200
    before = snapshot(database_url)
    response = await move(client, student, booking, later)
    assert (response.status_code, response.json()["detail"]) == (
        409,
        "Only a pending or confirmed booking can be moved; this one is cancelled.",
    )
    assert snapshot(database_url) == before


async def test_concurrent_moves_into_the_last_place_of_a_slot_let_exactly_one_win(
    client: Any, database_url: str
) -> None:
    professor = await make_professor()
    target = await make_slot(professor, start=in_hours(100))
    movers = []
    for hours in (48, 52, 56, 60):
        student = await make_user()
        movers.append((student, await book(student, await make_slot(professor, start=in_hours(hours)))))
    headers = [await api_token(client, student.username) for student, _ in movers]
    responses = await asyncio.gather(
        *(
            client.post(f"/api/v1/bookings/{booking.id}/reschedule", json={"slot_id": str(target.id)}, headers=h)
            for (_, booking), h in zip(movers, headers, strict=True)
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert {r.json()["detail"] for r in responses if r.status_code == 409} == {"This slot is full."}
    with psycopg.connect(database_url) as conn:
        on_target = conn.execute(
            "SELECT student_id FROM booking WHERE slot_id = %s AND status IN ('pending', 'confirmed')", (target.id,)
        ).fetchall()
        active = conn.execute("SELECT count(*) FROM booking WHERE status IN ('pending', 'confirmed')").fetchone()
    (winner,) = [student for (student, _), r in zip(movers, responses, strict=True) if r.status_code == 201]
    assert on_target == [(winner.id,)]
    assert active == (4,)  # the losers keep their places; the winner's old one is free


# The booking page.


async def test_the_student_sees_the_professors_free_times_and_moves_from_the_booking_page(
    client: Any, database_url: str
) -> None:
    _, student, booking, later = await a_booking()
    await web_login(client, student.username)
    page = await client.get(f"/bookings/{booking.id}")
    assert page.status_code == 200
    assert f'<input type="radio" name="slot_id" value="{later.id}">' in page.text
    assert f'action="/bookings/{booking.id}/reschedule"' in page.text
    assert f'hx-post="/bookings/{booking.id}/cancellation"' in page.text
    assert 'hx-confirm="Cancel your consultation with Grace Hopper on ' in page.text
    assert "Private notes" not in page.text
    response = await client.post(
        f"/bookings/{booking.id}/reschedule", data={"slot_id": str(later.id)}, headers=csrf_headers(client)
    )
    assert response.status_code == 303
    (new_id,) = scalars(database_url, "SELECT id FROM booking WHERE slot_id = %s", later.id)
    assert response.headers["location"] == f"/bookings/{new_id}"
    moved = await client.get(response.headers["location"])
    moved_to = describe_time(later.start_time, later.end_time, "Europe/Berlin")
    assert f"Moved to {moved_to}. The professor will confirm the new time." in moved.text


async def test_a_refused_move_on_the_booking_page_says_why_beside_the_times(client: Any, database_url: str) -> None:
    _, student, booking, later = await a_booking()
    other = await make_slot(later.professor, start=in_hours(96))
    await web_login(client, student.username)
    await client.get(f"/bookings/{booking.id}")
    await book(await make_user(), later)  # the last place goes meanwhile
    before = snapshot(database_url)
    response = await client.post(
        f"/bookings/{booking.id}/reschedule", data={"slot_id": str(later.id)}, headers=csrf_headers(client)
    )
    assert response.status_code == 409
    assert "This slot is full." in response.text.split('id="err-slot_id"')[1].split("</small>")[0]
    assert f'value="{other.id}"' in response.text  # the times still free, to choose again
    nothing = await client.post(f"/bookings/{booking.id}/reschedule", data={}, headers=csrf_headers(client))
    assert nothing.status_code == 422
    assert "Choose one of the free times listed." in nothing.text
    assert snapshot(database_url) == before


async def test_the_student_cancels_from_the_booking_page(client: Any, database_url: str) -> None:
    professor, student, booking, _ = await a_booking()
    await web_login(client, student.username)
    response = await client.post(f"/bookings/{booking.id}/cancellation", headers={**csrf_headers(client), **HTMX})
    assert (response.status_code, response.headers["hx-redirect"]) == (200, f"/bookings/{booking.id}")
    assert booking_rows(database_url, student)[0][1] == "cancelled"
    assert kinds(database_url)[-1][:2] == (professor.id, "booking_cancelled")
    page = await client.get(f"/bookings/{booking.id}")
    assert "Booking cancelled. The professor is told." in page.text
    assert "This booking is no longer active: there is nothing to change." in page.text


async def test_the_page_says_when_the_professor_does_not_allow_moving(client: Any) -> None:
    _, student, booking, later = await a_booking(students_may_reschedule=False)
    await web_login(client, student.username)
    page = await client.get(f"/bookings/{booking.id}")
    assert "Grace Hopper does not let students move bookings; cancel it and book again." in page.text
    assert f'value="{later.id}"' not in page.text
    assert "Cancel this booking" in page.text


async def test_the_professor_keeps_private_notes_that_only_they_see(
    client: Any, other_client: Any, database_url: str
) -> None:
    professor, student, booking, _ = await a_booking()
    await web_login(client, professor.username)
    page = await client.get(f"/bookings/{booking.id}")
    assert '<label for="err-input-professor_notes">Private notes (only you see them)' in page.text
    assert "Move to another time" not in page.text
    response = await client.post(
        f"/bookings/{booking.id}/notes",
        data={"professor_notes": "Wants to go over induction."},
        headers={**csrf_headers(client), **HTMX},
    )
    assert response.status_code == 200
    assert "Notes saved." in response.text
    with psycopg.connect(database_url) as conn:
        saved = conn.execute("SELECT professor_notes FROM consultation_note WHERE booking_id = %s", (booking.id,))
        assert saved.fetchall() == [("Wants to go over induction.",)]
    assert ">Wants to go over induction.</textarea>" in (await client.get(f"/bookings/{booking.id}")).text
    await web_login(other_client, student.username)
    seen_by_student = await other_client.get(f"/bookings/{booking.id}")
    assert seen_by_student.status_code == 200
    assert "Wants to go over induction." not in seen_by_student.text
    assert "Private notes" not in seen_by_student.text
    refused = await other_client.post(
        f"/bookings/{booking.id}/notes", data={"professor_notes": "Mine"}, headers=csrf_headers(other_client)
    )
    assert refused.status_code == 403


async def test_private_notes_that_are_too_long_are_refused_beside_the_field(client: Any, database_url: str) -> None:
    professor, _, booking, _ = await a_booking()
    await web_login(client, professor.username)
    too_long = "x" * 10_001
    swapped = await client.post(
        f"/bookings/{booking.id}/notes", data={"professor_notes": too_long}, headers={**csrf_headers(client), **HTMX}
    )
    assert swapped.status_code == 422
    assert (
        '<small id="err-professor_notes" class="field-error" hx-swap-oob="true"><span aria-hidden="true">⚠ </span>'
        "Use at most 10000 characters.</small>"
    ) in swapped.text
    page = await client.post(
        f"/bookings/{booking.id}/notes", data={"professor_notes": too_long}, headers=csrf_headers(client)
    )
    assert page.status_code == 422
    assert f">{too_long}</textarea>" in page.text  # kept as typed
    assert "Use at most 10000 characters." in page.text.split('id="err-professor_notes"')[1].split("</small>")[0]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM consultation_note").fetchone() == (0,)


async def test_the_professors_notes_move_with_the_booking(client: Any, database_url: str) -> None:
    professor, student, booking, later = await a_booking()
    headers = await api_token(client, professor.username)
    note = await client.put(
        f"/api/v1/bookings/{booking.id}/note", json={"professor_notes": "Induction"}, headers=headers
    )
    assert note.status_code == 200
    moved = await move(client, student, booking, later)
    assert moved.status_code == 201
    follows = await client.get(f"/api/v1/bookings/{moved.json()['id']}/note", headers=headers)
    assert follows.json()["professor_notes"] == "Induction"


# The professor's setting.


async def test_a_professor_switches_moving_off_in_settings_and_the_api_shows_it(client: Any, database_url: str) -> None:
    professor = await make_professor()
    headers = await api_token(client, professor.username)
    assert (await client.get("/api/v1/me", headers=headers)).json()["students_may_reschedule"] is True
    await web_login(client, professor.username)
    settings = await client.get("/settings")
    assert (
        '<input type="checkbox" role="switch" name="students_may_reschedule" checked>'
        " Students may move their booking to another of my free slots"
    ) in settings.text
    form = {
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": professor.email,
        "timezone": "Europe/Berlin",
        "booking_notice_hours": "2",
        "cancellation_notice_hours": "2",
        "max_active_bookings_per_student": "2",
        "waitlist_hold_minutes": "120",
    }
    saved = await client.post("/settings/profile", data=form, headers={**csrf_headers(client), **HTMX})
    assert saved.status_code == 200
    assert (await client.get("/api/v1/me", headers=headers)).json()["students_may_reschedule"] is False
    patched = await client.patch("/api/v1/me", json={"students_may_reschedule": True}, headers=headers)
    assert (patched.status_code, patched.json()["students_may_reschedule"]) == (200, True)
