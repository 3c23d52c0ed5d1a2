"""A person who chose German reads every page and fragment of the site in German.

The pages come from the app's route table: every GET route of the web interface is either rendered below, for a
German student, professor and administrator with real slots, requests, bookings, waitlist entries and a course, or
named in NOT_RENDERED_HERE with the reason. A new GET route fails `test_every_web_page_is_rendered_in_german_here`
until it is one or the other. What a page shows (its text and the attributes people read: aria-label, title,
placeholder, alt, hx-confirm, ...) must hold none of the English words in tests/integration/german.py once the
people's own data (names, titles, rooms) is taken out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest

from app.config import get_settings
from app.domain.accounts.emails import unlock_url
from app.domain.accounts.verification import verify_url
from app.domain.consultations.links import ActionLink, LinkAction, action_url, link_expiry
from app.lib.clock import utcnow
from app.services import provide_services
from tests.helpers import book, in_hours, make_admin, make_slot, make_user, shift_into_past, web_login
from tests.integration.german import english_in_html
from tests.integration.test_course_slots import make_course

HTMX = {"HX-Request": "true"}
GERMAN = "de"

# GET routes of the web interface not rendered here, and why. /api, /schema, /static, /media, /calendar (the feed),
# /lti and /dev are outside the web interface people read (machine-facing, files, or development only).
OUTSIDE = re.compile(r"^/(api|schema|static|media|calendar|lti|dev)(/|$)")
NOT_RENDERED_HERE = {
    "/health": "JSON for monitors, not read by people",
    "/metrics": "Prometheus text for the monitoring system, not read by people",
    "/settings/data/download": "the ZIP of a person's data (JSON and .ics), not a page",
    "/auth/google": "a redirect to Google, no page of ours",
    "/professors/{professor_id:uuid}/events": "a Server-Sent Events stream: tests/integration/test_german_live.py",
    "/dashboard/events": "a Server-Sent Events stream: tests/integration/test_german_live.py",
    "/dashboard/export.csv": "CSV, not HTML: its headers are checked in test_the_csv_export_speaks_german below",
    "/embed/open": "redeems a launch token and redirects to an embed page rendered here",
    "/embed/probe": "JSON for the embed sign-in script",
    "/embed/deep-link/{request_id:uuid}": "opened by a deep-linking launch from an LMS: rendered in German by "
    "test_german_lti.py",
}

# The people and things made here, named so that their own words are not mistaken for the interface's.
PROFESSOR = {"first_name": "Zofia", "last_name": "Kowalczyk", "department": "Informatik"}
STUDENT = {"first_name": "Lena", "last_name": "Schmidt"}
OTHER = {"first_name": "Jonas", "last_name": "Weber"}
ADMIN = {"first_name": "Ines", "last_name": "Vogt"}
SLOT = {"title": "Klausurvorbereitung", "location": "Raum 3.14"}
TOPIC = "Fragen zur Klausur"
COURSE = "Algorithmen und Datenstrukturen"


@dataclass
class World:
    professor: Any
    student: Any
    other: Any
    admin: Any
    free_slot: Any
    pending: Any  # the student's request on a slot, awaiting the professor
    confirmed: Any  # the student's confirmed booking
    full_slot: Any  # booked by `other`; the student waits for it
    waiting_entry: Any
    offered_entry: Any  # a place held for the student
    offer_nonce: str
    past_booking: Any  # completed, ready for the student's feedback
    cancelled_slot: Any
    course: Any
    known: list[str] = field(default_factory=list)


async def german_world(database_url: str) -> World:
    professor = await make_user("professor", locale=GERMAN, max_active_bookings_per_student=10, **PROFESSOR)
    student = await make_user(locale=GERMAN, **STUDENT)
    other = await make_user(locale=GERMAN, **OTHER)
    admin = await make_admin("professor", locale=GERMAN, **ADMIN)
    course = await make_course(COURSE, instructor=[professor], learner=[student])
    free_slot = await make_slot(professor, start=in_hours(50), capacity=2, **SLOT)
    await make_slot(professor, start=in_hours(52), course_ids=[course.id], **SLOT)
    pending = await book(student, await make_slot(professor, start=in_hours(54), **SLOT), TOPIC)
    confirmed = await book(student, await make_slot(professor, start=in_hours(56), **SLOT), TOPIC)
    full_slot = await make_slot(professor, start=in_hours(58), capacity=1, **SLOT)
    await book(other, full_slot, TOPIC)
    offered_slot = await make_slot(professor, start=in_hours(60), capacity=1, **SLOT)
    held = await book(other, offered_slot, TOPIC)
    past = await book(student, await make_slot(professor, start=in_hours(62), **SLOT), TOPIC)
    cancelled_slot = await make_slot(professor, start=in_hours(64), **SLOT)
    async with provide_services() as services:
        await services.bookings.confirm(professor, confirmed.id)
        await services.bookings.confirm(professor, past.id)
        waiting_entry = await services.waitlist.join_slot(student, full_slot.id)
        offered_entry = await services.waitlist.join_slot(student, offered_slot.id)
    async with provide_services() as services:
        await services.bookings.cancel(other, held.id)
    async with provide_services() as services:
        await services.slots.cancel_slot(professor, cancelled_slot.id, "Krankheit")
    shift_into_past(database_url, past.slot_id, hours=2)
    async with provide_services() as services:
        from app.domain.consultations.models import BookingStatus

        await services.bookings.mark_outcome(professor, past.id, BookingStatus.COMPLETED)
    with psycopg.connect(database_url) as conn:
        (nonce,) = conn.execute(
            "SELECT offer_nonce FROM waitlist_entry WHERE id = %s AND status = 'offered'", (offered_entry.id,)
        ).fetchone()  # type: ignore[misc]
    people = (professor, student, other, admin)
    known = [
        *(value for person in people for value in (person.full_name, person.username, person.email)),
        *(value for person in people for value in (person.first_name, person.last_name)),
        *PROFESSOR.values(),
        *SLOT.values(),
        TOPIC,
        COURSE,
        "Krankheit",
    ]
    return World(
        professor=professor,
        student=student,
        other=other,
        admin=admin,
        free_slot=free_slot,
        pending=pending,
        confirmed=confirmed,
        full_slot=full_slot,
        waiting_entry=waiting_entry,
        offered_entry=offered_entry,
        offer_nonce=str(nonce),
        past_booking=past,
        cancelled_slot=cancelled_slot,
        course=course,
        known=known,
    )


def signed_action(world: World, action: LinkAction, booking: Any, recipient: Any) -> str:
    settings = get_settings()
    link = ActionLink(action, booking.id, recipient.id, 1, link_expiry(booking.start_time, utcnow()))
    return action_url("", link, settings.secret_key)


def pages_for(world: World) -> dict[str, list[tuple[str, str]]]:
    """Who reads which page: role -> [(route template, concrete path)]."""
    settings = get_settings()
    p, s = world.professor.id, world.student.id
    week = (world.free_slot.start_time + timedelta(days=7)).date().isoformat()
    anonymous = [
        ("/", "/"),
        ("/login", "/login"),
        ("/register", "/register"),
        ("/account/unlock", unlock_url(world.student, settings).removeprefix(settings.app_url)),
        ("/account/verify", verify_url(world.other, settings).removeprefix(settings.app_url)),
        ("/account/verify", "/account/verify?t=broken"),
        ("/auth/google/callback", "/auth/google/callback?state=unknown&code=x"),
        ("/auth/google/choose", "/auth/google/choose"),
        ("/actions/{token:str}", signed_action(world, LinkAction.CONFIRM, world.pending, world.professor)),
        ("/actions/{token:str}", signed_action(world, LinkAction.DECLINE, world.pending, world.professor)),
        ("/actions/{token:str}", signed_action(world, LinkAction.MANAGE, world.confirmed, world.student)),
        ("/actions/{token:str}", signed_action(world, LinkAction.CANCEL, world.confirmed, world.student)),
        ("/actions/{token:str}", "/actions/forged"),
        ("/embed/professors/{professor_id:uuid}", f"/embed/professors/{p}"),
    ]
    student = [
        ("/", "/"),
        ("/settings", "/settings"),
        ("/professors", "/professors"),
        ("/professors", "/professors?q=Zofia"),
        ("/professors", "/professors?q=niemand"),
        ("/professors/{professor_id:uuid}", f"/professors/{p}"),
        ("/professors/{professor_id:uuid}", f"/professors/{p}?week={week}"),
        ("/professors/{professor_id:uuid}", f"/professors/{world.other.id}"),  # not a professor: the error page
        ("/slots/{slot_id:uuid}/book", f"/slots/{world.free_slot.id}/book"),
        ("/slots/{slot_id:uuid}/book", f"/slots/{world.full_slot.id}/book"),
        ("/bookings", "/bookings"),
        ("/bookings/{booking_id:uuid}", f"/bookings/{world.pending.id}"),
        ("/bookings/{booking_id:uuid}", f"/bookings/{world.confirmed.id}"),
        ("/bookings/{booking_id:uuid}", f"/bookings/{world.past_booking.id}"),
        ("/waitlist", "/waitlist"),
        ("/waitlist/{entry_id:uuid}/accept", f"/waitlist/{world.offered_entry.id}/accept?t={world.offer_nonce}"),
        ("/waitlist/{entry_id:uuid}/accept", f"/waitlist/{world.offered_entry.id}/accept?t=forged"),
        ("/embed/professors/{professor_id:uuid}", f"/embed/professors/{p}"),
        ("/embed/office-hours", f"/embed/office-hours?professors={p}"),
        ("/dashboard", "/dashboard"),  # a student has none: the refusal page
        ("/settings/data", "/settings/data"),
    ]
    professor = [
        ("/", "/"),
        ("/settings", "/settings"),
        ("/professors", "/professors"),
        ("/professors/{professor_id:uuid}", f"/professors/{p}"),
        ("/bookings", "/bookings"),
        ("/bookings/{booking_id:uuid}", f"/bookings/{world.pending.id}"),
        ("/bookings/{booking_id:uuid}", f"/bookings/{world.confirmed.id}"),
        ("/bookings/{booking_id:uuid}", f"/bookings/{world.past_booking.id}"),
        ("/dashboard", "/dashboard"),
        ("/dashboard/slots-table", "/dashboard/slots-table"),
        ("/dashboard/stats", "/dashboard/stats"),
        ("/dashboard/slots/{slot_id:uuid}/row", f"/dashboard/slots/{world.free_slot.id}/row"),
        ("/dashboard/slots/{slot_id:uuid}/row", f"/dashboard/slots/{world.full_slot.id}/row"),
        ("/dashboard/slots/{slot_id:uuid}/row", f"/dashboard/slots/{world.cancelled_slot.id}/row"),
        ("/dashboard/slots/{slot_id:uuid}/edit", f"/dashboard/slots/{world.free_slot.id}/edit"),
        ("/embed/dashboard", "/embed/dashboard"),
        ("/embed/dashboard", f"/embed/dashboard?course={world.course.id}"),
        ("/embed/courses/{course_id:uuid}/students", f"/embed/courses/{world.course.id}/students"),
        ("/waitlist", "/waitlist"),  # students only: the refusal page
        ("/slots/{slot_id:uuid}/book", f"/slots/{world.free_slot.id}/book"),
    ]
    admin = [
        ("/admin/notifications", "/admin/notifications"),
        ("/admin/notifications", "/admin/notifications?status=all"),
        ("/admin/lti", "/admin/lti"),
        ("/admin", "/admin"),
        ("/admin", "/admin?q=Zofia"),
        ("/admin/users/{user_id:uuid}", f"/admin/users/{s}"),
        ("/admin/audit", "/admin/audit"),
        ("/settings", "/settings"),
        ("/settings/data", "/settings/data"),
    ]
    return {"anonymous": anonymous, "student": student, "professor": professor, "admin": admin}


def web_get_routes(app: Any) -> set[str]:
    return {
        route.path
        for route in app.routes
        if "GET" in getattr(route, "methods", set()) and not OUTSIDE.match(route.path)
    }


def english_on(response: httpx.Response, known: list[str]) -> list[str]:
    return english_in_html(response.text, known)


@pytest.fixture
async def world(database_url: str) -> World:
    return await german_world(database_url)


async def read_all(app: Any, world: World) -> dict[str, list[str]]:
    """Every page as each person sees it, full and as htmx asks for it: path -> English found there."""
    from tests.conftest import asgi_client

    found: dict[str, list[str]] = {}
    people = {"anonymous": None, "student": world.student, "professor": world.professor, "admin": world.admin}
    for role, pages in pages_for(world).items():
        async with asgi_client(app) as client:
            headers = {"Accept-Language": "de-DE,de;q=0.9"} if role == "anonymous" else {"Accept-Language": "en"}
            if people[role] is not None:
                assert (await web_login(client, people[role].username)).status_code == 303
            for _template, path in pages:
                for extra in ({}, HTMX):
                    response = await client.get(path, headers={**headers, **extra})
                    assert response.status_code < 500, (role, path, response.status_code)
                    assert response.headers.get("content-language", "de") == "de", (role, path)
                    english = english_on(response, world.known)
                    if english:
                        found[f"{role} GET {path}{' (htmx)' if extra else ''} -> {response.status_code}"] = english
    return found


def test_every_web_page_is_rendered_in_german_here(app: Any) -> None:
    rendered = {template for pages in _templates_only().values() for template in pages}
    missing = web_get_routes(app) - rendered - set(NOT_RENDERED_HERE)
    assert missing == set(), "render these pages in German here, or say in NOT_RENDERED_HERE why not"


def _templates_only() -> dict[str, list[str]]:
    """The route templates pages_for renders (read from its source, without making a world)."""
    import inspect

    source = inspect.getsource(pages_for)
    return {"all": re.findall(r'\("(/[^"]*)",', source)}


async def test_a_german_reader_meets_no_english_on_any_page_or_fragment(app: Any, world: World) -> None:
    found = await read_all(app, world)
    assert found == {}, "\n".join(f"{page}: {words}" for page, words in found.items())


async def test_pages_show_dates_the_german_way(client: Any, world: World) -> None:
    await web_login(client, world.student.username)
    page = (await client.get("/bookings")).text
    assert re.search(
        r"\b(Mo|Di|Mi|Do|Fr|Sa|So)\., \d{1,2}\. (Jan|Feb|März|Apr|Mai|Juni|Juli|Aug|Sept|Okt|Nov|Dez)", page
    ), page


async def test_the_csv_export_speaks_german(client: Any, world: World) -> None:
    await web_login(client, world.professor.username)
    response = await client.get("/dashboard/export.csv", headers={"Accept-Language": "en"})
    assert response.status_code == 200
    assert response.text.splitlines()[0] == (
        "Buchungs-ID,Beginn,Ende,Status,Benutzername,Vorname,Nachname,E-Mail,Thema,Gebucht am,Abgesagt am,"
        "Abgesagt von,Absagegrund,Ort"
    )


async def test_the_check_finds_english_on_an_english_readers_page(client: Any) -> None:
    """The same check on an English reader's page: it would notice words left in English."""
    await web_login(client, (await make_user(locale="en")).username)
    assert english_in_html((await client.get("/bookings")).text) != []


def answers_for(world: World) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """What htmx posts and gets back as fragments (rows, toasts, form errors, refusals): role -> [(path, form)]."""
    day = (world.free_slot.start_time + timedelta(days=10)).date()
    bulk = {
        "start_date": day.isoformat(),
        "end_date": (day + timedelta(days=6)).isoformat(),
        "weekdays": ["0", "2"],
        "day_start": "09:00",
        "day_end": "10:00",
        "duration_minutes": "30",
    }
    return {
        "anonymous": [
            ("/login", {"username": "niemand", "password": "falsch"}),
            ("/register", {"username": "", "email": "kaputt", "password": "kurz", "user_type": "student"}),
        ],
        "student": [
            (f"/slots/{world.free_slot.id}/book", {"topic": TOPIC}),
            (f"/slots/{world.free_slot.id}/book", {"topic": TOPIC}),  # again: refused
            (f"/slots/{world.cancelled_slot.id}/waitlist", {}),  # refused
            (f"/slots/{world.full_slot.id}/waitlist/leave", {}),
            (f"/slots/{world.full_slot.id}/waitlist", {}),
            (f"/bookings/{world.past_booking.id}/feedback", {"rating": "9"}),  # a field error
            (f"/bookings/{world.past_booking.id}/feedback", {"rating": "5", "student_feedback": "Danke"}),
            (f"/bookings/{world.pending.id}/reschedule", {"slot_id": str(world.full_slot.id)}),  # refused
            (f"/bookings/{world.pending.id}/cancel", {"reason": "Krankheit"}),
            (f"/waitlist/{world.offered_entry.id}/pass", {}),
            ("/settings/profile", {"first_name": "", "email": "kaputt", "timezone": "Nirgendwo/Nie"}),
            ("/settings/password", {"current_password": "falsch", "new_password": "kurz"}),
        ],
        "professor": [
            ("/dashboard/slots", {}),  # every field missing
            ("/dashboard/slots", {"date": day.isoformat(), "start": "12:00", "end": "11:00"}),
            ("/dashboard/slots", {"date": day.isoformat(), "start": "14:00", "end": "14:30", **SLOT}),
            ("/dashboard/slots/preview", bulk),
            ("/dashboard/slots/bulk", bulk),
            ("/dashboard/slots/bulk", {**bulk, "duration_minutes": "0"}),
            (f"/dashboard/slots/{world.free_slot.id}", {"capacity": "0"}),
            (f"/dashboard/bookings/{world.confirmed.id}/complete", {}),  # not started yet: refused
            (f"/bookings/{world.confirmed.id}/notes", {"professor_notes": "Notiz"}),
            (f"/dashboard/slots/{world.free_slot.id}/cancel", {"reason": ""}),  # a reason is needed
            (f"/dashboard/slots/{world.free_slot.id}/cancel", {"reason": "Krankheit"}),
        ],
    }


async def test_a_german_reader_meets_no_english_in_what_htmx_gets_back(app: Any, world: World) -> None:
    from tests.conftest import asgi_client
    from tests.helpers import csrf_headers

    found: dict[str, list[str]] = {}
    people = {"anonymous": None, "student": world.student, "professor": world.professor}
    for role, answers in answers_for(world).items():
        async with asgi_client(app) as client:
            await client.get("/login", headers={"Accept-Language": "de-DE"})
            if people[role] is not None:
                assert (await web_login(client, people[role].username)).status_code == 303
            for path, form in answers:
                headers = {**csrf_headers(client), **HTMX, "Accept-Language": "de-DE"}
                response = await client.post(path, data=form, headers=headers)
                assert response.status_code < 500, (role, path, response.status_code)
                english = english_in_html(response.text, [*world.known, "Danke", "Notiz", "niemand"])
                if english:
                    found[f"{role} POST {path} {form} -> {response.status_code}"] = english
    assert found == {}, "\n".join(f"{answer}: {words}" for answer, words in found.items())
