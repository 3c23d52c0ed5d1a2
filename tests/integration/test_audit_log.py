"""The audit log: security-relevant actions leave an entry (who, what, whom, from where), and nobody, the app's own
database role included, can change or delete an entry."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import psycopg
import pytest

from app.domain.audit.services import AuditAction, AuditService
from app.domain.lti.models import RegisteredVia
from app.domain.lti.platforms import PlatformService
from app.domain.lti.schemas import PlatformRegistration
from app.services import provide_services
from tests.conftest import ROOT
from tests.helpers import PASSWORD, api_token, csrf_headers, make_admin, make_user, web_login


def entries(database_url: str, action: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT actor_id::text, target_id, ip, details FROM audit_log WHERE action = %s ORDER BY created_at",
            (action,),
        ).fetchall()


async def test_an_entry_can_be_neither_changed_nor_deleted(database_url: str) -> None:
    async with provide_services() as services:
        entry = await AuditService(services.session).record(None, AuditAction.RETENTION_RUN, None, {"n": 1}, "cli")
    with psycopg.connect(database_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("UPDATE audit_log SET action = 'forged' WHERE id = %s", (entry.id,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("DELETE FROM audit_log WHERE id = %s", (entry.id,))
        assert conn.execute("SELECT action FROM audit_log").fetchall() == [("retention.run",)]


async def test_a_password_change_on_the_web_is_recorded_with_its_address(client: Any, database_url: str) -> None:
    user = await make_user()
    await web_login(client, user.username)
    response = await client.post(
        "/settings/password",
        data={"current_password": PASSWORD, "new_password": "a-brand-new-pass"},
        headers=csrf_headers(client),
    )
    assert response.status_code in (200, 303)
    assert entries(database_url, "user.password_changed") == [(str(user.id), str(user.id), "127.0.0.1", {})]


async def test_a_password_change_through_the_api_is_recorded(client: Any, database_url: str) -> None:
    user = await make_user()
    headers = await api_token(client, user.username)
    response = await client.post(
        "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": "a-brand-new-pass"}, headers=headers
    )
    assert response.status_code == 204
    assert [row[0] for row in entries(database_url, "user.password_changed")] == [str(user.id)]


async def test_a_refused_password_change_leaves_no_entry(client: Any, database_url: str) -> None:
    user = await make_user()
    headers = await api_token(client, user.username)
    response = await client.post(
        "/api/v1/me/password",
        json={"current_password": "wrong-wrong-wrong", "new_password": "a-new-pass-1"},
        headers=headers,
    )
    assert response.status_code == 422
    assert entries(database_url, "user.password_changed") == []


async def test_signing_out_everywhere_is_recorded(client: Any, database_url: str) -> None:
    user = await make_user()
    await web_login(client, user.username)
    await client.post("/settings/sign-out-everywhere", headers=csrf_headers(client))
    assert [row[:2] for row in entries(database_url, "user.signed_out_everywhere")] == [(str(user.id), str(user.id))]


async def test_approving_and_removing_a_platform_is_recorded(client: Any, database_url: str) -> None:
    registration = PlatformRegistration(
        issuer="https://lms.uni.example",
        client_id="tool-1",
        deployment_ids=(),
        auth_login_url="https://lms.uni.example/auth",
        jwks_url="https://lms.uni.example/jwks",
        name="Uni Moodle",
    )
    async with provide_services() as services:
        platform = await PlatformService(session=services.session).register(
            registration, via=RegisteredVia.DYNAMIC, approved=False
        )
    admin = await make_admin()
    await web_login(client, admin.username)
    await client.post(f"/admin/lti/{platform.id}/approve", headers=csrf_headers(client))
    await client.post(f"/admin/lti/{platform.id}/remove", headers=csrf_headers(client))
    approved = entries(database_url, "lti.platform_approved")
    removed = entries(database_url, "lti.platform_removed")
    assert approved == [
        (str(admin.id), str(platform.id), "127.0.0.1", {"name": "Uni Moodle", "issuer": registration.issuer})
    ]
    assert [row[:2] for row in removed] == [(str(admin.id), str(platform.id))]


def run_app(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


async def test_approving_a_platform_on_the_command_line_is_recorded(database_url: str) -> None:
    registration = PlatformRegistration(
        issuer="https://lms2.uni.example",
        client_id="tool-2",
        deployment_ids=(),
        auth_login_url="https://lms2.uni.example/auth",
        jwks_url="https://lms2.uni.example/jwks",
    )
    async with provide_services() as services:
        platform = await PlatformService(session=services.session).register(
            registration, via=RegisteredVia.DYNAMIC, approved=False
        )
    done = run_app(database_url, "lti", "approve", str(platform.id))
    assert done.returncode == 0, done.stderr
    assert entries(database_url, "lti.platform_approved") == [
        (None, str(platform.id), "cli", {"name": "", "issuer": "https://lms2.uni.example"})
    ]
