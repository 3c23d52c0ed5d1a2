"""Accounts through the JSON API: registration, tokens, profile, bad input."""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg

from tests.helpers import PASSWORD, api_token, make_user

VALID = {"username": "ada", "email": "ada@uni.example", "password": PASSWORD, "user_type": "professor"}


async def test_register_creates_a_user_with_a_profile(client: Any, database_url: str) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={**VALID, "department": "Maths", "timezone": "Europe/London"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "ada"
    assert body["user_type"] == "professor"
    assert body["department"] == "Maths"
    assert body["timezone"] == "Europe/London"
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT password_hash FROM user_account WHERE username = 'ada'").fetchone()
    assert row is not None
    assert row[0].startswith("$argon2")


async def test_register_refuses_a_username_taken_in_another_case(client: Any) -> None:
    await make_user(username="Grace")
    response = await client.post("/api/v1/auth/register", json={**VALID, "username": "grace"})
    assert response.status_code == 422
    assert response.json()["extra"] == [{"key": "username", "message": "This username is taken."}]


async def test_register_refuses_an_email_taken_in_another_case(client: Any) -> None:
    await make_user(email="Ada@Uni.Example")
    response = await client.post("/api/v1/auth/register", json=VALID)
    assert response.status_code == 422
    assert response.json()["extra"] == [{"key": "email", "message": "An account with this email exists already."}]


async def test_register_names_every_bad_field_and_writes_nothing(client: Any, database_url: str) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={
            "username": "x",
            "email": "not-an-email",
            "password": "short",
            "user_type": "wizard",
            "timezone": "Mars/Olympus",
        },
    )
    assert response.status_code == 422
    assert {item["key"] for item in response.json()["extra"]} == {
        "username",
        "email",
        "password",
        "user_type",
        "timezone",
    }
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM user_account").fetchone() == (0,)


async def test_token_is_issued_and_stored_only_as_a_digest(client: Any, database_url: str) -> None:
    user = await make_user()
    headers = await api_token(client, user.username)
    token = headers["Authorization"].removeprefix("Bearer ")
    with psycopg.connect(database_url) as conn:
        stored = [row[0] for row in conn.execute("SELECT token_hash FROM api_token")]
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    me = await client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["username"] == user.username


async def test_token_signs_in_with_email_too(client: Any) -> None:
    user = await make_user()
    response = await client.post("/api/v1/auth/token", json={"username": user.email.upper(), "password": PASSWORD})
    assert response.status_code == 200


async def test_wrong_password_and_unknown_user_get_the_same_answer(client: Any) -> None:
    user = await make_user()
    wrong = await client.post("/api/v1/auth/token", json={"username": user.username, "password": "nope-nope-nope"})
    unknown = await client.post("/api/v1/auth/token", json={"username": "nobody", "password": "nope-nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"] == "Invalid username or password."


async def test_logout_revokes_the_presented_token(client: Any) -> None:
    user = await make_user()
    headers = await api_token(client, user.username)
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 401


async def test_me_requires_a_token(client: Any) -> None:
    response = await client.get("/api/v1/me")
    assert response.status_code == 401


async def test_patch_me_changes_user_and_profile_fields(client: Any) -> None:
    user = await make_user("professor")
    headers = await api_token(client, user.username)
    response = await client.patch(
        "/api/v1/me",
        headers=headers,
        json={"timezone": "America/New_York", "department": "Physics", "auto_confirm": True},
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["timezone"], body["department"], body["auto_confirm"]) == ("America/New_York", "Physics", True)
    stored = (await client.get("/api/v1/me", headers=headers)).json()
    assert (stored["timezone"], stored["department"], stored["auto_confirm"]) == ("America/New_York", "Physics", True)


async def test_patch_me_refuses_an_unknown_timezone_and_changes_nothing(client: Any) -> None:
    user = await make_user()
    headers = await api_token(client, user.username)
    response = await client.patch(
        "/api/v1/me", headers=headers, json={"timezone": "Nowhere/Land", "first_name": "Changed"}
    )
    assert response.status_code == 422
    assert response.json()["extra"][0]["key"] == "timezone"
    me = (await client.get("/api/v1/me", headers=headers)).json()
    assert me["first_name"] == user.first_name


async def test_repeated_failures_lock_the_account_but_not_other_accounts(client: Any) -> None:
    from app.config import get_settings
    from app.domain.accounts.signin import SignInThrottle, ThrottleKeys

    victim = await make_user()
    bystander = await make_user()
    limit = get_settings().login_failures_lock_account
    # All but the last failure came from other addresses (a spread-out guessing attack), as the throttle counts them;
    # from this one address, each guess past the fifth would be slowed down by up to 4 seconds.
    elsewhere = [ThrottleKeys.of(str(victim.id), f"203.0.113.{n}") for n in range(limit - 1)]
    await SignInThrottle.record(*(key for keys in elsewhere for key in (keys.account, keys.client, keys.pair)))
    await client.post("/api/v1/auth/token", json={"username": victim.username, "password": "wrong-password!"})
    locked = await client.post("/api/v1/auth/token", json={"username": victim.username, "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == str(get_settings().login_failure_window_seconds)
    other = await client.post("/api/v1/auth/token", json={"username": bystander.username, "password": PASSWORD})
    assert other.status_code == 200


async def test_many_successful_sign_ins_from_one_address_are_never_throttled(client: Any) -> None:
    users = [await make_user() for _ in range(15)]
    statuses = [
        (await client.post("/api/v1/auth/token", json={"username": u.username, "password": PASSWORD})).status_code
        for u in users
    ]
    assert statuses == [200] * 15


def production_settings(**changes: Any) -> Any:
    import dataclasses

    from app.config import get_settings

    return dataclasses.replace(get_settings(), app_env="production", **changes)


async def test_in_production_professor_self_registration_is_refused(client: Any, monkeypatch: Any) -> None:
    import app.domain.accounts.services as services

    monkeypatch.setattr(services, "get_settings", lambda: production_settings())
    response = await client.post("/api/v1/auth/register", json=VALID)
    assert response.status_code == 422
    assert response.json()["extra"] == [
        {"key": "user_type", "message": "Professor accounts are granted by an administrator; register as a student."}
    ]


async def test_in_production_an_allowed_domain_may_self_register_as_professor(client: Any, monkeypatch: Any) -> None:
    import app.domain.accounts.services as services

    monkeypatch.setattr(
        services, "get_settings", lambda: production_settings(professor_signup_domains=("uni.example",))
    )
    response = await client.post("/api/v1/auth/register", json=VALID)
    assert response.status_code == 201
    assert response.json()["user_type"] == "professor"


def test_production_refuses_to_start_without_a_secret_key(monkeypatch: Any) -> None:
    import pytest

    from app.config import SettingsError, load_settings

    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(SettingsError, match="SECRET_KEY must be set in production"):
        load_settings()


async def test_a_password_changed_through_the_api_is_the_one_that_issues_tokens(client: Any) -> None:
    user = await make_user()
    headers = await api_token(client, user.username)
    changed = await client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "a-brand-new-passphrase"},
        headers=headers,
    )
    assert changed.status_code == 204
    old = await client.post("/api/v1/auth/token", json={"username": user.username, "password": PASSWORD})
    assert old.status_code == 401
    new = await client.post(
        "/api/v1/auth/token", json={"username": user.username, "password": "a-brand-new-passphrase"}
    )
    assert new.status_code == 200


async def test_a_password_change_through_the_api_with_a_wrong_current_password_is_refused_naming_it(
    client: Any,
) -> None:
    user = await make_user()
    headers = await api_token(client, user.username)
    response = await client.post(
        "/api/v1/me/password",
        json={"current_password": "not-the-password", "new_password": "a-brand-new-passphrase"},
        headers=headers,
    )
    assert response.status_code == 422
    assert response.json()["extra"] == [{"key": "current_password", "message": "The current password is wrong."}]
    still = await client.post("/api/v1/auth/token", json={"username": user.username, "password": PASSWORD})
    assert still.status_code == 200


async def test_the_professor_search_finds_by_name_or_department_and_never_students(client: Any) -> None:
    await make_user("professor", first_name="Barbara", last_name="Liskov", department="Computing")
    await make_user("professor", first_name="Emmy", last_name="Noether", department="Algebra")
    await make_user("student", first_name="Barbara", last_name="Student")
    headers = await api_token(client, (await make_user()).username)
    by_name = (await client.get("/api/v1/professors", params={"q": "barbara"}, headers=headers)).json()
    by_department = (await client.get("/api/v1/professors", params={"q": "algeb"}, headers=headers)).json()
    assert [item["last_name"] for item in by_name["items"]] == ["Liskov"]
    assert by_name["total"] == 1
    assert [item["last_name"] for item in by_department["items"]] == ["Noether"]
