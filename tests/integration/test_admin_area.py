"""The administrators' area: finding accounts, changing roles, deactivating and reactivating, the audit log."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.helpers import api_token, csrf_headers, in_hours, make_admin, make_slot, make_user, web_login

HTMX = {"HX-Request": "true"}


async def admin_client(client: Any) -> Any:
    admin = await make_admin()
    await web_login(client, admin.username)
    return admin


def audit_rows(database_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT actor_id::text, action, target_id, details, ip FROM audit_log ORDER BY created_at"
        ).fetchall()


async def test_search_finds_accounts_by_name_username_or_email(client: Any) -> None:
    await admin_client(client)
    ada = await make_user(first_name="Ada", last_name="Lovelace")
    other = await make_user(first_name="Grace", last_name="Hopper")
    for query in ("lovelace", ada.username, ada.email.upper()):
        response = await client.get("/admin", params={"q": query}, headers=HTMX)
        assert response.status_code == 200
        assert f'href="/admin/users/{ada.id}"' in response.text, query
        assert f'href="/admin/users/{other.id}"' not in response.text
        assert "<h1>" not in response.text  # htmx: the result list alone


async def test_the_admin_home_links_notifications_platforms_and_the_audit_log(client: Any) -> None:
    await admin_client(client)
    response = await client.get("/admin")
    assert response.status_code == 200
    for link in ('href="/admin/notifications"', 'href="/admin/lti"', 'href="/admin/audit"'):
        assert link in response.text


async def test_an_admin_makes_a_student_a_professor_and_it_is_audited(client: Any, database_url: str) -> None:
    admin = await admin_client(client)
    student = await make_user()
    response = await client.post(
        f"/admin/users/{student.id}/role", data={"role": "professor"}, headers={**csrf_headers(client), **HTMX}
    )
    assert response.status_code == 200
    assert 'id="account-card"' in response.text
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT user_type, is_admin FROM user_account WHERE id = %s", (student.id,)).fetchone() == (
            "professor",
            False,
        )
    assert audit_rows(database_url) == [
        (str(admin.id), "user.role_changed", str(student.id), {"from": "student", "to": "professor"}, "127.0.0.1")
    ]


async def test_granting_admin_rights_keeps_the_kind_of_account(client: Any, database_url: str) -> None:
    await admin_client(client)
    professor = await make_user("professor")
    await client.post(f"/admin/users/{professor.id}/role", data={"role": "admin"}, headers=csrf_headers(client))
    with psycopg.connect(database_url) as conn:
        assert conn.execute(
            "SELECT user_type, is_admin FROM user_account WHERE id = %s", (professor.id,)
        ).fetchone() == (
            "professor",
            True,
        )


async def test_a_professor_with_upcoming_slots_cannot_become_a_student(client: Any, database_url: str) -> None:
    await admin_client(client)
    professor = await make_user("professor")
    await make_slot(professor, in_hours(30))
    response = await client.post(
        f"/admin/users/{professor.id}/role", data={"role": "student"}, headers={**csrf_headers(client), **HTMX}
    )
    assert response.status_code == 409
    assert "cancel them or hand them over" in response.text
    assert [row[1] for row in audit_rows(database_url)] == []


async def test_an_unknown_role_names_the_field(client: Any) -> None:
    await admin_client(client)
    student = await make_user()
    response = await client.post(
        f"/admin/users/{student.id}/role", data={"role": "superuser"}, headers={**csrf_headers(client), **HTMX}
    )
    assert response.status_code in (400, 422)


async def test_an_admin_cannot_take_away_their_own_rights(client: Any) -> None:
    admin = await admin_client(client)
    response = await client.post(
        f"/admin/users/{admin.id}/role", data={"role": "student"}, headers={**csrf_headers(client), **HTMX}
    )
    assert response.status_code == 409


async def test_deactivation_ends_sessions_and_tokens_and_reactivation_allows_sign_in(
    client: Any, other_client: Any, database_url: str
) -> None:
    admin = await admin_client(client)
    student = await make_user()
    await web_login(other_client, student.username)
    token = await api_token(other_client, student.username)
    assert (await other_client.get("/settings")).status_code == 200

    response = await client.post(f"/admin/users/{student.id}/deactivate", headers=csrf_headers(client))
    assert response.status_code == 303

    assert (await other_client.get("/settings")).status_code == 303  # signed out: to the sign-in page
    assert (await other_client.get("/api/v1/me", headers=token)).status_code == 401
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM api_token WHERE user_id = %s", (student.id,)).fetchone() == (0,)
    signed_in = await web_login(other_client, student.username)
    assert signed_in.status_code == 400  # a deactivated account cannot sign in

    await client.post(f"/admin/users/{student.id}/reactivate", headers=csrf_headers(client))
    assert (await web_login(other_client, student.username)).status_code in (200, 303)
    assert [row[1:3] for row in audit_rows(database_url)] == [
        ("user.deactivated", str(student.id)),
        ("user.reactivated", str(student.id)),
    ]
    assert all(row[0] == str(admin.id) for row in audit_rows(database_url))


async def test_an_admin_cannot_deactivate_themselves(client: Any) -> None:
    admin = await admin_client(client)
    response = await client.post(f"/admin/users/{admin.id}/deactivate", headers={**csrf_headers(client), **HTMX})
    assert response.status_code == 409


async def test_the_audit_log_lists_entries_and_filters_by_action(client: Any) -> None:
    await admin_client(client)
    student = await make_user()
    await client.post(f"/admin/users/{student.id}/deactivate", headers=csrf_headers(client))
    await client.post(f"/admin/users/{student.id}/role", data={"role": "professor"}, headers=csrf_headers(client))
    everything = await client.get("/admin/audit")
    assert "Account deactivated" in everything.text
    assert "Role changed" in everything.text
    assert student.username in everything.text
    only = await client.get("/admin/audit", params={"action": "user.deactivated"}, headers=HTMX)
    assert "Account deactivated" in only.text
    assert "Role changed" not in only.text.split("</select>")[-1]


async def test_the_admin_forms_need_the_csrf_token(client: Any) -> None:
    await admin_client(client)
    student = await make_user()
    response = await client.post(f"/admin/users/{student.id}/deactivate", headers=HTMX)
    assert response.status_code == 403


async def test_an_admin_erases_an_account_after_typing_its_username(client: Any, database_url: str) -> None:
    admin = await admin_client(client)
    student = await make_user()
    refused = await client.post(
        f"/admin/users/{student.id}/erase", data={"confirm": "yes"}, headers={**csrf_headers(client), **HTMX}
    )
    assert refused.status_code == 422
    assert f"Type the username {student.username} to confirm." in refused.text
    done = await client.post(
        f"/admin/users/{student.id}/erase", data={"confirm": student.username}, headers=csrf_headers(client)
    )
    assert done.status_code == 303
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT username, erased_at IS NOT NULL FROM user_account WHERE id = %s", (student.id,))
        username, erased = row.fetchone() or ("", False)
    assert erased
    assert username.startswith("former-")
    assert [row[:3] for row in audit_rows(database_url)] == [(str(admin.id), "user.erased", str(student.id))]


async def test_an_admin_does_not_erase_their_own_account_here(client: Any) -> None:
    admin = await admin_client(client)
    response = await client.post(
        f"/admin/users/{admin.id}/erase", data={"confirm": admin.username}, headers={**csrf_headers(client), **HTMX}
    )
    assert response.status_code == 409
