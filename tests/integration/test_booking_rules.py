"""The booking rules through the API: each rule allowed once and refused once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from tests.helpers import api_token, book, in_hours, make_slot, make_user, shift_into_past


async def headers_for(client: Any, user: Any) -> dict[str, str]:
    return await api_token(client, user.username)


async def test_student_books_an_available_slot(client: Any) -> None:
    professor, student = await make_user("professor"), await make_user()
    slot = await make_slot(professor)
    response = await client.post(
        f"/api/v1/slots/{slot.id}/bookings", json={"topic": "Exam prep"}, headers=await headers_for(client, student)
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["slot_id"], body["student_id"], body["topic"], body["status"]) == (
        str(slot.id),
        str(student.id),
        "Exam prep",
        "pending",
    )


async def test_booking_is_confirmed_at_once_when_the_professor_auto_confirms(client: Any) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    slot = await make_slot(professor)
    response = await client.post(f"/api/v1/slots/{slot.id}/bookings", headers=await headers_for(client, student))
    assert response.status_code == 201
    assert response.json()["status"] == "confirmed"


async def test_student_cannot_book_a_full_slot(client: Any) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor, capacity=1)
    await book(await make_user(), slot)
    late = await make_user()
    response = await client.post(f"/api/v1/slots/{slot.id}/bookings", headers=await headers_for(client, late))
    assert response.status_code == 409
    assert response.json()["detail"] == "This slot is full."


async def test_pending_bookings_count_against_capacity(client: Any) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor, capacity=2)
    first, second = await book(await make_user(), slot), await book(await make_user(), slot)
    assert first.status == second.status == "pending"
    fetched = await client.get(f"/api/v1/slots/{slot.id}", headers=await headers_for(client, professor))
    assert (fetched.json()["status"], fetched.json()["booked_count"]) == ("booked", 2)


async def test_student_cannot_book_a_cancelled_slot(client: Any) -> None:
    professor, student = await make_user("professor"), await make_user()
    slot = await make_slot(professor)
    await client.request("DELETE", f"/api/v1/slots/{slot.id}", headers=await headers_for(client, professor))
    response = await client.post(f"/api/v1/slots/{slot.id}/bookings", headers=await headers_for(client, student))
    assert response.status_code == 409
    assert response.json()["detail"] == "This slot has been cancelled."


async def test_student_cannot_book_a_past_slot(client: Any, database_url: str) -> None:
    professor, student = await make_user("professor"), await make_user()
    slot = await make_slot(professor)
    shift_into_past(database_url, slot.id)
    response = await client.post(f"/api/v1/slots/{slot.id}/bookings", headers=await headers_for(client, student))
    assert response.status_code == 409
    assert response.json()["detail"] == "This slot is in the past."


async def test_student_cannot_book_inside_the_notice_window(client: Any) -> None:
    professor, student = await make_user("professor", booking_notice_hours=24), await make_user()
    slot = await make_slot(professor, start=in_hours(5))
    response = await client.post(f"/api/v1/slots/{slot.id}/bookings", headers=await headers_for(client, student))
    assert response.status_code == 409
    assert response.json()["detail"] == "Book at least 24 hours before the start."


async def test_professor_cannot_book_a_slot(client: Any) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor)
    response = await client.post(f"/api/v1/slots/{slot.id}/bookings", headers=await headers_for(client, professor))
    assert response.status_code == 403


async def test_student_cannot_book_the_same_slot_twice(client: Any) -> None:
    professor, student = await make_user("professor"), await make_user()
    slot = await make_slot(professor, capacity=3)
    headers = await headers_for(client, student)
    assert (await client.post(f"/api/v1/slots/{slot.id}/bookings", headers=headers)).status_code == 201
    again = await client.post(f"/api/v1/slots/{slot.id}/bookings", headers=headers)
    assert again.status_code == 409
    assert again.json()["detail"] == "You have booked this slot already."


async def test_student_cannot_hold_overlapping_bookings(client: Any) -> None:
    student = await make_user()
    start = in_hours(72)
    first = await make_slot(await make_user("professor"), start=start, minutes=60)
    second = await make_slot(await make_user("professor"), start=start + timedelta(minutes=30))
    await book(student, first)
    response = await client.post(f"/api/v1/slots/{second.id}/bookings", headers=await headers_for(client, student))
    assert response.status_code == 409
    assert response.json()["detail"].startswith("You already have a consultation then (")


async def test_student_may_hold_only_the_professors_limit_of_active_bookings(client: Any) -> None:
    professor, student = await make_user("professor", max_active_bookings_per_student=2), await make_user()
    slots = [await make_slot(professor, start=in_hours(48 + 2 * i)) for i in range(3)]
    await book(student, slots[0])
    await book(student, slots[1])
    response = await client.post(f"/api/v1/slots/{slots[2].id}/bookings", headers=await headers_for(client, student))
    assert response.status_code == 409
    assert "the most allowed" in response.json()["detail"]


async def test_student_may_rebook_after_cancelling(client: Any) -> None:
    professor, student = await make_user("professor"), await make_user()
    slot = await make_slot(professor)
    headers = await headers_for(client, student)
    booking = (await client.post(f"/api/v1/slots/{slot.id}/bookings", headers=headers)).json()
    assert (await client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=headers)).status_code == 200
    assert (await client.post(f"/api/v1/slots/{slot.id}/bookings", headers=headers)).status_code == 201


async def test_student_cancels_before_the_deadline_and_the_place_frees(client: Any) -> None:
    professor, student = await make_user("professor"), await make_user()
    slot = await make_slot(professor)
    booking = await book(student, slot)
    response = await client.post(f"/api/v1/bookings/{booking.id}/cancel", headers=await headers_for(client, student))
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancelled_by"]) == ("cancelled", str(student.id))
    fetched = await client.get(f"/api/v1/slots/{slot.id}", headers=await headers_for(client, student))
    assert (fetched.json()["status"], fetched.json()["booked_count"]) == ("available", 0)


async def test_student_cannot_cancel_after_the_deadline(client: Any) -> None:
    professor = await make_user("professor", cancellation_notice_hours=24, booking_notice_hours=0)
    student = await make_user()
    booking = await book(student, await make_slot(professor, start=in_hours(10)))
    response = await client.post(f"/api/v1/bookings/{booking.id}/cancel", headers=await headers_for(client, student))
    assert response.status_code == 409
    assert response.json()["detail"] == "Bookings can be cancelled up to 24 hours before the start."


async def test_professor_cancels_any_booking_with_a_reason(client: Any, database_url: str) -> None:
    professor = await make_user("professor", cancellation_notice_hours=24, booking_notice_hours=0)
    student = await make_user()
    booking = await book(student, await make_slot(professor, start=in_hours(3)))
    headers = await headers_for(client, professor)
    without = await client.post(f"/api/v1/bookings/{booking.id}/cancel", headers=headers)
    assert without.status_code == 422
    assert without.json()["extra"] == [{"key": "reason", "message": "Tell the student why you cancel."}]
    response = await client.post(f"/api/v1/bookings/{booking.id}/cancel", json={"reason": "Ill"}, headers=headers)
    assert response.status_code == 200
    with psycopg.connect(database_url) as conn:
        kinds = conn.execute(
            "SELECT kind FROM notification WHERE user_id = %s ORDER BY created_at", (student.id,)
        ).fetchall()
    assert kinds == [("booking_received",), ("booking_declined",)]


async def test_professor_confirms_a_pending_booking(client: Any, database_url: str) -> None:
    professor, student = await make_user("professor"), await make_user()
    booking = await book(student, await make_slot(professor))
    response = await client.post(f"/api/v1/bookings/{booking.id}/confirm", headers=await headers_for(client, professor))
    assert response.status_code == 200
    assert response.json()["status"] == "confirmed"
    with psycopg.connect(database_url) as conn:
        kinds = conn.execute(
            "SELECT kind FROM notification WHERE user_id = %s ORDER BY created_at", (student.id,)
        ).fetchall()
    assert kinds == [("booking_received",), ("booking_confirmed",)]


async def test_confirming_twice_is_a_conflict(client: Any) -> None:
    professor, student = await make_user("professor"), await make_user()
    booking = await book(student, await make_slot(professor))
    headers = await headers_for(client, professor)
    await client.post(f"/api/v1/bookings/{booking.id}/confirm", headers=headers)
    again = await client.post(f"/api/v1/bookings/{booking.id}/confirm", headers=headers)
    assert again.status_code == 409
    assert again.json()["detail"] == "Only a pending booking can be confirmed; this one is confirmed."


async def test_completed_only_after_the_start(client: Any, database_url: str) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    slot = await make_slot(professor)
    booking = await book(student, slot)
    headers = await headers_for(client, professor)
    early = await client.post(f"/api/v1/bookings/{booking.id}/complete", headers=headers)
    assert early.status_code == 409
    assert early.json()["detail"] == "The consultation has not started yet."
    shift_into_past(database_url, slot.id)
    done = await client.post(f"/api/v1/bookings/{booking.id}/complete", headers=headers)
    assert done.status_code == 200
    assert done.json()["status"] == "completed"


async def test_no_show_is_marked_after_the_start(client: Any, database_url: str) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    slot = await make_slot(professor)
    booking = await book(student, slot)
    shift_into_past(database_url, slot.id)
    response = await client.post(f"/api/v1/bookings/{booking.id}/no-show", headers=await headers_for(client, professor))
    assert response.status_code == 200
    assert response.json()["status"] == "no_show"


async def test_a_pending_booking_cannot_be_marked_completed(client: Any, database_url: str) -> None:
    professor, student = await make_user("professor"), await make_user()
    slot = await make_slot(professor)
    booking = await book(student, slot)
    shift_into_past(database_url, slot.id)
    response = await client.post(
        f"/api/v1/bookings/{booking.id}/complete", headers=await headers_for(client, professor)
    )
    assert response.status_code == 409
    assert response.json()["detail"] == "Only a confirmed booking can be marked completed; this one is pending."


async def test_a_cancelled_booking_cannot_be_cancelled_again(client: Any) -> None:
    professor, student = await make_user("professor"), await make_user()
    booking = await book(student, await make_slot(professor))
    headers = await headers_for(client, student)
    await client.post(f"/api/v1/bookings/{booking.id}/cancel", headers=headers)
    again = await client.post(f"/api/v1/bookings/{booking.id}/cancel", headers=headers)
    assert again.status_code == 409
    assert again.json()["detail"] == "Only a pending or confirmed booking can be cancelled; this one is cancelled."


async def test_student_cannot_confirm_their_own_booking(client: Any) -> None:
    professor, student = await make_user("professor"), await make_user()
    booking = await book(student, await make_slot(professor))
    response = await client.post(f"/api/v1/bookings/{booking.id}/confirm", headers=await headers_for(client, student))
    assert response.status_code == 403


async def test_cancelling_a_slot_cancels_its_bookings_and_tells_each_student(client: Any, database_url: str) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor, capacity=2)
    students = [await make_user(), await make_user()]
    for student in students:
        await book(student, slot)
    response = await client.request(
        "DELETE",
        f"/api/v1/slots/{slot.id}",
        json={"reason": "Conference"},
        headers=await headers_for(client, professor),
    )
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    with psycopg.connect(database_url) as conn:
        bookings = conn.execute("SELECT status, cancel_reason FROM booking WHERE slot_id = %s", (slot.id,)).fetchall()
        told = conn.execute(
            "SELECT user_id, context->>'reason' FROM notification WHERE kind = 'slot_cancelled'"
        ).fetchall()
    assert bookings == [("cancelled", "Conference")] * 2
    assert sorted(told) == sorted((s.id, "Conference") for s in students)


async def test_capacity_cannot_drop_below_the_booked_places(client: Any) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor, capacity=3)
    await book(await make_user(), slot)
    await book(await make_user(), slot)
    response = await client.patch(
        f"/api/v1/slots/{slot.id}", json={"capacity": 1}, headers=await headers_for(client, professor)
    )
    assert response.status_code == 409
    assert response.json()["detail"] == "2 students are booked; the capacity cannot go below that."


async def test_raising_capacity_reopens_a_full_slot(client: Any) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor, capacity=1)
    await book(await make_user(), slot)
    response = await client.patch(
        f"/api/v1/slots/{slot.id}", json={"capacity": 2}, headers=await headers_for(client, professor)
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["booked_count"]) == ("available", 1)


async def test_cancelling_a_booked_slot_through_the_api_without_a_reason_is_refused_naming_it(
    client: Any, database_url: str
) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor)
    await book(await make_user(), slot)
    response = await client.delete(f"/api/v1/slots/{slot.id}", headers=await headers_for(client, professor))
    assert response.status_code == 422
    assert response.json()["extra"] == [{"key": "reason", "message": "Tell the booked students why you cancel."}]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT status FROM booking WHERE slot_id = %s", (slot.id,)).fetchone() == ("pending",)
