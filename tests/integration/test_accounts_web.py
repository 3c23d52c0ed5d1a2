"""Accounts in the browser-facing pages: CSRF, sessions, forms with errors beside their fields."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from PIL import Image

from tests.helpers import PASSWORD, csrf_headers, make_user, web_login

HTMX = {"HX-Request": "true"}


async def test_register_on_the_web_signs_the_person_in(client: Any, database_url: str) -> None:
    await client.get("/register")
    response = await client.post(
        "/register",
        data={
            "username": "newbie",
            "email": "newbie@uni.example",
            "password": PASSWORD,
            "user_type": "student",
            "timezone": "Europe/Berlin",
        },
        headers=csrf_headers(client),
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/professors"
    settings = await client.get("/settings")
    assert settings.status_code == 200
    assert 'Sign out<span class="visually-hidden"> newbie</span>' in settings.text


async def test_a_post_without_the_csrf_token_is_refused(client: Any, database_url: str) -> None:
    await client.get("/register")
    response = await client.post(
        "/register", data={"username": "newbie", "email": "n@uni.example", "password": PASSWORD, "user_type": "student"}
    )
    assert response.status_code == 403
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM user_account").fetchone() == (0,)


async def test_register_form_errors_come_back_out_of_band_beside_each_field(client: Any) -> None:
    await make_user(username="taken")
    await client.get("/register")
    response = await client.post(
        "/register",
        data={
            "username": "taken",
            "email": "bad",
            "password": "short",
            "user_type": "student",
            "timezone": "Europe/Berlin",
        },
        headers={**csrf_headers(client), **HTMX},
    )
    assert response.status_code == 422
    html = response.text
    assert (
        '<small id="err-username" class="field-error" hx-swap-oob="true"><span aria-hidden="true">⚠ </span>This username is taken.</small>'
        in html
    )
    assert (
        'id="err-email" class="field-error" hx-swap-oob="true"><span aria-hidden="true">⚠ </span>Enter a valid email address.'
        in html
    )
    assert 'id="err-password"' in html
    assert "Use at least 10 characters." in html
    assert '<small id="err-first_name" class="field-error" hx-swap-oob="true"></small>' in html


async def test_register_without_htmx_shows_the_form_again_with_messages(client: Any) -> None:
    await client.get("/register")
    response = await client.post(
        "/register",
        data={
            "username": "okname",
            "email": "ok@uni.example",
            "password": "short",
            "user_type": "student",
            "timezone": "Europe/Berlin",
        },
        headers=csrf_headers(client),
    )
    assert response.status_code == 422
    assert 'value="okname"' in response.text
    assert "Use at least 10 characters." in response.text


async def test_login_rotates_the_session_id_and_logout_revokes_it(client: Any, other_client: Any) -> None:
    user = await make_user()
    await client.get("/login")
    client.cookies.set("session", "planted-by-an-attacker", domain="testserver.local")
    response = await web_login(client, user.username)
    assert response.status_code == 303
    session_id = client.cookies.get("session")
    assert session_id is not None
    assert session_id != "planted-by-an-attacker"
    # The same cookie replayed from elsewhere works until logout...
    other_client.cookies.set("session", session_id, domain="testserver.local")
    assert (await other_client.get("/settings")).status_code == 200
    await client.post("/logout", headers=csrf_headers(client))
    # ...and not after: the server-side session is gone.
    replay = await other_client.get("/settings")
    assert replay.status_code == 303
    assert replay.headers["location"] == "/login?next=/settings"


async def test_login_with_a_wrong_password_says_invalid_username_or_password(client: Any) -> None:
    user = await make_user()
    response = await web_login(client, user.username, "wrong-password-here")
    assert response.status_code == 400
    assert "Invalid username or password." in response.text


async def test_login_refuses_an_open_redirect_in_next(client: Any) -> None:
    user = await make_user()
    await client.get("/login")
    response = await client.post(
        "/login",
        data={"username": user.username, "password": PASSWORD, "next": "//evil.example/x"},
        headers=csrf_headers(client),
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/professors"


async def test_anonymous_visitor_is_sent_to_login_with_next(client: Any) -> None:
    response = await client.get("/settings")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/settings"


async def test_anonymous_pages_create_no_session_rows(client: Any, database_url: str) -> None:
    for path in ("/", "/login", "/register"):
        assert (await client.get(path)).status_code == 200
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM user_session").fetchone() == (0,)


def _session_row(database_url: str) -> tuple[Any, ...]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT expires_at, xmin::text FROM user_session").fetchone()


def _age_session(database_url: str, by: timedelta) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE user_session SET expires_at = expires_at - %s", (by,))


async def test_a_page_view_does_not_write_the_session_row(client: Any, database_url: str) -> None:
    await web_login(client, (await make_user()).username)
    assert (await client.get("/settings")).status_code == 200  # shows (and so removes) the welcome message
    before = _session_row(database_url)
    assert (await client.get("/settings")).status_code == 200
    assert _session_row(database_url) == before  # same expiry, same row version: nothing written


async def test_a_session_in_use_gets_its_expiry_extended_once_an_hour_has_passed(
    client: Any, database_url: str
) -> None:
    await web_login(client, (await make_user()).username)
    _age_session(database_url, timedelta(hours=2))
    aged, _ = _session_row(database_url)
    assert (await client.get("/settings")).status_code == 200
    extended, _ = _session_row(database_url)
    assert extended - aged == pytest.approx(timedelta(hours=2), abs=timedelta(minutes=1))


async def test_an_expired_session_signs_the_person_out_and_is_deleted(client: Any, database_url: str) -> None:
    await web_login(client, (await make_user()).username)
    _age_session(database_url, timedelta(days=15))
    response = await client.get("/settings")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/settings"
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM user_session").fetchone() == (0,)


async def test_profile_update_with_an_unknown_timezone_changes_nothing(client: Any, database_url: str) -> None:
    user = await make_user()
    await web_login(client, user.username)
    response = await client.post(
        "/settings/profile",
        data={
            "first_name": "Changed",
            "last_name": "",
            "email": user.email,
            "phone_number": "",
            "timezone": "Nope/Nope",
            "department": "",
            "bio": "",
        },
        headers={**csrf_headers(client), **HTMX},
    )
    assert response.status_code == 422
    assert "Pick a time zone from the list" in response.text
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT first_name FROM user_account WHERE id = %s", (user.id,)).fetchone() == (
            user.first_name,
        )


def _png(size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "teal").save(buffer, format="PNG")
    return buffer.getvalue()


async def test_picture_upload_is_checked_by_content_not_name(client: Any, database_url: str) -> None:
    user = await make_user()
    await web_login(client, user.username)
    fake = await client.post(
        "/settings/picture",
        files={"profile_picture": ("cat.png", b"<?php echo 'hi'; ?>", "image/png")},
        headers={**csrf_headers(client), **HTMX},
    )
    assert fake.status_code == 422
    assert "Upload a PNG, JPEG, GIF or WebP image." in fake.text
    real = await client.post(
        "/settings/picture",
        files={"profile_picture": ("anything.bin", _png(), "application/octet-stream")},
        headers=csrf_headers(client),
    )
    assert real.status_code == 303
    with psycopg.connect(database_url) as conn:
        (path,) = conn.execute("SELECT profile_picture FROM profile WHERE user_id = %s", (user.id,)).fetchone()
    assert path.startswith("/media/")
    assert path.endswith(".png")
    served = await client.get(path)
    assert served.status_code == 200
    assert served.content == _png()


async def test_an_oversized_picture_is_refused(client: Any) -> None:
    user = await make_user()
    await web_login(client, user.username)
    huge = b"\x89PNG\r\n\x1a\n" + b"0" * (2 * 1024 * 1024 + 1)
    response = await client.post(
        "/settings/picture",
        files={"profile_picture": ("big.png", huge, "image/png")},
        headers={**csrf_headers(client), **HTMX},
    )
    assert response.status_code == 422
    assert "larger than 2 MB" in response.text


async def test_password_change_needs_the_current_password(client: Any) -> None:
    user = await make_user()
    await web_login(client, user.username)
    response = await client.post(
        "/settings/password",
        data={"current_password": "wrong-one-here", "new_password": "a-brand-new-pass"},
        headers={**csrf_headers(client), **HTMX},
    )
    assert response.status_code == 422
    assert "The current password is wrong." in response.text


async def test_security_headers_are_on_every_response(client: Any) -> None:
    for path in ("/", "/login", "/health", "/static/css/app.css", "/api/v1/me"):
        response = await client.get(path)
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"


async def test_health_reports_database_and_queue(client: Any) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "queue": "ok"}


async def test_profile_save_on_the_web_stores_the_fields(client: Any, database_url: str) -> None:
    user = await make_user("professor")
    await web_login(client, user.username)
    response = await client.post(
        "/settings/profile",
        data={
            "first_name": "Katherine",
            "last_name": "Johnson",
            "email": user.email,
            "phone_number": "+1 555 0100",
            "timezone": "America/Chicago",
            "department": "Mathematics",
            "bio": "Orbital mechanics.",
            "auto_confirm": "on",
            "booking_notice_hours": "2",
            "cancellation_notice_hours": "12",
            "max_active_bookings_per_student": "3",
            "waitlist_hold_minutes": "45",
        },
        headers={**csrf_headers(client), **HTMX},
    )
    assert response.status_code == 200, response.text
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT u.first_name, u.last_name, u.phone_number, u.timezone, p.department, p.bio, p.auto_confirm,"
            " p.booking_notice_hours, p.cancellation_notice_hours, p.waitlist_hold_minutes"
            " FROM user_account u JOIN profile p ON p.user_id = u.id WHERE u.id = %s",
            (user.id,),
        ).fetchone()
    assert stored == (
        "Katherine",
        "Johnson",
        "+1 555 0100",
        "America/Chicago",
        "Mathematics",
        "Orbital mechanics.",
        True,
        2,
        12,
        45,
    )


async def test_a_password_changed_on_the_web_is_the_one_that_signs_in(client: Any, other_client: Any) -> None:
    user = await make_user()
    await web_login(client, user.username)
    changed = await client.post(
        "/settings/password",
        data={"current_password": PASSWORD, "new_password": "a-brand-new-passphrase"},
        headers=csrf_headers(client),
    )
    assert changed.status_code == 303
    old = await web_login(other_client, user.username)
    assert old.status_code == 400
    new = await web_login(other_client, user.username, "a-brand-new-passphrase")
    assert (new.status_code, new.headers["location"]) == (303, "/professors")


async def test_a_locked_account_is_refused_by_the_web_sign_in_form_with_429(client: Any, database_url: str) -> None:
    from app.config import get_settings
    from tests.integration.test_security import add_failures

    user = await make_user()
    add_failures(database_url, f"account:{user.id}", get_settings().login_failures_lock_account)
    await client.get("/login")
    response = await client.post(
        "/login",
        data={"username": user.username, "password": PASSWORD},
        headers={**csrf_headers(client), **HTMX},
    )
    assert response.status_code == 429
    assert "This account is locked after many failed sign-ins" in response.text
    assert (await client.get("/settings")).status_code == 303  # not signed in
