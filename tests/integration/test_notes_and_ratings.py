"""Notes on a booking: the professor's private notes, the student's rating and feedback, and who sees what."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from app.domain.accounts.models import User
from app.domain.consultations.models import Booking, BookingStatus
from app.services import provide_services
from tests.helpers import api_token, book, csrf_headers, in_hours, make_slot, make_user, shift_into_past, web_login

HTMX = {"HX-Request": "true"}


async def headers_for(client: Any, user: Any) -> dict[str, str]:
    return await api_token(client, user.username)


async def held_booking(database_url: str, professor: User, student: User, hours_ago: float = 1) -> Booking:
    """A confirmed booking whose consultation started `hours_ago` (auto-confirming professors only)."""
    slot = await make_slot(professor, start=in_hours(48 + hours_ago))
    booking = await book(student, slot)
    shift_into_past(database_url, slot.id, hours=hours_ago)
    return booking


async def completed_booking(database_url: str, professor: User, student: User, hours_ago: float = 1) -> Booking:
    booking = await held_booking(database_url, professor, student, hours_ago)
    async with provide_services() as services:
        await services.bookings.mark_outcome(professor, booking.id, BookingStatus.COMPLETED)
    return booking


async def a_completed_consultation(database_url: str) -> tuple[User, User, Booking]:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    return professor, student, await completed_booking(database_url, professor, student)


def note_url(booking: Booking) -> str:
    return f"/api/v1/bookings/{booking.id}/note"


def rated_at(database_url: str, booking: Booking) -> datetime:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT rated_at FROM consultation_note WHERE booking_id = %s", (booking.id,)).fetchone()
    assert row is not None
    value: datetime = row[0]
    return value


def age_feedback(database_url: str, booking: Booking, days: float) -> None:
    """As if the feedback had been given `days` earlier."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE consultation_note SET rated_at = rated_at - make_interval(secs => %s) WHERE booking_id = %s",
            (days * 86400, booking.id),
        )


async def test_professor_writes_private_notes(client: Any, database_url: str) -> None:
    professor, _, booking = await a_completed_consultation(database_url)
    response = await client.put(
        note_url(booking),
        json={"professor_notes": "Struggles with induction."},
        headers=await headers_for(client, professor),
    )
    assert response.status_code == 200
    assert response.json() == {
        "booking_id": str(booking.id),
        "professor_notes": "Struggles with induction.",
        "student_feedback": None,
        "rating": None,
        "feedback_signed": None,
        "editable_until": None,
    }


async def test_student_never_sees_the_professors_notes(client: Any, database_url: str) -> None:
    professor, student, booking = await a_completed_consultation(database_url)
    await client.put(
        note_url(booking), json={"professor_notes": "Private."}, headers=await headers_for(client, professor)
    )
    response = await client.get(note_url(booking), headers=await headers_for(client, student))
    assert response.status_code == 200
    assert response.json() == {
        "booking_id": str(booking.id),
        "professor_notes": None,
        "student_feedback": "",
        "rating": None,
        "feedback_signed": False,
        "editable_until": None,
    }


async def test_student_rates_a_completed_consultation(client: Any, database_url: str) -> None:
    _, student, booking = await a_completed_consultation(database_url)
    response = await client.put(
        note_url(booking),
        json={"rating": 4, "student_feedback": "Very clear.", "feedback_signed": True},
        headers=await headers_for(client, student),
    )
    assert response.status_code == 200
    body = response.json()
    editable_until = datetime.fromisoformat(body.pop("editable_until"))
    assert body == {
        "booking_id": str(booking.id),
        "professor_notes": None,
        "student_feedback": "Very clear.",
        "rating": 4,
        "feedback_signed": True,
    }
    assert editable_until == rated_at(database_url, booking) + timedelta(days=7)


async def test_student_cannot_rate_before_the_consultation_is_completed(client: Any, database_url: str) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    booking = await held_booking(database_url, professor, student)
    response = await client.put(note_url(booking), json={"rating": 5}, headers=await headers_for(client, student))
    assert response.status_code == 409
    assert response.json() == {
        "status_code": 409,
        "code": "conflict",
        "detail": "You can leave feedback once the consultation is marked completed.",
    }


@pytest.mark.parametrize("rating", [0, 6])
async def test_a_rating_outside_one_to_five_is_refused_naming_rating(
    client: Any, database_url: str, rating: int
) -> None:
    _, student, booking = await a_completed_consultation(database_url)
    response = await client.put(note_url(booking), json={"rating": rating}, headers=await headers_for(client, student))
    assert response.status_code == 422
    assert response.json() == {
        "status_code": 422,
        "code": "invalid_fields",
        "detail": "rating: Rate from 1 to 5.",
        "extra": [{"key": "rating", "message": "Rate from 1 to 5."}],
    }


async def test_another_student_cannot_rate_someone_elses_booking(client: Any, database_url: str) -> None:
    _, _, booking = await a_completed_consultation(database_url)
    stranger = await make_user()
    response = await client.put(note_url(booking), json={"rating": 1}, headers=await headers_for(client, stranger))
    assert response.status_code == 404
    assert response.json() == {"status_code": 404, "code": "not_found", "detail": "Booking not found."}


async def test_professor_cannot_set_the_rating(client: Any, database_url: str) -> None:
    professor, _, booking = await a_completed_consultation(database_url)
    response = await client.put(note_url(booking), json={"rating": 5}, headers=await headers_for(client, professor))
    assert response.status_code == 422
    assert response.json() == {
        "status_code": 422,
        "code": "invalid_fields",
        "detail": "rating: This field is not yours to change.",
        "extra": [{"key": "rating", "message": "This field is not yours to change."}],
    }


async def test_student_changes_feedback_within_seven_days(client: Any, database_url: str) -> None:
    _, student, booking = await a_completed_consultation(database_url)
    headers = await headers_for(client, student)
    await client.put(note_url(booking), json={"rating": 2, "student_feedback": "Rushed."}, headers=headers)
    age_feedback(database_url, booking, days=6)
    response = await client.put(
        note_url(booking), json={"rating": 4, "student_feedback": "Fair, on reflection."}, headers=headers
    )
    assert response.status_code == 200
    assert (response.json()["rating"], response.json()["student_feedback"]) == (4, "Fair, on reflection.")
    # The window runs from the first rating: changing it does not extend it.
    first = rated_at(database_url, booking)
    assert datetime.fromisoformat(response.json()["editable_until"]) == first + timedelta(days=7)


async def test_student_cannot_change_feedback_after_seven_days(client: Any, database_url: str) -> None:
    _, student, booking = await a_completed_consultation(database_url)
    headers = await headers_for(client, student)
    await client.put(note_url(booking), json={"rating": 2}, headers=headers)
    age_feedback(database_url, booking, days=8)
    response = await client.put(note_url(booking), json={"rating": 5}, headers=headers)
    assert response.status_code == 409
    assert response.json() == {
        "status_code": 409,
        "code": "conflict",
        "detail": "Feedback can be changed for 7 days after it was given.",
    }
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT rating FROM consultation_note").fetchall() == [(2,)]


async def test_professor_sees_neither_the_feedback_nor_the_rating(client: Any, database_url: str) -> None:
    professor, student, booking = await a_completed_consultation(database_url)
    await client.put(
        note_url(booking),
        json={"rating": 1, "student_feedback": "Late and unprepared.", "feedback_signed": True},
        headers=await headers_for(client, student),
    )
    response = await client.get(note_url(booking), headers=await headers_for(client, professor))
    assert response.status_code == 200
    assert response.json() == {
        "booking_id": str(booking.id),
        "professor_notes": "",
        "student_feedback": None,
        "rating": None,
        "feedback_signed": None,
        "editable_until": None,
    }


async def professor_rated_by(client: Any, database_url: str, ratings: list[int]) -> User:
    """A professor in Mathematics, rated once by each of len(ratings) students through the API."""
    professor = await make_user("professor", auto_confirm=True, department="Mathematics")
    for i, rating in enumerate(ratings):
        student = await make_user()
        booking = await completed_booking(database_url, professor, student, hours_ago=1 + 2 * i)
        response = await client.put(
            note_url(booking), json={"rating": rating}, headers=await headers_for(client, student)
        )
        assert response.status_code == 200, response.text
    return professor


async def test_professor_page_hides_the_average_of_only_two_raters(client: Any, database_url: str) -> None:
    professor = await professor_rated_by(client, database_url, [5, 4])
    await web_login(client, (await make_user()).username)
    response = await client.get(f"/professors/{professor.id}")
    assert response.status_code == 200
    assert "<p>Mathematics</p>" in response.text
    assert "★" not in response.text.split("</hgroup>")[0]


async def test_professor_page_shows_the_average_from_three_raters(client: Any, database_url: str) -> None:
    professor = await professor_rated_by(client, database_url, [5, 4, 2])
    await web_login(client, (await make_user()).username)
    response = await client.get(f"/professors/{professor.id}")
    assert response.status_code == 200
    hgroup = response.text.split("<hgroup>")[1].split("</hgroup>")[0]
    # (5 + 4 + 2) / 3; the star is decoration, the figure and count are read out
    assert '<p>Mathematics · <span aria-hidden="true">★ </span>3.7 <span class="muted">(3 ratings)</span></p>' in hgroup


async def test_web_feedback_form_rerenders_the_row(client: Any, database_url: str) -> None:
    _, student, booking = await a_completed_consultation(database_url)
    await web_login(client, student.username)
    response = await client.post(
        f"/bookings/{booking.id}/feedback",
        data={"rating": "4", "student_feedback": "Helpful."},
        headers={**csrf_headers(client), **HTMX},
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith(f'<tr id="booking-{booking.id}">')
    assert "Change your feedback" in response.text
    assert 'value="4" checked' in response.text
    assert "Thank you for your feedback." in response.text
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT rating, student_feedback, feedback_signed FROM consultation_note").fetchall()
    assert rows == [(4, "Helpful.", False)]


async def test_web_feedback_without_a_rating_shows_the_error_in_place(client: Any, database_url: str) -> None:
    _, student, booking = await a_completed_consultation(database_url)
    await web_login(client, student.username)
    response = await client.post(
        f"/bookings/{booking.id}/feedback",
        data={"student_feedback": "No stars from me."},
        headers={**csrf_headers(client), **HTMX},
    )
    assert response.status_code == 422
    prefix = f"fb-{booking.id}"
    assert (
        f'<small id="{prefix}-rating" class="field-error" hx-swap-oob="true">'
        '<span aria-hidden="true">⚠ </span>Rate from 1 to 5.</small>'
    ) in response.text
    assert f'<small id="{prefix}-student_feedback" class="field-error" hx-swap-oob="true"></small>' in response.text
    assert f'<tr id="booking-{booking.id}">' not in response.text
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM consultation_note").fetchone() == (0,)
