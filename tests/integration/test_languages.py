"""English and German: chosen per person, negotiated before sign-in, in pages, e-mails and the LMS; the API stays
English with stable codes."""

from __future__ import annotations

from typing import Any

import psycopg

from app.worker import deliver_notification
from tests.conftest import Mailbox
from tests.helpers import api_token, book, csrf_headers, make_slot, make_user, web_login

GERMAN_BROWSER = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}


async def test_a_german_browser_gets_german_before_sign_in(client: Any) -> None:
    response = await client.get("/login", headers=GERMAN_BROWSER)
    assert response.headers["content-language"] == "de"
    assert '<html lang="de"' in response.text
    assert "<h1>Anmelden</h1>" in response.text
    assert "Noch kein Konto?" in response.text


async def test_a_browser_asking_for_neither_language_gets_english(client: Any) -> None:
    response = await client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert (response.headers["content-language"], "<h1>Sign in</h1>" in response.text) == ("en", True)


async def test_registering_in_a_german_browser_keeps_german_for_the_account(client: Any, database_url: str) -> None:
    await client.get("/register", headers=GERMAN_BROWSER)
    response = await client.post(
        "/register",
        data={
            "username": "lena",
            "email": "lena@uni.example",
            "password": "ein-langes-passwort",
            "user_type": "student",
        },
        headers={**csrf_headers(client), **GERMAN_BROWSER},
    )
    assert response.status_code == 303
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT locale FROM user_account WHERE username = 'lena'").fetchone() == ("de",)


async def test_a_person_who_chose_german_reads_german_whatever_the_browser_says(client: Any) -> None:
    student = await make_user(locale="de")
    await web_login(client, student.username)
    page = await client.get("/bookings", headers={"Accept-Language": "en"})
    assert "<h1>Meine Buchungen</h1>" in page.text


async def test_switching_back_to_english_is_immediate(client: Any) -> None:
    student = await make_user(locale="de")
    await web_login(client, student.username)
    saved = await client.post(
        "/settings/profile",
        data={
            "first_name": student.first_name,
            "last_name": student.last_name,
            "email": student.email,
            "timezone": student.timezone,
            "locale": "en",
        },
        headers=csrf_headers(client),
    )
    assert saved.status_code == 303
    assert "<h1>My bookings</h1>" in (await client.get("/bookings")).text


async def test_the_api_answers_in_english_with_a_stable_code_whatever_the_language(client: Any) -> None:
    student = await make_user(locale="de")
    response = await client.get(
        "/api/v1/bookings/00000000-0000-0000-0000-000000000000",
        headers={**await api_token(client, student.username), **GERMAN_BROWSER},
    )
    assert (response.status_code, response.headers["content-language"], response.json()) == (
        404,
        "en",
        {"status_code": 404, "code": "not_found", "detail": "Booking not found."},
    )


async def test_each_party_gets_the_booking_mail_in_their_own_language(database_url: str, mailbox: Mailbox) -> None:
    professor = await make_user("professor", auto_confirm=True, first_name="Grace", last_name="Hopper", locale="en")
    student = await make_user(first_name="Lena", last_name="Schmidt", locale="de", timezone="Europe/Berlin")
    await book(student, await make_slot(professor))
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT id FROM notification ORDER BY created_at, id").fetchall()
    assert [await deliver_notification({}, notification_id=str(row_id)) for (row_id,) in rows] == ["sent", "sent"]
    (to_professor,) = mailbox.to(professor.email)
    (to_student,) = mailbox.to(student.email)
    assert str(to_professor["Subject"]).startswith("New booking: Lena Schmidt on ")
    assert str(to_student["Subject"]).startswith("Bestätigt: Sprechstunde bei Grace Hopper am ")
    text = to_student.get_body(("plain",)).get_content()
    assert text.startswith("Hallo Lena,")
    assert "Ihre Sprechstunde bei Grace Hopper ist bestätigt." in text
    assert '<html lang="de">' in to_student.get_body(("html",)).get_content()


async def test_a_visitor_picks_german_in_the_header_and_keeps_it_on_this_browser(client: Any) -> None:
    await client.get("/login")
    response = await client.post("/language", data={"locale": "de", "next": "/register"}, headers=csrf_headers(client))
    assert (response.status_code, response.headers["location"]) == (303, "/register")
    assert "<h1>Konto anlegen</h1>" in (await client.get("/register", headers={"Accept-Language": "en"})).text


async def test_picking_a_language_when_signed_in_saves_it_in_the_profile(client: Any, database_url: str) -> None:
    student = await make_user(locale="en")
    await web_login(client, student.username)
    response = await client.post("/language", data={"locale": "de", "next": "/bookings"}, headers=csrf_headers(client))
    assert response.status_code == 303
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT locale FROM user_account WHERE id = %s", (student.id,)).fetchone() == ("de",)


async def test_an_unknown_language_changes_nothing(client: Any) -> None:
    await client.get("/login")
    response = await client.post("/language", data={"locale": "fr", "next": "/login"}, headers=csrf_headers(client))
    assert (response.status_code, "oh_lang" in response.headers.get("set-cookie", "")) == (303, False)


async def test_a_refusal_from_the_rules_reads_german_on_the_web(client: Any) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor, capacity=1)
    await book(await make_user(), slot)
    student = await make_user(locale="de")
    await web_login(client, student.username)
    response = await client.post(f"/slots/{slot.id}/book", headers={**csrf_headers(client), "HX-Request": "true"})
    assert response.status_code == 409
    assert "Dieser Termin ist voll." in response.text
