"""Slots reserved for the students of courses: who may book and wait for them, and what everyone else sees.

Course memberships are written through the real course service, as LTI launches and rosters write them.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import psycopg

from app.domain.consultations.courses import CourseService
from app.domain.consultations.models import Course, CourseRole
from app.services import provide_services
from tests.helpers import api_token, book, csrf_headers, in_hours, make_slot, make_user, web_login

HTMX = {"HX-Request": "true"}


async def make_course(title: str, **members: Any) -> Course:
    """A course with members given as role=[users] (instructor=[...], learner=[...])."""
    async with provide_services() as services:
        course = Course(title=title)
        services.session.add(course)
        await services.session.flush()
        courses = CourseService(session=services.session)
        for role, people in members.items():
            await courses.join(course.id, {person.id: CourseRole(role) for person in people})
    return course


def reserved(database_url: str, slot_id: Any) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT c.title FROM slot_course s JOIN course c ON c.id = s.course_id WHERE s.slot_id = %s ORDER BY 1",
            (slot_id,),
        ).fetchall()
    return [row[0] for row in rows]


def bookings_of(database_url: str, student_id: Any) -> list[str]:
    with psycopg.connect(database_url) as conn:
        return [row[0] for row in conn.execute("SELECT status FROM booking WHERE student_id = %s", (student_id,))]


async def test_a_professor_reserves_a_slot_for_a_course_they_teach(client: Any, database_url: str) -> None:
    professor = await make_user("professor")
    course = await make_course("Algorithms", instructor=[professor])
    start = in_hours(48)
    response = await client.post(
        "/api/v1/slots",
        json={
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(minutes=30)).isoformat(),
            "course_ids": [str(course.id)],
        },
        headers=await api_token(client, professor.username),
    )
    assert response.status_code == 201, response.text
    assert response.json()["course_ids"] == [str(course.id)]
    assert reserved(database_url, response.json()["id"]) == ["Algorithms"]


async def test_a_course_the_professor_does_not_teach_is_refused_naming_the_field(
    client: Any, database_url: str
) -> None:
    professor, colleague = await make_user("professor"), await make_user("professor")
    course = await make_course("Databases", instructor=[colleague])
    start = in_hours(48)
    response = await client.post(
        "/api/v1/slots",
        json={
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(minutes=30)).isoformat(),
            "course_ids": [str(course.id)],
        },
        headers=await api_token(client, professor.username),
    )
    assert response.status_code == 422
    assert response.json()["extra"] == [{"key": "course_ids", "message": "Choose among the courses you teach."}]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM consultation_slot").fetchone() == (0,)


async def test_a_non_member_cannot_book_a_reserved_slot_and_a_member_can(client: Any, database_url: str) -> None:
    professor, member, outsider = await make_user("professor"), await make_user(), await make_user()
    course = await make_course("Algorithms", instructor=[professor], learner=[member])
    slot = await make_slot(professor, capacity=2, course_ids=[course.id])
    refused = await client.post(
        f"/api/v1/slots/{slot.id}/bookings", json={}, headers=await api_token(client, outsider.username)
    )
    assert refused.status_code == 409
    assert refused.json()["detail"] == "This slot is reserved for students of Algorithms."
    assert bookings_of(database_url, outsider.id) == []
    accepted = await client.post(
        f"/api/v1/slots/{slot.id}/bookings", json={}, headers=await api_token(client, member.username)
    )
    assert accepted.status_code == 201
    assert bookings_of(database_url, member.id) == ["pending"]


async def test_a_member_of_any_of_the_slots_courses_may_book(client: Any, database_url: str) -> None:
    professor, student = await make_user("professor"), await make_user()
    first = await make_course("Algorithms", instructor=[professor])
    second = await make_course("Databases", instructor=[professor], learner=[student])
    slot = await make_slot(professor, course_ids=[first.id, second.id])
    await book(student, slot)
    assert bookings_of(database_url, student.id) == ["pending"]


async def test_a_non_member_sees_the_reserved_slot_as_not_bookable_with_the_reason(client: Any) -> None:
    professor, outsider = await make_user("professor"), await make_user()
    course = await make_course("Algorithms", instructor=[professor])
    slot = await make_slot(professor, course_ids=[course.id])
    await web_login(client, outsider.username)
    page = await client.get(f"/professors/{professor.id}", params={"week": slot.start_time.date().isoformat()})
    assert f'id="slot-{slot.id}" class="slot-cell is-reserved"' in page.text
    assert "Not bookable: reserved for students of Algorithms" in page.text
    assert f'hx-get="/slots/{slot.id}/book"' not in page.text


async def test_a_member_sees_the_reserved_slot_bookable_and_whom_it_is_for(client: Any) -> None:
    professor, member = await make_user("professor"), await make_user()
    course = await make_course("Algorithms", instructor=[professor], learner=[member])
    slot = await make_slot(professor, course_ids=[course.id])
    await web_login(client, member.username)
    page = await client.get(f"/professors/{professor.id}", params={"week": slot.start_time.date().isoformat()})
    assert f'id="slot-{slot.id}" class="slot-cell is-free"' in page.text
    assert "For students of Algorithms" in page.text
    assert f'hx-get="/slots/{slot.id}/book"' in page.text


async def test_a_non_member_cannot_wait_for_a_full_reserved_slot(client: Any, database_url: str) -> None:
    professor, member, outsider = await make_user("professor"), await make_user(), await make_user()
    course = await make_course("Algorithms", instructor=[professor], learner=[member])
    slot = await make_slot(professor, course_ids=[course.id])
    await book(member, slot)
    response = await client.post(
        f"/api/v1/slots/{slot.id}/waitlist", headers=await api_token(client, outsider.username)
    )
    assert response.status_code == 409
    assert response.json()["detail"] == "This slot is reserved for students of Algorithms."
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM waitlist_entry").fetchone() == (0,)


async def test_generated_slots_are_all_reserved_for_the_chosen_course(client: Any, database_url: str) -> None:
    professor = await make_user("professor")
    course = await make_course("Algorithms", instructor=[professor])
    first = date.today() + timedelta(days=3)
    response = await client.post(
        "/api/v1/slots/bulk",
        json={
            "start_date": first.isoformat(),
            "end_date": (first + timedelta(days=6)).isoformat(),
            "weekdays": [0, 1, 2, 3, 4, 5, 6],
            "day_start": "10:00",
            "day_end": "11:00",
            "duration_minutes": 30,
            "course_ids": [str(course.id)],
        },
        headers=await api_token(client, professor.username),
    )
    assert response.status_code == 201, response.text
    items = response.json()["items"]
    assert len(items) == 14
    assert all(reserved(database_url, item["id"]) == ["Algorithms"] for item in items)


async def test_the_dashboard_form_reserves_a_slot_for_a_course(client: Any, database_url: str) -> None:
    professor = await make_user("professor", timezone="UTC")
    course = await make_course("Algorithms", instructor=[professor])
    await web_login(client, professor.username)
    dashboard = await client.get("/dashboard")
    assert f'<input type="checkbox" name="course_ids" value="{course.id}"> Algorithms</label>' in dashboard.text
    day = (date.today() + timedelta(days=3)).isoformat()
    response = await client.post(
        "/dashboard/slots",
        data={"date": day, "start": "10:00", "end": "10:30", "capacity": "1", "course_ids": str(course.id)},
        headers={**csrf_headers(client), **HTMX},
    )
    assert response.status_code == 200, response.text
    with psycopg.connect(database_url) as conn:
        (slot_id,) = conn.execute("SELECT id FROM consultation_slot").fetchone()  # type: ignore[misc]
    assert reserved(database_url, slot_id) == ["Algorithms"]


async def test_a_malformed_course_id_in_the_dashboard_form_names_the_field(client: Any) -> None:
    professor = await make_user("professor", timezone="UTC")
    await web_login(client, professor.username)
    day = (date.today() + timedelta(days=3)).isoformat()
    response = await client.post(
        "/dashboard/slots",
        data={"date": day, "start": "10:00", "end": "10:30", "course_ids": "not-a-course"},
        headers={**csrf_headers(client), **HTMX},
    )
    assert response.status_code == 422
    assert 'id="new-slot-course_ids"' in response.text
    assert "Choose from the list." in response.text


async def test_a_student_who_leaves_the_course_keeps_their_booking(client: Any, database_url: str) -> None:
    professor, student = await make_user("professor"), await make_user()
    course = await make_course("Algorithms", instructor=[professor], learner=[student])
    slot = await make_slot(professor, capacity=2, course_ids=[course.id])
    await book(student, slot)
    async with provide_services() as services:  # a fresh roster without the student
        await CourseService(session=services.session).replace_members(course.id, {professor.id: CourseRole.INSTRUCTOR})
    assert bookings_of(database_url, student.id) == ["pending"]
    with psycopg.connect(database_url) as conn:
        members = conn.execute("SELECT user_id FROM course_member WHERE course_id = %s", (course.id,)).fetchall()
    assert members == [(professor.id,)]
    # ...but cannot book another of the course's slots.
    other = await make_slot(professor, start=in_hours(72), course_ids=[course.id])
    response = await client.post(
        f"/api/v1/slots/{other.id}/bookings", json={}, headers=await api_token(client, student.username)
    )
    assert response.status_code == 409


async def test_moving_a_booking_offers_no_slot_reserved_for_another_course(client: Any) -> None:
    professor, student = await make_user("professor"), await make_user()
    course = await make_course("Algorithms", instructor=[professor])
    open_slot = await make_slot(professor, start=in_hours(48))
    reserved_slot = await make_slot(professor, start=in_hours(50), course_ids=[course.id])
    booking = await book(student, open_slot)
    async with provide_services() as services:
        choices = await services.bookings.student_choices(student, await services.bookings.get(booking.id))
    assert choices.can_move
    assert reserved_slot.id not in {slot.id for slot in choices.free_slots}
