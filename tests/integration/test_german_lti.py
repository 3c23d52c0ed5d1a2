"""A launch from an LMS that speaks German (launch_presentation.locale "de-DE") opens the embedded pages in German for
a new account: the learner's week, the instructor's dashboard with the course's students, the deep-linking chooser."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from app.config import get_settings
from app.lib.jwks import jwks_cache
from tests.conftest import free_port
from tests.fake_lms import CLAIM, FakeLms, FakeLmsServer, Person, instructor, learner, register_platform
from tests.integration.german import english_in_html
from tests.integration.test_lti import FRAMED, TOOL, launch_as

GERMAN_LMS = {f"{CLAIM}launch_presentation": {"locale": "de-DE", "document_target": "iframe"}}


@pytest.fixture
async def german_lms(database_url: str) -> AsyncIterator[FakeLms]:
    """A platform of its own, registered with the tool, whose launches say the person reads German."""
    jwks_cache.forget()
    server = FakeLmsServer(free_port(), get_settings().app_url)
    platform = server.start()
    await register_platform(platform)
    platform.overrides.update(GERMAN_LMS)
    yield platform
    server.stop()


def known(*people: Person) -> list[str]:
    return [value for person in people for value in (person.given_name, person.family_name, person.email or "")] + [
        f"{person.given_name} {person.family_name}" for person in people
    ]


async def open_landing(client: httpx.AsyncClient, lms: FakeLms, person: Person) -> httpx.Response:
    launched = await launch_as(client, lms, person)
    assert launched.status_code == 303, launched.text
    page = await client.get(f"{TOOL}{launched.headers['location']}", headers=FRAMED)
    assert page.status_code == 200, page.text
    return page


async def test_a_german_learner_launch_opens_the_week_in_german(
    client: Any, other_client: Any, german_lms: FakeLms, database_url: str
) -> None:
    teacher, student = instructor(), learner()
    await launch_as(other_client, german_lms, teacher)
    page = await open_landing(client, german_lms, student)
    assert '<html lang="de"' in page.text
    assert english_in_html(page.text, known(teacher, student)) == []
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT u.locale FROM user_account u JOIN lti_identity i ON i.user_id = u.id WHERE i.subject = %s",
            (student.sub,),
        ).fetchone()
    assert row == ("de",)


async def test_a_german_instructor_launch_opens_the_dashboard_and_course_students_in_german(
    client: Any, german_lms: FakeLms, database_url: str
) -> None:
    teacher = instructor()
    page = await open_landing(client, german_lms, teacher)
    assert "<h1>Übersicht</h1>" in page.text
    assert english_in_html(page.text, known(teacher)) == []
    with psycopg.connect(database_url) as conn:
        (course_id,) = conn.execute("SELECT course_id FROM lti_context").fetchone()  # type: ignore[misc]
    students = await client.get(f"{TOOL}/embed/courses/{course_id}/students", headers=FRAMED)
    assert students.status_code == 200
    assert english_in_html(students.text, known(teacher)) == []
    reminded = await client.post(
        f"{TOOL}/embed/courses/{course_id}/remind",
        headers={**FRAMED, "x-csrftoken": client.cookies["csrftoken"], "hx-request": "true"},
    )
    assert "0 Studierende ohne Buchung wurden per E-Mail eingeladen." in reminded.text


async def test_a_german_instructor_places_office_hours_with_a_chooser_in_german(
    client: Any, german_lms: FakeLms
) -> None:
    german_lms.deep_linking_request()
    teacher = dataclasses.replace(instructor(), sub="lms-instructor-2")
    page = await open_landing(client, german_lms, teacher)
    assert "Wessen Sprechstunden?" in page.text
    assert english_in_html(page.text, known(teacher)) == []
    nobody = await client.post(
        str(page.url).split("?")[0], data={"title": "", "_csrf_token": client.cookies["csrftoken"]}, headers=FRAMED
    )
    assert nobody.status_code in (400, 422), nobody.status_code
    assert "Wählen Sie mindestens eine Lehrperson." in nobody.text
    assert english_in_html(nobody.text, known(teacher)) == []


def test_a_roster_problem_kept_in_english_is_told_to_a_german_instructor_in_german() -> None:
    from app.domain.lti.roster import CREDENTIALS_REFUSED, roster_problem
    from app.lib.i18n import use_locale

    stored = CREDENTIALS_REFUSED % {"status": "HTTP 401: invalid_client"}
    with use_locale("de"):
        told = roster_problem(stored)
    assert told.startswith("Die Plattform hat die Zugangsdaten des Tools abgelehnt (HTTP 401: invalid_client).")
    with use_locale("en"):
        assert roster_problem(stored) == stored
