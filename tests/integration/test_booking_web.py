"""Booking in the web pages: the directory, the week grid, the dialog, "My bookings", the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from tests.helpers import book, csrf_headers, in_hours, make_slot, make_user, shift_into_past, web_login

HTMX = {"HX-Request": "true"}


async def signed_in(client: Any, user: Any) -> dict[str, str]:
    await web_login(client, user.username)
    return {**csrf_headers(client), **HTMX}


async def test_directory_search_finds_professors_by_department(client: Any) -> None:
    await make_user("professor", first_name="Ada", last_name="Lovelace", department="Mathematics")
    await make_user("professor", first_name="Alan", last_name="Turing", department="Computer Science")
    await signed_in(client, await make_user())
    response = await client.get("/professors", params={"q": "mathem"}, headers=HTMX)
    assert response.status_code == 200
    assert "Ada Lovelace" in response.text
    assert "Alan Turing" not in response.text
    assert "<html" not in response.text  # the fragment only
    assert response.headers["vary"] == "HX-Request"


async def test_week_grid_shows_free_places_in_the_viewers_timezone(client: Any) -> None:
    professor = await make_user("professor", timezone="Europe/Berlin")
    slot = await make_slot(professor, capacity=3)
    await book(await make_user(), slot)
    await signed_in(client, await make_user(timezone="America/New_York"))
    week = slot.start_time.date().isoformat()
    response = await client.get(f"/professors/{professor.id}", params={"week": week})
    assert response.status_code == 200
    assert f'id="slot-{slot.id}" class="slot-cell is-free"' in response.text
    assert "2 of 3 free" in response.text
    assert "Times in <strong>America/New_York</strong>" in response.text


async def test_a_cell_shown_before_a_booking_shows_the_place_taken_after_it(client: Any) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor, capacity=2)
    await signed_in(client, await make_user())
    week = slot.start_time.date().isoformat()
    before = await client.get(f"/professors/{professor.id}", params={"week": week})
    await book(await make_user(), slot)
    after = await client.get(f"/professors/{professor.id}", params={"week": week})
    assert "2 of 2 free" in before.text
    assert "1 of 2 free" in after.text
    assert "2 of 2 free" not in after.text


async def test_a_cell_a_student_may_book_shows_no_book_button_to_a_professor(client: Any) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor)
    week = slot.start_time.date().isoformat()
    await signed_in(client, await make_user())
    as_student = await client.get(f"/professors/{professor.id}", params={"week": week})
    await signed_in(client, await make_user("professor"))
    as_professor = await client.get(f"/professors/{professor.id}", params={"week": week})
    assert f'hx-get="/slots/{slot.id}/book"' in as_student.text
    assert f'hx-get="/slots/{slot.id}/book"' not in as_professor.text
    assert "1 of 1 free" in as_professor.text


async def test_a_cell_shown_in_english_is_shown_in_german_to_a_german_reader(client: Any) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor, capacity=2)
    week = slot.start_time.date().isoformat()
    await signed_in(client, await make_user())
    english = await client.get(f"/professors/{professor.id}", params={"week": week})
    await signed_in(client, await make_user(locale="de"))
    german = await client.get(f"/professors/{professor.id}", params={"week": week})
    assert "2 of 2 free" in english.text
    assert "2 of 2 free" not in german.text
    assert "2 von 2 frei" in german.text


async def test_week_navigation_returns_only_the_week_for_htmx(client: Any) -> None:
    professor = await make_user("professor")
    await signed_in(client, await make_user())
    response = await client.get(f"/professors/{professor.id}", params={"week": "2035-01-01"}, headers=HTMX)
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div class="week-head">')
    assert "Week of Mon, 1 Jan 2035" in response.text


async def test_unknown_professor_page_is_404(client: Any) -> None:
    await signed_in(client, await make_user())
    response = await client.get("/professors/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404


async def test_a_week_without_slots_names_the_professor_and_suggests_the_next(client: Any) -> None:
    professor = await make_user("professor", first_name="Grace", last_name="Hopper")
    await make_slot(professor, in_hours(24 * 21))  # another week's
    await signed_in(client, await make_user())
    response = await client.get(f"/professors/{professor.id}")
    assert response.status_code == 200
    assert "Grace Hopper" in response.text
    assert "No consultation slots this week. Try the next one." in response.text


async def test_a_students_or_a_deactivated_professors_page_is_404(client: Any, database_url: str) -> None:
    student, professor = await make_user(), await make_user("professor")
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE user_account SET is_active = false WHERE id = %s", (professor.id,))
    await signed_in(client, await make_user())
    for someone in (student, professor):
        response = await client.get(f"/professors/{someone.id}")
        assert response.status_code == 404


async def test_booking_from_the_dialog_swaps_the_cell_in_place(client: Any, database_url: str) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor, capacity=1)
    student = await make_user()
    headers = await signed_in(client, student)
    dialog = await client.get(f"/slots/{slot.id}/book", headers=HTMX)
    assert dialog.status_code == 200
    assert '<dialog id="booking-dialog"' in dialog.text
    response = await client.post(f"/slots/{slot.id}/book", data={"topic": "Thesis"}, headers=headers)
    assert response.status_code == 200
    assert (
        f'<div id="slot-{slot.id}" class="slot-cell is-requested" hx-swap-oob="outerHTML" sse-swap="slot-{slot.id}"'
        in response.text
    )
    assert "Requested: waiting for the professor's answer" in response.text
    assert "Requested: the professor will confirm it." in response.text
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT topic, status FROM booking").fetchall() == [("Thesis", "pending")]


async def test_a_refused_booking_shows_the_reason_in_the_dialog(client: Any) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor, capacity=1)
    await book(await make_user(), slot)
    headers = await signed_in(client, await make_user())
    response = await client.post(f"/slots/{slot.id}/book", data={"topic": ""}, headers=headers)
    assert response.status_code == 409
    assert '<p class="slot-refusal"><span aria-hidden="true">✖ </span>This slot is full.</p>' in response.text
    assert f'hx-post="/slots/{slot.id}/waitlist"' in response.text  # a way on: the waitlist
    assert (
        f'<div id="slot-{slot.id}" class="slot-cell is-full" hx-swap-oob="outerHTML" sse-swap="slot-{slot.id}"'
        in response.text
    )


async def test_my_bookings_lists_upcoming_and_past_separately(client: Any, database_url: str) -> None:
    professor = await make_user("professor", first_name="Grace", last_name="Hopper")
    student = await make_user()
    soon, later = await make_slot(professor), await make_slot(professor, start=in_hours(96))
    await book(student, soon, "Past topic")
    await book(student, later, "Future topic")
    shift_into_past(database_url, soon.id, hours=3)
    await signed_in(client, student)
    upcoming = await client.get("/bookings", headers=HTMX)
    past = await client.get("/bookings", params={"tab": "past"}, headers=HTMX)
    assert "Future topic" in upcoming.text
    assert "Past topic" not in upcoming.text
    assert "Past topic" in past.text
    assert "Future topic" not in past.text


async def test_cancelling_from_my_bookings_rerenders_the_row(client: Any) -> None:
    professor, student = await make_user("professor"), await make_user()
    booking = await book(student, await make_slot(professor))
    headers = await signed_in(client, student)
    response = await client.post(f"/bookings/{booking.id}/cancel", headers=headers)
    assert response.status_code == 200
    assert f'<tr id="booking-{booking.id}">' in response.text
    assert '<span class="badge state-cancelled"><span aria-hidden="true">⊘ </span>Cancelled</span>' in response.text


async def test_cancelling_from_my_bookings_cancels_the_row_and_tells_the_professor(
    client: Any, database_url: str
) -> None:
    professor, student = await make_user("professor"), await make_user()
    booking = await book(student, await make_slot(professor))
    headers = await signed_in(client, student)
    await client.post(f"/bookings/{booking.id}/cancel", headers=headers)
    assert booking_row(database_url, booking.id) == ("cancelled", "", student.id)
    assert "booking_cancelled" in kinds_for(database_url, professor.id)


async def test_a_student_cannot_open_the_dashboard(client: Any) -> None:
    await signed_in(client, await make_user())
    response = await client.get("/dashboard")
    assert response.status_code == 403


async def test_professor_generates_a_month_of_slots_from_the_dashboard(client: Any, database_url: str) -> None:
    professor = await make_user("professor", timezone="Europe/Berlin")
    headers = await signed_in(client, professor)
    response = await client.post(
        "/dashboard/slots/bulk",
        data={
            "start_date": "2035-02-01",
            "end_date": "2035-02-28",
            "weekdays": ["0", "2"],
            "day_start": "10:00",
            "day_end": "12:00",
            "duration_minutes": "30",
            "buffer_minutes": "0",
            "capacity": "2",
            "location": "B12",
        },
        headers=headers,
    )
    assert response.status_code == 200
    assert "<h3>32 slots created</h3>" in response.text
    assert response.headers["hx-trigger"] == "slots-changed"
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM consultation_slot").fetchone() == (32,)


async def test_generator_errors_appear_beside_their_fields(client: Any, database_url: str) -> None:
    headers = await signed_in(client, await make_user("professor"))
    response = await client.post(
        "/dashboard/slots/bulk",
        data={
            "start_date": "2035-02-01",
            "end_date": "2035-02-28",
            "weekdays": ["9"],
            "day_start": "10:00",
            "day_end": "10:20",
            "duration_minutes": "30",
            "capacity": "1",
        },
        headers=headers,
    )
    assert response.status_code == 422
    assert (
        'id="bulk-weekdays" class="field-error" hx-swap-oob="true"><span aria-hidden="true">⚠ </span>Weekdays are numbers from 0 (Monday) to 6 (Sunday).'
        in response.text
    )
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM consultation_slot").fetchone() == (0,)


async def test_inline_edit_with_a_bad_capacity_stays_in_edit_mode_with_the_message(client: Any) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor, location="Old room")
    headers = await signed_in(client, professor)
    edit = await client.get(f"/dashboard/slots/{slot.id}/edit", headers=HTMX)
    assert 'class="inline-edit"' in edit.text
    local = slot.start_time.astimezone(ZoneInfo(professor.timezone))
    form = {
        "date": local.strftime("%Y-%m-%d"),
        "start": local.strftime("%H:%M"),
        "end": (local + timedelta(minutes=30)).strftime("%H:%M"),
        "capacity": "0",
        "location": "New room",
        "meeting_url": "",
        "notes": "",
        "title": "",
    }
    response = await client.post(f"/dashboard/slots/{slot.id}", data=form, headers=headers)
    assert response.status_code == 422
    assert 'class="inline-edit"' in response.text
    assert "Capacity must be a whole number from 1 to 500." in response.text


async def test_an_inline_edit_saves_and_shows_the_row_again(client: Any, database_url: str) -> None:
    professor = await make_user("professor", timezone="UTC")
    slot = await make_slot(professor, start=datetime(2035, 6, 12, 9, 0, tzinfo=UTC), location="Old room")
    headers = await signed_in(client, professor)
    form = inline_form(slot.start_time, "UTC", capacity="2", location="New room")
    saved = await client.post(f"/dashboard/slots/{slot.id}", data=form, headers=headers)
    assert saved.status_code == 200
    assert "New room" in saved.text
    assert 'class="inline-edit"' not in saved.text
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT capacity, location FROM consultation_slot").fetchone() == (2, "New room")


async def test_professor_confirms_from_the_dashboard(client: Any) -> None:
    professor, student = await make_user("professor"), await make_user()
    booking = await book(student, await make_slot(professor))
    headers = await signed_in(client, professor)
    response = await client.post(f"/dashboard/bookings/{booking.id}/confirm", headers=headers)
    assert response.status_code == 200
    assert '<span class="badge state-confirmed"><span aria-hidden="true">✔ </span>Confirmed</span>' in response.text


async def test_confirming_from_the_dashboard_confirms_the_row_and_tells_the_student(
    client: Any, database_url: str
) -> None:
    professor, student = await make_user("professor"), await make_user()
    booking = await book(student, await make_slot(professor))
    headers = await signed_in(client, professor)
    await client.post(f"/dashboard/bookings/{booking.id}/confirm", headers=headers)
    assert booking_row(database_url, booking.id)[0] == "confirmed"
    assert "booking_confirmed" in kinds_for(database_url, student.id)


async def test_professor_marks_a_no_show_after_the_start(client: Any, database_url: str) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    slot = await make_slot(professor)
    booking = await book(student, slot)
    shift_into_past(database_url, slot.id)
    headers = await signed_in(client, professor)
    response = await client.post(f"/dashboard/bookings/{booking.id}/no-show", headers=headers)
    assert response.status_code == 200
    assert '<span class="badge state-no_show"><span aria-hidden="true">⚑ </span>No-show</span>' in response.text


async def test_a_no_show_marked_on_the_dashboard_is_stored_and_mails_nobody(client: Any, database_url: str) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    slot = await make_slot(professor)
    booking = await book(student, slot)
    shift_into_past(database_url, slot.id)
    told_before = kinds_for(database_url, student.id)
    headers = await signed_in(client, professor)
    await client.post(f"/dashboard/bookings/{booking.id}/no-show", headers=headers)
    assert booking_row(database_url, booking.id)[0] == "no_show"
    assert kinds_for(database_url, student.id) == told_before  # an outcome is recorded, not announced


async def test_another_professors_slot_is_404_on_the_dashboard(client: Any) -> None:
    slot = await make_slot(await make_user("professor"))
    await signed_in(client, await make_user("professor"))
    response = await client.get(f"/dashboard/slots/{slot.id}/edit", headers=HTMX)
    assert response.status_code == 404


def booking_row(database_url: str, booking_id: Any) -> tuple[Any, ...]:
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT status, cancel_reason, cancelled_by FROM booking WHERE id = %s", (booking_id,)
        ).fetchone()
    assert found is not None
    return tuple(found)


def kinds_for(database_url: str, user_id: Any) -> list[str]:
    with psycopg.connect(database_url) as conn:
        return [r[0] for r in conn.execute("SELECT kind FROM notification WHERE user_id = %s", (user_id,))]


def slot_row(database_url: str, slot_id: Any) -> tuple[Any, ...]:
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT status, start_time, end_time FROM consultation_slot WHERE id = %s", (slot_id,)
        ).fetchone()
    assert found is not None
    return tuple(found)


async def test_the_single_slot_form_publishes_a_slot_at_the_professors_local_time(
    client: Any, database_url: str
) -> None:
    professor = await make_user("professor", timezone="Europe/Berlin")
    headers = await signed_in(client, professor)
    form = {"date": "2035-06-12", "start": "10:00", "end": "10:45", "capacity": "3", "location": "B12"}
    response = await client.post("/dashboard/slots", data=form, headers=headers)
    assert response.status_code == 200
    assert "Slot published for" in response.text
    assert response.headers["hx-trigger"] == "slots-changed"
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT start_time, end_time, capacity, location FROM consultation_slot").fetchall()
    assert rows == [(datetime(2035, 6, 12, 8, 0, tzinfo=UTC), datetime(2035, 6, 12, 8, 45, tzinfo=UTC), 3, "B12")]


async def test_the_single_slot_form_names_the_field_of_a_bad_time(client: Any, database_url: str) -> None:
    headers = await signed_in(client, await make_user("professor"))
    form = {"date": "2035-06-12", "start": "10:00", "end": "09:00", "capacity": "1"}
    response = await client.post("/dashboard/slots", data=form, headers=headers)
    assert response.status_code == 422
    assert (
        'id="new-slot-end" class="field-error" hx-swap-oob="true"><span aria-hidden="true">⚠ </span>' in response.text
    )
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM consultation_slot").fetchone() == (0,)


async def test_cancelling_a_booked_slot_without_a_reason_is_refused_naming_it(client: Any, database_url: str) -> None:
    professor, student = await make_user("professor"), await make_user()
    slot = await make_slot(professor)
    booking = await book(student, slot)
    headers = await signed_in(client, professor)
    response = await client.post(f"/dashboard/slots/{slot.id}/cancel", data={"reason": " "}, headers=headers)
    assert response.status_code == 422
    assert (
        f'id="cancel-slot-{slot.id}-reason" class="field-error" hx-swap-oob="true"><span aria-hidden="true">⚠ </span>'
        "Tell the booked students why you cancel." in response.text
    )
    assert slot_row(database_url, slot.id)[0] == "booked"
    assert booking_row(database_url, booking.id)[0] == "pending"


async def test_cancelling_a_booked_slot_with_a_reason_cancels_its_bookings_and_tells_the_students(
    client: Any, database_url: str
) -> None:
    professor, student = await make_user("professor"), await make_user()
    slot = await make_slot(professor)
    booking = await book(student, slot)
    headers = await signed_in(client, professor)
    response = await client.post(
        f"/dashboard/slots/{slot.id}/cancel", data={"reason": "Faculty meeting"}, headers=headers
    )
    assert response.status_code == 200
    assert "Slot cancelled; booked students are told." in response.text
    assert slot_row(database_url, slot.id)[0] == "cancelled"
    assert booking_row(database_url, booking.id) == ("cancelled", "Faculty meeting", professor.id)
    assert "slot_cancelled" in kinds_for(database_url, student.id)


async def test_an_empty_slot_is_cancelled_without_a_reason(client: Any, database_url: str) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor)
    headers = await signed_in(client, professor)
    response = await client.post(f"/dashboard/slots/{slot.id}/cancel", data={}, headers=headers)
    assert response.status_code == 200
    assert slot_row(database_url, slot.id)[0] == "cancelled"


async def test_a_booked_slot_row_asks_for_the_cancellation_reason(client: Any) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor)
    await book(await make_user(), slot)
    await signed_in(client, professor)
    row = await client.get(f"/dashboard/slots/{slot.id}/row", headers=HTMX)
    assert f'<input id="cancel-slot-{slot.id}-input-reason" name="reason"' in row.text


async def test_cancelling_a_booking_on_the_dashboard_without_a_reason_is_refused_naming_it(
    client: Any, database_url: str
) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    booking = await book(student, await make_slot(professor))
    headers = await signed_in(client, professor)
    response = await client.post(f"/dashboard/bookings/{booking.id}/cancel", data={"reason": ""}, headers=headers)
    assert response.status_code == 422
    assert (
        f'id="cancel-{booking.id}-reason" class="field-error" hx-swap-oob="true"><span aria-hidden="true">⚠ </span>'
        "Tell the student why you cancel." in response.text
    )
    assert booking_row(database_url, booking.id)[0] == "confirmed"


async def test_cancelling_a_booking_on_the_dashboard_stores_the_reason_and_tells_the_student(
    client: Any, database_url: str
) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    booking = await book(student, await make_slot(professor))
    headers = await signed_in(client, professor)
    response = await client.post(f"/dashboard/bookings/{booking.id}/cancel", data={"reason": "Ill"}, headers=headers)
    assert response.status_code == 200
    assert f"Cancelled; {student.full_name} is told." in response.text
    assert booking_row(database_url, booking.id) == ("cancelled", "Ill", professor.id)
    assert "booking_cancelled" in kinds_for(database_url, student.id)


def inline_form(start: datetime, zone: str, minutes: int = 30, **changes: str) -> dict[str, str]:
    local = start.astimezone(ZoneInfo(zone))
    return {
        "date": local.strftime("%Y-%m-%d"),
        "start": local.strftime("%H:%M"),
        "end": (local + timedelta(minutes=minutes)).strftime("%H:%M"),
        "capacity": "1",
        "location": "",
        "meeting_url": "",
        "notes": "",
        "title": "",
        **changes,
    }


async def test_moving_a_slot_inline_changes_its_time_and_tells_the_booked_student(
    client: Any, database_url: str
) -> None:
    professor, student = await make_user("professor", timezone="UTC"), await make_user()
    slot = await make_slot(professor, start=datetime(2035, 6, 12, 9, 0, tzinfo=UTC))
    await book(student, slot)
    headers = await signed_in(client, professor)
    later = datetime(2035, 6, 12, 14, 0, tzinfo=UTC)
    response = await client.post(f"/dashboard/slots/{slot.id}", data=inline_form(later, "UTC"), headers=headers)
    assert response.status_code == 200
    assert 'class="inline-edit"' not in response.text
    assert slot_row(database_url, slot.id)[1:] == (later, later + timedelta(minutes=30))
    assert "booking_moved" in kinds_for(database_url, student.id)


async def test_moving_a_slot_inline_onto_another_is_refused_in_the_edit_row(client: Any, database_url: str) -> None:
    professor = await make_user("professor", timezone="UTC")
    slot = await make_slot(professor, start=datetime(2035, 6, 12, 9, 0, tzinfo=UTC))
    await make_slot(professor, start=datetime(2035, 6, 12, 14, 0, tzinfo=UTC))
    headers = await signed_in(client, professor)
    overlapping = datetime(2035, 6, 12, 14, 15, tzinfo=UTC)
    response = await client.post(f"/dashboard/slots/{slot.id}", data=inline_form(overlapping, "UTC"), headers=headers)
    assert response.status_code == 409
    assert 'class="inline-edit"' in response.text
    assert f'id="row-{slot.id}-start" class="field-error"><span aria-hidden="true">⚠ </span>' in response.text
    assert 'value="14:15"' in response.text  # what was typed is kept
    assert slot_row(database_url, slot.id)[1] == datetime(2035, 6, 12, 9, 0, tzinfo=UTC)


async def test_the_booking_page_shows_the_booking_to_its_student(client: Any) -> None:
    professor = await make_user("professor", first_name="Grace", last_name="Hopper")
    student = await make_user(timezone="Asia/Tokyo")
    slot = await make_slot(professor, start=datetime(2035, 6, 12, 9, 0, tzinfo=UTC), location="Room 7")
    booking = await book(student, slot, "Compiler design")
    await signed_in(client, student)
    page = await client.get(f"/bookings/{booking.id}")
    assert page.status_code == 200
    assert "Grace Hopper" in page.text
    assert "Compiler design" in page.text
    assert "Room 7" in page.text
    assert "18:00" in page.text  # 09:00 UTC read in Tokyo


async def test_the_booking_page_of_someone_elses_booking_is_404(client: Any) -> None:
    professor = await make_user("professor")
    booking = await book(await make_user(), await make_slot(professor))
    await signed_in(client, await make_user())
    assert (await client.get(f"/bookings/{booking.id}")).status_code == 404


async def test_cancelling_on_the_booking_page_cancels_and_tells_the_professor(client: Any, database_url: str) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    booking = await book(student, await make_slot(professor))
    await signed_in(client, student)
    response = await client.post(f"/bookings/{booking.id}/cancellation", data={}, headers=csrf_headers(client))
    assert (response.status_code, response.headers["location"]) == (303, f"/bookings/{booking.id}")
    assert booking_row(database_url, booking.id)[:1] == ("cancelled",)
    assert "booking_cancelled" in kinds_for(database_url, professor.id)
