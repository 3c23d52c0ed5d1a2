"""What an outside review found (ASVS 4.0.3 level 2 as the yardstick), each fault with the test that shows it fixed."""

from __future__ import annotations

import csv
import dataclasses
import io
import struct
import time
import zlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from PIL import Image

import app.lib.http as http
from app.config import get_settings
from app.worker import deliver_notification
from tests.conftest import Mailbox
from tests.helpers import PASSWORD, api_token, book, csrf_headers, in_hours, make_slot, make_user, web_login

HTMX = {"HX-Request": "true"}


# -- Open redirects ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/%09/127.0.0.1:8301/x", "/%5C%5Cevil.example", "/%E3%80%82evil"])
async def test_signing_in_never_redirects_off_site(client: Any, target: str) -> None:
    user = await make_user()
    page = await client.get(f"/login?next={target}")
    assert page.status_code == 200
    await client.get("/login")
    response = await client.post(
        f"/login?next={target}",
        data={"username": user.username, "password": PASSWORD, "next": target.replace("%09", "\t")},
        headers=csrf_headers(client),
    )
    assert (response.status_code, response.headers["location"]) == (303, "/professors")


# -- Only declared fields reach a row ----------------------------------------------------------------------------


async def test_registration_writes_only_the_fields_it_declares(client: Any, database_url: str) -> None:
    await client.get("/register")
    response = await client.post(
        "/register",
        data={
            "username": "mallory",
            "email": "mallory@example.org",
            "password": "a-long-passphrase",
            "user_type": "student",
            "profile_picture": "/media/someone-elses.png",
            "google_sub": "109876543210",
            "is_admin": "true",
            "is_active": "true",
        },
        headers=csrf_headers(client),
    )
    assert response.status_code == 303
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT u.google_sub, u.is_admin, p.profile_picture FROM user_account u JOIN profile p ON p.user_id = u.id "
            "WHERE u.username = 'mallory'"
        ).fetchone()
    assert row == (None, False, None)


async def test_the_service_drops_undeclared_fields_whoever_calls_it() -> None:
    user = await make_user(is_admin=True, google_sub="109876543211", profile_picture="/media/x.png")
    assert (user.is_admin, user.google_sub, user.profile.profile_picture) == (False, None, None)


async def test_a_number_field_given_words_is_refused_naming_it(client: Any) -> None:
    professor = await make_user("professor")
    await web_login(client, professor.username)
    response = await client.post(
        "/settings/profile",
        data={"first_name": "Ada", "booking_notice_hours": "soon"},
        headers={**csrf_headers(client), **HTMX},
    )
    assert response.status_code == 422
    assert (
        '<small id="err-booking_notice_hours" class="field-error" hx-swap-oob="true">'
        '<span aria-hidden="true">⚠ </span>Enter a whole number.</small>'
    ) in response.text


@pytest.mark.parametrize("name", ["Eve\u0000", "Eve\r\nBcc: victim@example.org"])
async def test_a_control_character_in_a_name_is_refused_naming_the_field(client: Any, name: str) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": "eve-the-second", "email": "eve@example.org", "password": PASSWORD, "first_name": name},
    )
    assert response.status_code == 422
    assert response.json()["extra"] == [{"key": "first_name", "message": "Use one line of plain text."}]


async def test_refused_registrations_are_throttled_per_client(client: Any, database_url: str) -> None:
    add_failures(database_url, "register:127.0.0.1", get_settings().login_failures_lock_client)
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": "probe-1", "email": "probe@example.org", "password": PASSWORD},
    )
    assert response.status_code == 429
    assert response.json()["detail"] == "Too many failed attempts. Try again in 15 minutes."


# -- Sign-in timing, throttling and locking -------------------------------------------------------------------------


async def fastest_sign_in(client: Any, username: str, attempts: int = 3) -> float:
    times = []
    for _ in range(attempts):
        started = time.perf_counter()
        response = await client.post("/api/v1/auth/token", json={"username": username, "password": "wrong-password!"})
        times.append(time.perf_counter() - started)
        assert response.status_code == 401
    return min(times)


@pytest.fixture
def full_cost_password_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """argon2id with its real parameters, as in production (the suite otherwise hashes at the cheapest)."""
    monkeypatch.setenv("TEST_CHEAP_PASSWORD_HASHES", "false")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.usefixtures("full_cost_password_hashes")
async def test_a_wrong_password_and_an_unknown_account_take_as_long(client: Any) -> None:
    """Both verify a password hash; the unknown account's answer is measured against the known one in this run."""
    user = await make_user()
    known = await fastest_sign_in(client, user.username)
    unknown = await fastest_sign_in(client, "nobody-by-this-name")
    assert unknown > 0.6 * known, (known, unknown)


def add_failures(database_url: str, key: str, count: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO auth_failure (id, key, created_at, updated_at) "
            "SELECT gen_random_uuid(), %s, now(), now() FROM generate_series(1, %s)",
            (key, count),
        )


async def test_an_account_is_locked_only_after_many_failures_and_its_owner_is_mailed_an_unlock_link(
    client: Any, database_url: str, mailbox: Mailbox
) -> None:
    victim = await make_user()
    limit = get_settings().login_failures_lock_account
    add_failures(database_url, f"account:{victim.id}", limit - 1)  # from many addresses, earlier
    last = await client.post("/api/v1/auth/token", json={"username": victim.username, "password": "wrong-password!"})
    assert last.status_code == 401
    locked = await client.post("/api/v1/auth/token", json={"username": victim.username, "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.json()["detail"].startswith("This account is locked after many failed sign-ins")
    with psycopg.connect(database_url) as conn:
        (notification_id,) = conn.execute(
            "SELECT id FROM notification WHERE kind = 'account_locked' AND user_id = %s", (victim.id,)
        ).fetchone()
    assert await deliver_notification({}, notification_id=str(notification_id)) == "sent"
    (mail,) = mailbox.to(victim.email)
    text = mail.get_body(("plain",)).get_content()
    link = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("Unlock:"))
    path = link.removeprefix(get_settings().app_url)

    page = await client.get(path)  # a mail scanner's GET changes nothing
    assert page.status_code == 200
    still_locked = await client.post("/api/v1/auth/token", json={"username": victim.username, "password": PASSWORD})
    assert still_locked.status_code == 429
    token = path.split("t=", 1)[1]
    unlocked = await client.post("/account/unlock", data={"t": token}, headers=csrf_headers(client))
    assert (unlocked.status_code, unlocked.headers["location"]) == (303, "/login")
    again = await client.post("/api/v1/auth/token", json={"username": victim.username, "password": PASSWORD})
    assert again.status_code == 200


async def test_a_locked_account_can_still_sign_in_on_a_device_it_signed_in_on_before(
    client: Any, database_url: str
) -> None:
    student = await make_user()
    signed_in = await web_login(client, student.username)
    assert signed_in.status_code == 303
    assert client.cookies.get("oh_device")
    await client.post("/logout", headers=csrf_headers(client))
    add_failures(database_url, f"account:{student.id}", get_settings().login_failures_lock_account)
    again = await web_login(client, student.username)
    assert (again.status_code, again.headers["location"]) == (303, "/professors")


async def test_an_attacker_is_slowed_down_on_the_account_without_slowing_its_owner_elsewhere(
    client: Any, database_url: str
) -> None:
    student = await make_user()
    settings = get_settings()
    add_failures(database_url, f"pair:{student.id}:203.0.113.9", settings.login_failures_slow_after + 3)
    from app.domain.accounts.signin import SignInThrottle, ThrottleKeys
    from app.services import provide_services

    async with provide_services() as services:
        throttle = SignInThrottle(services.session, settings)
        attacker = await throttle.before_attempt(ThrottleKeys.of(str(student.id), "203.0.113.9"), known_device=False)
        owner = await throttle.before_attempt(ThrottleKeys.of(str(student.id), "198.51.100.7"), known_device=False)
    assert (attacker, owner) == (2.0, 0.0)


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    from ipaddress import ip_network

    class Connection:
        def __init__(self, peer: str, forwarded: str) -> None:
            self.client = type("Client", (), {"host": peer})()
            self.headers = {"x-forwarded-for": forwarded}

    untrusted = Connection("127.0.0.1", "203.0.113.5")
    assert http.client_address(untrusted) == "127.0.0.1"  # type: ignore[arg-type]
    settings = dataclasses.replace(get_settings(), trusted_proxies=(ip_network("10.0.0.0/8"),))
    monkeypatch.setattr(http, "get_settings", lambda: settings)
    proxied = Connection("10.1.2.3", "198.51.100.1, 203.0.113.5, 10.9.9.9")
    assert http.client_address(proxied) == "203.0.113.5"  # type: ignore[arg-type]
    assert http.client_address(untrusted) == "127.0.0.1"  # type: ignore[arg-type]


# -- Proof of an address before anything is granted because of it ---------------------------------------------


async def mailed_link(database_url: str, mailbox: Mailbox, user_id: Any, label: str) -> str:
    """Deliver the newest mail of `kind` to the user and return the path of the link labelled `label` in it."""
    with psycopg.connect(database_url) as conn:
        (notification_id, address) = conn.execute(  # type: ignore[misc]
            "SELECT n.id, u.email FROM notification n JOIN user_account u ON u.id = n.user_id "
            "WHERE n.user_id = %s AND n.kind = 'email_verification' ORDER BY n.created_at DESC LIMIT 1",
            (user_id,),
        ).fetchone()
    assert await deliver_notification({}, notification_id=str(notification_id)) == "sent"
    text = mailbox.to(address)[-1].get_body(("plain",)).get_content()
    link = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith(f"{label}:"))
    return link.removeprefix(get_settings().app_url)


def verified_at(database_url: str, user_id: Any) -> Any:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT email_verified_at FROM user_account WHERE id = %s", (user_id,)).fetchone()[0]


async def test_a_registration_is_mailed_a_link_that_proves_the_address_once(
    client: Any, database_url: str, mailbox: Mailbox
) -> None:
    user = await make_user(verified=False)
    assert verified_at(database_url, user.id) is None
    path = await mailed_link(database_url, mailbox, user.id, "Confirm")
    page = await client.get(path)  # a mail scanner's GET changes nothing
    assert (page.status_code, verified_at(database_url, user.id)) == (200, None)
    token = path.split("t=", 1)[1]
    await client.get("/login")
    confirmed = await client.post("/account/verify", data={"t": token}, headers=csrf_headers(client))
    assert (confirmed.status_code, confirmed.headers["location"]) == (303, "/login")
    assert verified_at(database_url, user.id) is not None
    again = await client.post("/account/verify", data={"t": token}, headers=csrf_headers(client))
    assert again.status_code == 410
    assert "This link was used already" in again.text


async def test_a_new_address_must_be_proven_again_and_the_old_link_stops_working(
    client: Any, database_url: str, mailbox: Mailbox
) -> None:
    user = await make_user(verified=False)
    old_link = await mailed_link(database_url, mailbox, user.id, "Confirm")
    changed = await client.patch(
        "/api/v1/me", json={"email": "new-address@uni.example"}, headers=await api_token(client, user.username)
    )
    assert (changed.status_code, changed.json()["email_verified"]) == (200, False)
    await client.get("/login")
    stale = await client.post("/account/verify", data={"t": old_link.split("t=", 1)[1]}, headers=csrf_headers(client))
    assert stale.status_code == 410
    new_link = await mailed_link(database_url, mailbox, user.id, "Confirm")
    assert mailbox.to("new-address@uni.example")
    fresh = await client.post("/account/verify", data={"t": new_link.split("t=", 1)[1]}, headers=csrf_headers(client))
    assert fresh.status_code == 303
    assert verified_at(database_url, user.id) is not None


@pytest.fixture
def signup_domains(monkeypatch: pytest.MonkeyPatch) -> None:
    """Addresses of uni.example make professors, as PROFESSOR_SIGNUP_DOMAINS=uni.example does in production."""
    from app.domain.consultations import slots

    settings = dataclasses.replace(get_settings(), professor_signup_domains=("uni.example",))
    monkeypatch.setattr(slots, "get_settings", lambda: settings)


@pytest.mark.usefixtures("signup_domains")
async def test_a_professor_whose_address_is_unproven_cannot_publish_slots(client: Any, database_url: str) -> None:
    professor = await make_user("professor", verified=False)
    start = in_hours(48)
    body = {"start_time": start.isoformat(), "end_time": (start + timedelta(minutes=30)).isoformat()}
    response = await client.post("/api/v1/slots", json=body, headers=await api_token(client, professor.username))
    assert (response.status_code, response.json()["detail"]) == (
        403,
        f"Verify your e-mail address before publishing slots: follow the link we sent to {professor.email}.",
    )
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM consultation_slot").fetchone() == (0,)


@pytest.mark.usefixtures("signup_domains")
async def test_a_professor_publishes_once_the_address_is_proven(
    client: Any, database_url: str, mailbox: Mailbox
) -> None:
    professor = await make_user("professor", verified=False)
    link = await mailed_link(database_url, mailbox, professor.id, "Confirm")
    await client.get("/login")
    await client.post("/account/verify", data={"t": link.split("t=", 1)[1]}, headers=csrf_headers(client))
    start = in_hours(48)
    body = {"start_time": start.isoformat(), "end_time": (start + timedelta(minutes=30)).isoformat()}
    response = await client.post("/api/v1/slots", json=body, headers=await api_token(client, professor.username))
    assert response.status_code == 201


async def test_an_unproven_student_may_book_and_sees_how_to_get_a_new_link(client: Any, database_url: str) -> None:
    student = await make_user(verified=False)
    slot = await make_slot(await make_user("professor"))
    booked = await client.post(
        f"/api/v1/slots/{slot.id}/bookings", json={"topic": "Exam"}, headers=await api_token(client, student.username)
    )
    assert booked.status_code == 201
    await web_login(client, student.username)
    page = await client.get("/professors")
    assert f"we sent a link to <strong>{student.email}</strong>" in page.text
    resent = await client.post("/settings/verification", data={"next": "/professors"}, headers=csrf_headers(client))
    assert (resent.status_code, resent.headers["location"]) == (303, "/professors")


# -- Ending other sign-ins, and API tokens a person can see and revoke ------------------------------------------


async def signed_in_twice(client: Any, other_client: Any) -> Any:
    user = await make_user()
    assert (await web_login(client, user.username)).status_code == 303
    assert (await web_login(other_client, user.username)).status_code == 303
    return user


async def test_a_password_change_signs_every_other_browser_out(client: Any, other_client: Any) -> None:
    await signed_in_twice(client, other_client)
    changed = await client.post(
        "/settings/password",
        data={"current_password": PASSWORD, "new_password": "a-brand-new-passphrase"},
        headers=csrf_headers(client),
    )
    assert changed.status_code == 303
    assert (await client.get("/settings")).status_code == 200  # this browser stays signed in
    elsewhere = await other_client.get("/settings")
    assert (elsewhere.status_code, elsewhere.headers["location"]) == (303, "/login?next=/settings")


async def test_a_password_change_on_the_web_revokes_every_api_token(client: Any) -> None:
    user = await make_user()
    token = await api_token(client, user.username)
    await web_login(client, user.username)
    await client.post(
        "/settings/password",
        data={"current_password": PASSWORD, "new_password": "a-brand-new-passphrase"},
        headers=csrf_headers(client),
    )
    assert (await client.get("/api/v1/me", headers=token)).status_code == 401


async def test_a_password_change_through_the_api_keeps_only_the_calling_token(client: Any) -> None:
    user = await make_user()
    calling, other = await api_token(client, user.username), await api_token(client, user.username)
    changed = await client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "a-brand-new-passphrase"},
        headers=calling,
    )
    assert changed.status_code == 204
    assert (await client.get("/api/v1/me", headers=calling)).status_code == 200
    assert (await client.get("/api/v1/me", headers=other)).status_code == 401


async def test_signing_out_everywhere_else_ends_other_sessions_and_tokens(client: Any, other_client: Any) -> None:
    user = await signed_in_twice(client, other_client)
    token = await api_token(client, user.username)
    response = await client.post("/settings/sign-out-everywhere", headers=csrf_headers(client))
    assert (response.status_code, response.headers["location"]) == (303, "/settings")
    assert (await client.get("/settings")).status_code == 200
    assert (await other_client.get("/settings")).status_code == 303
    assert (await client.get("/api/v1/me", headers=token)).status_code == 401


async def test_a_token_is_marked_used_once_within_ten_minutes(client: Any, database_url: str) -> None:
    user = await make_user()
    headers = await api_token(client, user.username)

    def last_used() -> Any:
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT last_used_at FROM api_token WHERE user_id = %s", (user.id,)).fetchone()
        assert row is not None
        return row[0]

    assert last_used() is None
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    first = last_used()
    assert first is not None
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    assert last_used() == first


async def test_tokens_are_listed_by_name_with_their_dates_and_never_their_value(client: Any) -> None:
    user = await make_user()
    created = await client.post(
        "/api/v1/auth/token",
        json={"username": user.username, "password": PASSWORD, "name": "Timetable script", "expires_in_days": 7},
    )
    assert created.status_code == 200
    value = created.json()["token"]
    listed = await client.get("/api/v1/me/tokens", headers={"Authorization": f"Bearer {value}"})
    (token,) = listed.json()
    assert (token["name"], token["current"], token["id"]) == ("Timetable script", True, created.json()["id"])
    assert token["last_used_at"] is not None  # this very call used it
    assert token["expires_at"] == created.json()["expires_at"]
    assert value not in listed.text


async def test_a_revoked_token_stops_working_and_someone_elses_is_not_found(client: Any) -> None:
    user, other = await make_user(), await make_user()
    mine, spare = await api_token(client, user.username), await api_token(client, user.username)
    theirs = await api_token(client, other.username)
    (their_token,) = (await client.get("/api/v1/me/tokens", headers=theirs)).json()
    refused = await client.delete(f"/api/v1/me/tokens/{their_token['id']}", headers=mine)
    assert (refused.status_code, refused.json()["detail"]) == (404, "Token not found.")
    spare_id = next(t["id"] for t in (await client.get("/api/v1/me/tokens", headers=spare)).json() if t["current"])
    assert (await client.delete(f"/api/v1/me/tokens/{spare_id}", headers=mine)).status_code == 204
    assert (await client.get("/api/v1/me", headers=spare)).status_code == 401
    assert (await client.get("/api/v1/me", headers=theirs)).status_code == 200


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"name": "", "expires_in_days": 30},
            [{"key": "name", "message": 'Name the token after what uses it, e.g. "Timetable script".'}],
        ),
        (
            {"name": "Script", "expires_in_days": 400},
            [{"key": "expires_in_days", "message": "Choose from 1 to 365 days."}],
        ),
    ],
)
async def test_a_token_needs_a_name_and_a_lifetime_of_a_year_at_most(
    client: Any, body: dict[str, Any], errors: list[dict[str, str]]
) -> None:
    user = await make_user()
    response = await client.post("/api/v1/auth/token", json={"username": user.username, "password": PASSWORD, **body})
    assert (response.status_code, response.json()["extra"]) == (422, errors)


async def test_a_token_made_on_the_settings_page_is_shown_once_and_works(client: Any) -> None:
    user = await make_user()
    await web_login(client, user.username)
    response = await client.post(
        "/settings/tokens",
        data={"name": "Phone app", "expires_in_days": "90"},
        headers={**csrf_headers(client), **HTMX},
    )
    assert response.status_code == 200
    value = response.text.split('id="new-token-value" readonly value="', 1)[1].split('"', 1)[0]
    assert (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {value}"})).status_code == 200
    page = await client.get("/settings")
    assert "Phone app" in page.text
    assert value not in page.text


# -- Cross-site requests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin_headers",
    [{"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"}],
)
async def test_a_form_sent_from_another_site_is_refused_even_with_a_valid_token(
    client: Any, database_url: str, origin_headers: dict[str, str]
) -> None:
    user = await make_user()
    await web_login(client, user.username)
    response = await client.post(
        "/settings/profile", data={"first_name": "Mallory"}, headers={**csrf_headers(client), **origin_headers}
    )
    assert (response.status_code, response.text) == (403, "Refused: this form was sent from another site.")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT first_name FROM user_account WHERE id = %s", (user.id,)).fetchone() != ("Mallory",)


async def test_a_form_sent_from_this_site_is_accepted(client: Any) -> None:
    user = await make_user()
    await web_login(client, user.username)
    response = await client.post(
        "/settings/profile",
        data={"first_name": "Ada"},
        headers={**csrf_headers(client), "sec-fetch-site": "same-origin", "origin": "http://testserver.local"},
    )
    assert response.status_code == 303


def test_the_csrf_cookie_is_a_host_cookie_on_https() -> None:
    from app.lib.csrf import csrf_cookie_name

    https = dataclasses.replace(get_settings(), app_url="https://office-hours.uni.example")
    assert (csrf_cookie_name(https), csrf_cookie_name(get_settings())) == ("__Host-csrftoken", "csrftoken")


# -- Malformed requests are refused, not crashed on ---------------------------------------------------------------


async def test_json_nested_too_deep_is_a_400(client: Any) -> None:
    body = b'{"username": ' + b"[" * 100_000 + b"]" * 100_000 + b', "password": "x"}'
    response = await client.post("/api/v1/auth/token", content=body, headers={"content-type": "application/json"})
    assert (response.status_code, response.json()) == (
        400,
        {"status_code": 400, "code": "bad_request", "detail": "The JSON body is nested more than 64 levels deep."},
    )


async def test_json_that_is_not_utf8_is_a_400(client: Any) -> None:
    body = b'{"username": "\xff\xfe", "password": "x"}'
    response = await client.post("/api/v1/auth/token", content=body, headers={"content-type": "application/json"})
    assert (response.status_code, response.json()) == (
        400,
        {"status_code": 400, "code": "bad_request", "detail": "The request body is not valid UTF-8."},
    )


async def test_a_control_character_in_a_slot_text_is_refused_naming_the_field(client: Any) -> None:
    professor = await make_user("professor")
    start = in_hours(48)
    response = await client.post(
        "/api/v1/slots",
        json={
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(minutes=30)).isoformat(),
            "location": "Room\u0000 1",
        },
        headers=await api_token(client, professor.username),
    )
    assert response.status_code == 422
    assert response.json()["extra"] == [{"key": "location", "message": "Use one line of plain text."}]


# -- Uploaded pictures ---------------------------------------------------------------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes whose header claims width x height pixels: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


async def test_a_picture_claiming_gigapixels_is_refused_naming_the_field(client: Any, database_url: str) -> None:
    user = await make_user()
    await web_login(client, user.username)
    response = await client.post(
        "/settings/picture",
        files={"profile_picture": ("bomb.png", png_claiming(30_000, 30_000), "image/png")},
        headers={**csrf_headers(client), **HTMX},
    )
    assert response.status_code == 422
    assert "The picture has more than 50 million pixels." in response.text
    with psycopg.connect(database_url) as conn:
        (picture,) = conn.execute("SELECT profile_picture FROM profile WHERE user_id = %s", (user.id,)).fetchone()
    assert picture is None


async def test_a_stored_picture_keeps_no_exif_and_stands_upright(client: Any, database_url: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned; shown upright the picture is 200 x 300
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(0x8825)[2] = (48.0, 8.0, 30.0)  # GPS latitude
    photo = io.BytesIO()
    Image.new("RGB", (300, 200), "teal").save(photo, format="JPEG", exif=exif.tobytes())
    user = await make_user()
    await web_login(client, user.username)
    response = await client.post(
        "/settings/picture",
        files={"profile_picture": ("photo.jpg", photo.getvalue(), "image/jpeg")},
        headers=csrf_headers(client),
    )
    assert response.status_code == 303
    with psycopg.connect(database_url) as conn:
        (picture,) = conn.execute("SELECT profile_picture FROM profile WHERE user_id = %s", (user.id,)).fetchone()
    stored = Image.open(io.BytesIO((await client.get(picture)).content))
    assert (stored.format, stored.size, dict(stored.getexif())) == ("JPEG", (200, 300), {})


# -- Exports and methods --------------------------------------------------------------------------------------------


async def test_every_text_cell_of_the_export_is_neutralised(client: Any, database_url: str) -> None:
    professor = await make_user("professor")
    student = await make_user(first_name='=HYPERLINK("http://evil")', last_name=" -2+3")
    await book(student, await make_slot(professor), topic="  @SUM(A1)")
    await web_login(client, professor.username)
    response = await client.get("/dashboard/export.csv")
    (header, row) = list(csv.reader(io.StringIO(response.text)))
    cells = dict(zip(header, row, strict=True))
    assert (cells["first_name"], cells["last_name"], cells["topic"]) == (
        '\'=HYPERLINK("http://evil")',
        "' -2+3",
        "'@SUM(A1)",  # the topic is stripped of its spaces, then quoted
    )


async def test_head_is_answered_like_get_without_a_body(client: Any) -> None:
    get = await client.get("/login")
    head = await client.head("/login")
    assert (head.status_code, head.content, head.headers["content-type"]) == (200, b"", get.headers["content-type"])


async def test_options_lists_every_method_of_the_path(client: Any) -> None:
    user = await make_user()
    response = await client.options("/api/v1/me", headers=await api_token(client, user.username))
    assert (response.status_code, response.headers["allow"]) == (204, "GET, HEAD, OPTIONS, PATCH")


@pytest.mark.usefixtures("signup_domains")
async def test_an_unproven_professor_signs_in_and_is_asked_to_verify_the_address(client: Any) -> None:
    professor = await make_user("professor", verified=False)
    assert (await web_login(client, professor.username)).status_code == 303
    dashboard = await client.get("/dashboard")
    assert dashboard.status_code == 200
    assert (
        f"Please confirm your e-mail address: we sent a link to <strong>{professor.email}</strong>." in dashboard.text
    )
    assert 'action="/settings/verification"' in dashboard.text
