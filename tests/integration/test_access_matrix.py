"""Who may call each slot and booking route: the slot's professor, the booking's student, another student,
another professor and anonymous. Anonymous is 401 everywhere; someone else's slot or booking is 404 (ids are
not probed); a route for the other role is 403."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import uuid4

import pytest

from app.domain.accounts.models import User
from app.domain.consultations.models import Booking, ConsultationSlot
from tests.helpers import api_token, book, in_hours, make_slot, make_user, shift_into_past


def total(body: Any) -> Any:
    return body["total"]


def status(body: Any) -> Any:
    return body["status"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # "{slot}" and "{booking}" are the ids of the world's slot and booking
    summary: Callable[[Any], Any] = status  # what a successful answer is checked for
    body: Callable[[], Any] | None = None
    started: bool = False  # the consultation has begun and its booking is confirmed (complete / no-show)


def new_slot() -> dict[str, Any]:
    start = in_hours(96)
    return {"start_time": start.isoformat(), "end_time": (start + timedelta(minutes=30)).isoformat()}


def new_rule() -> dict[str, Any]:
    day = (date.today() + timedelta(days=10)).isoformat()
    return {
        "start_date": day,
        "end_date": day,
        "weekdays": list(range(7)),
        "day_start": "10:00",
        "day_end": "10:30",
        "duration_minutes": 30,
    }


ROUTES = {
    "GET /slots": Route("GET", "/api/v1/slots", summary=total),
    "POST /slots": Route("POST", "/api/v1/slots", body=new_slot),
    "POST /slots/bulk": Route("POST", "/api/v1/slots/bulk", summary=total, body=new_rule),
    "GET /slots/{id}": Route("GET", "/api/v1/slots/{slot}"),
    "PATCH /slots/{id}": Route(
        "PATCH", "/api/v1/slots/{slot}", summary=lambda b: b["location"], body=lambda: {"location": "Room 9"}
    ),
    "DELETE /slots/{id}": Route("DELETE", "/api/v1/slots/{slot}", body=lambda: {"reason": "Conference"}),
    "POST /slots/{id}/bookings": Route("POST", "/api/v1/slots/{slot}/bookings", body=lambda: {"topic": "Exam prep"}),
    "GET /bookings": Route("GET", "/api/v1/bookings", summary=total),
    "GET /bookings/{id}": Route("GET", "/api/v1/bookings/{booking}"),
    "POST /bookings/{id}/confirm": Route("POST", "/api/v1/bookings/{booking}/confirm"),
    "POST /bookings/{id}/cancel": Route("POST", "/api/v1/bookings/{booking}/cancel", body=lambda: {"reason": "Ill"}),
    "POST /bookings/{id}/complete": Route("POST", "/api/v1/bookings/{booking}/complete", started=True),
    "POST /bookings/{id}/no-show": Route("POST", "/api/v1/bookings/{booking}/no-show", started=True),
}

ACTORS = ("slot professor", "booking student", "other student", "other professor", "anonymous")

REFUSAL_CODES = {401: "not_signed_in", 403: "forbidden", 404: "not_found", 409: "conflict"}
SIGN_IN = (401, "Sign in to continue.")
PROFESSORS_ONLY = (403, "Only professors can do this.")
STUDENTS_ONLY = (403, "Only students can do this.")
NO_SUCH_SLOT = (404, "Slot not found.")
NO_SUCH_BOOKING = (404, "Booking not found.")

# route -> actor -> (status, detail of a refusal | summary of a success)
MATRIX: dict[str, dict[str, tuple[int, Any]]] = {
    "GET /slots": {
        "slot professor": (200, 1),
        "booking student": (200, 1),
        "other student": (200, 1),
        "other professor": (200, 1),
        "anonymous": SIGN_IN,
    },
    "POST /slots": {
        "slot professor": (201, "available"),
        "booking student": PROFESSORS_ONLY,
        "other student": PROFESSORS_ONLY,
        "other professor": (201, "available"),
        "anonymous": SIGN_IN,
    },
    "POST /slots/bulk": {
        "slot professor": (201, 1),
        "booking student": PROFESSORS_ONLY,
        "other student": PROFESSORS_ONLY,
        "other professor": (201, 1),
        "anonymous": SIGN_IN,
    },
    "GET /slots/{id}": {
        "slot professor": (200, "available"),
        "booking student": (200, "available"),
        "other student": (200, "available"),
        "other professor": (200, "available"),
        "anonymous": SIGN_IN,
    },
    "PATCH /slots/{id}": {
        "slot professor": (200, "Room 9"),
        "booking student": PROFESSORS_ONLY,
        "other student": PROFESSORS_ONLY,
        "other professor": NO_SUCH_SLOT,
        "anonymous": SIGN_IN,
    },
    "DELETE /slots/{id}": {
        "slot professor": (200, "cancelled"),
        "booking student": PROFESSORS_ONLY,
        "other student": PROFESSORS_ONLY,
        "other professor": NO_SUCH_SLOT,
        "anonymous": SIGN_IN,
    },
    "POST /slots/{id}/bookings": {
        "slot professor": STUDENTS_ONLY,
        "booking student": (409, "You have booked this slot already."),
        "other student": (201, "pending"),
        "other professor": STUDENTS_ONLY,
        "anonymous": SIGN_IN,
    },
    "GET /bookings": {
        "slot professor": (200, 1),
        "booking student": (200, 1),
        "other student": (200, 0),
        "other professor": (200, 0),
        "anonymous": SIGN_IN,
    },
    "GET /bookings/{id}": {
        "slot professor": (200, "pending"),
        "booking student": (200, "pending"),
        "other student": NO_SUCH_BOOKING,
        "other professor": NO_SUCH_BOOKING,
        "anonymous": SIGN_IN,
    },
    "POST /bookings/{id}/confirm": {
        "slot professor": (200, "confirmed"),
        "booking student": PROFESSORS_ONLY,
        "other student": PROFESSORS_ONLY,
        "other professor": NO_SUCH_BOOKING,
        "anonymous": SIGN_IN,
    },
    "POST /bookings/{id}/cancel": {
        "slot professor": (200, "declined"),  # a professor saying no to a pending request declines it
        "booking student": (200, "cancelled"),
        "other student": NO_SUCH_BOOKING,
        "other professor": NO_SUCH_BOOKING,
        "anonymous": SIGN_IN,
    },
    "POST /bookings/{id}/complete": {
        "slot professor": (200, "completed"),
        "booking student": PROFESSORS_ONLY,
        "other student": PROFESSORS_ONLY,
        "other professor": NO_SUCH_BOOKING,
        "anonymous": SIGN_IN,
    },
    "POST /bookings/{id}/no-show": {
        "slot professor": (200, "no_show"),
        "booking student": PROFESSORS_ONLY,
        "other student": PROFESSORS_ONLY,
        "other professor": NO_SUCH_BOOKING,
        "anonymous": SIGN_IN,
    },
}

CASES = [
    pytest.param(route, actor, MATRIX[route][actor], id=f"{route} by {actor}") for route in ROUTES for actor in ACTORS
]


@dataclass
class World:
    """A professor's slot (capacity 2) with one student's booking on it."""

    professor: User
    student: User
    slot: ConsultationSlot
    booking: Booking


async def make_world(route: Route, database_url: str) -> World:
    professor, student = await make_user("professor", auto_confirm=route.started), await make_user()
    slot = await make_slot(professor, capacity=2)
    booking = await book(student, slot)
    if route.started:
        shift_into_past(database_url, slot.id)
    return World(professor, student, slot, booking)


async def actor_for(actor: str, world: World) -> User | None:
    if actor == "slot professor":
        return world.professor
    if actor == "booking student":
        return world.student
    if actor == "other professor":
        return await make_user("professor")
    if actor == "other student":
        return await make_user()
    return None


def test_the_matrix_covers_every_route_for_every_actor() -> None:
    assert {route: set(cells) for route, cells in MATRIX.items()} == {route: set(ACTORS) for route in ROUTES}


@pytest.mark.parametrize(("route_name", "actor", "expected"), CASES)
async def test_each_caller_gets_what_the_matrix_grants(
    client: Any, database_url: str, route_name: str, actor: str, expected: tuple[int, Any]
) -> None:
    route = ROUTES[route_name]
    world = await make_world(route, database_url)
    user = await actor_for(actor, world)
    headers = await api_token(client, user.username) if user is not None else {}
    path = route.path.format(slot=world.slot.id, booking=world.booking.id)
    response = await client.request(route.method, path, json=route.body() if route.body else None, headers=headers)
    status_code, outcome = expected
    assert response.status_code == status_code
    body = response.json()
    if status_code >= 400:
        assert body == {"status_code": status_code, "code": REFUSAL_CODES[status_code], "detail": outcome}
        return
    assert route.summary(body) == outcome
    assert user is not None
    if "{slot}" in route.path and route_name != "POST /slots/{id}/bookings":
        assert body["id"] == str(world.slot.id)
    elif "{booking}" in route.path:
        assert body["id"] == str(world.booking.id)
    elif route_name == "POST /slots":
        assert body["professor_id"] == str(user.id)
    elif route_name == "POST /slots/bulk":
        assert [item["professor_id"] for item in body["items"]] == [str(user.id)]
    if route_name == "POST /slots/{id}/bookings":
        assert (body["slot_id"], body["student_id"]) == (str(world.slot.id), str(user.id))


async def test_a_missing_slot_reads_the_same_as_someone_elses(client: Any) -> None:
    headers = await api_token(client, (await make_user("professor")).username)
    response = await client.patch(f"/api/v1/slots/{uuid4()}", json={"location": "Room 9"}, headers=headers)
    assert response.status_code == 404
    assert response.json() == {"status_code": 404, "code": "not_found", "detail": "Slot not found."}


async def test_a_missing_booking_reads_the_same_as_someone_elses(client: Any) -> None:
    headers = await api_token(client, (await make_user()).username)
    response = await client.get(f"/api/v1/bookings/{uuid4()}", headers=headers)
    assert response.status_code == 404
    assert response.json() == {"status_code": 404, "code": "not_found", "detail": "Booking not found."}
