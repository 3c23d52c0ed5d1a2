"""Erasure: "Delete my account" and `app users erase`. Upcoming bookings are cancelled first (the professor is
told), a professor with upcoming slots is refused, the Google grant is revoked at Google, and afterwards no
text or JSON column of any table holds the person's name, e-mail or username."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from PIL import Image
from psycopg import sql

from app.config import get_settings
from app.domain.google.grants import CalendarConnection
from app.domain.google.provider import CALENDAR_SCOPE
from app.services import provide_services
from app.worker import deliver_notification
from tests.conftest import ROOT
from tests.helpers import (
    PASSWORD,
    api_token,
    book,
    csrf_headers,
    in_hours,
    make_slot,
    make_user,
    shift_into_past,
    web_login,
)

HTMX = {"HX-Request": "true"}
SEARCHED_TYPES = ("text", "character varying", "character", "json", "jsonb", "bytea", "ARRAY", "USER-DEFINED")


def full_text_hits(database_url: str, terms: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, term) for every text, JSON, array or byte column of every table that contains a term."""
    hits = []
    with psycopg.connect(database_url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' AND data_type = ANY(%s)",
            (list(SEARCHED_TYPES),),
        ).fetchall()
        assert len(columns) > 50  # the whole schema, not a few tables
        for table, column, data_type in columns:
            as_text = (
                sql.SQL("encode({}, 'escape')").format(sql.Identifier(column))
                if data_type == "bytea"
                else sql.SQL("{}::text").format(sql.Identifier(column))
            )
            for term in terms:
                query = sql.SQL("SELECT count(*) FROM {} WHERE {} ILIKE %s").format(sql.Identifier(table), as_text)
                found = conn.execute(query, (f"%{term}%",)).fetchone()
                if found and found[0]:
                    hits.append((table, column, term))
    return hits


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="PNG")
    return buffer.getvalue()


async def a_student_with_a_history(client: Any, database_url: str, google: Any) -> tuple[Any, Any, dict[str, Any]]:
    """Ada has past and upcoming bookings, feedback and a rating, a waitlist place, a picture, a Google Calendar
    grant, an API token, notifications, an export and audit entries."""
    professor = await make_user("professor", first_name="Grace", last_name="Hopper")
    student = await make_user(first_name="Adalinde", last_name="Quuxlovelace")
    past = await make_slot(professor, in_hours(30))
    old_booking = await book(student, past, "Quuxlovelace thesis outline")
    shift_into_past(database_url, past.id, hours=48)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO consultation_note (id, booking_id, professor_notes, student_feedback, rating, feedback_signed,"
            " created_at, updated_at) VALUES (gen_random_uuid(), %s, 'Adalinde needs more sources',"
            " 'Thanks, from Adalinde Quuxlovelace', 4, true, now(), now())",
            (old_booking.id,),
        )
    upcoming = await make_slot(professor, in_hours(3))
    upcoming_booking = await book(student, upcoming, "Exam questions")
    full = await make_slot(professor, in_hours(80), capacity=1)
    await book(await make_user(), full)
    async with provide_services() as services:
        await services.waitlist.join_slot(student, full.id)
        await CalendarConnection(services.session, get_settings()).connect(
            student.id,
            {
                "access_token": "ada-access",
                "refresh_token": "ada-refresh",
                "scope": CALENDAR_SCOPE,
                "expires_at": time.time() + 3000,
            },
        )
    await web_login(client, student.username)
    headers = await api_token(client, student.username)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    upload = await client.post(
        "/settings/picture",
        files={"profile_picture": ("me.png", png(), "image/png")},
        headers=csrf_headers(client),
    )
    assert upload.status_code in (200, 303)
    await client.post("/settings/data/export", headers=csrf_headers(client))
    await client.post("/settings/sign-out-everywhere", headers=csrf_headers(client))
    return student, professor, {"upcoming_booking": upcoming_booking, "old_booking": old_booking, "token": headers}


def identifying_terms(student: Any) -> list[str]:
    return [student.username, student.email, student.first_name, student.last_name, student.full_name]


async def test_deleting_my_account_leaves_nothing_that_names_me(
    client: Any, database_url: str, google: Any, mailbox: Any
) -> None:
    student, professor, facts = await a_student_with_a_history(client, database_url, google)
    assert full_text_hits(database_url, identifying_terms(student))  # the search does find them before
    with psycopg.connect(database_url) as conn:
        picture = conn.execute("SELECT profile_picture FROM profile WHERE user_id = %s", (student.id,)).fetchone()
    assert picture is not None
    picture_file = get_settings().upload_dir / Path(picture[0]).name
    assert picture_file.is_file()

    response = await client.post(
        "/settings/data/delete", data={"password": PASSWORD, "confirm": "DELETE"}, headers=csrf_headers(client)
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"

    assert full_text_hits(database_url, identifying_terms(student)) == []
    assert "ada-refresh" in google.revoked_tokens
    with psycopg.connect(database_url) as conn:
        account = conn.execute(
            "SELECT username, email, first_name, last_name, password_hash, is_active, erased_at IS NOT NULL,"
            " google_sub FROM user_account WHERE id = %s",
            (student.id,),
        ).fetchone()
        assert account is not None
        assert account[0].startswith("former-")
        assert account[1].endswith("@erased.invalid")
        assert account[2:] == ("", "", None, False, True, None)
        profile = conn.execute(
            "SELECT profile_picture, google_calendar_token, bio FROM profile WHERE user_id = %s", (student.id,)
        ).fetchone()
        assert profile == (None, None, "")
        for table in ("api_token", "data_export", "notification", "waitlist_entry"):
            if table == "waitlist_entry":
                count = conn.execute(
                    "SELECT count(*) FROM waitlist_entry WHERE student_id = %s AND status IN ('waiting', 'offered')",
                    (student.id,),
                ).fetchone()
            else:
                count = conn.execute(
                    sql.SQL("SELECT count(*) FROM {} WHERE user_id = %s").format(sql.Identifier(table)), (student.id,)
                ).fetchone()
            assert count == (0,), table
        # The past consultation stays for the professor's statistics, with the rating but without the words.
        kept = conn.execute(
            "SELECT b.status, b.topic, n.rating, n.student_feedback, n.feedback_signed, n.professor_notes"
            " FROM booking b JOIN consultation_note n ON n.booking_id = b.id WHERE b.id = %s",
            (facts["old_booking"].id,),
        ).fetchone()
        assert kept == ("pending", "", 4, "", False, "")
        cancelled = conn.execute(
            "SELECT status, cancelled_by FROM booking WHERE id = %s", (facts["upcoming_booking"].id,)
        ).fetchone()
        assert cancelled == ("cancelled", student.id)
        told = conn.execute(
            "SELECT id, kind FROM notification WHERE user_id = %s AND booking_id = %s",
            (professor.id, facts["upcoming_booking"].id),
        ).fetchall()
        cancellation = [row_id for row_id, kind in told if kind == "booking_cancelled"]
        assert len(cancellation) == 1
        audit = conn.execute("SELECT actor_id, target_id, ip FROM audit_log WHERE action = 'user.erased'").fetchall()
        assert audit == [(student.id, str(student.id), "")]
    assert not picture_file.exists()
    # The professor's usual cancellation e-mail goes out, naming nobody.
    assert await deliver_notification({}, notification_id=str(cancellation[0])) == "sent"
    (mail,) = mailbox.to(professor.email)
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Former student" in text
    assert student.last_name not in text
    # Signed out here and everywhere; the API token is gone.
    assert (await client.get("/settings")).status_code == 303
    assert (await client.get("/api/v1/me", headers=facts["token"])).status_code == 401
    assert (await web_login(client, student.username)).status_code == 400


async def test_the_professor_sees_a_former_student(client: Any, other_client: Any, database_url: str) -> None:
    professor = await make_user("professor", first_name="Grace", last_name="Hopper")
    student = await make_user(first_name="Adalinde", last_name="Quuxlovelace")
    slot = await make_slot(professor, in_hours(30))
    await book(student, slot, "Outline")
    shift_into_past(database_url, slot.id, hours=48)
    await web_login(client, student.username)
    await client.post(
        "/settings/data/delete", data={"password": PASSWORD, "confirm": "DELETE"}, headers=csrf_headers(client)
    )
    await web_login(other_client, professor.username)
    dashboard = await other_client.get("/dashboard")
    assert "Quuxlovelace" not in dashboard.text
    stats = await other_client.get("/api/v1/stats", headers=await api_token(other_client, professor.username))
    assert stats.status_code == 200


async def test_a_wrong_password_or_missing_confirmation_erases_nothing(client: Any, database_url: str) -> None:
    student = await make_user()
    await web_login(client, student.username)
    wrong = await client.post(
        "/settings/data/delete",
        data={"password": "not-my-password", "confirm": "DELETE"},
        headers={**csrf_headers(client), **HTMX},
    )
    assert wrong.status_code == 422
    assert "The password is wrong." in wrong.text
    unconfirmed = await client.post(
        "/settings/data/delete", data={"password": PASSWORD, "confirm": ""}, headers={**csrf_headers(client), **HTMX}
    )
    assert unconfirmed.status_code == 422
    assert "Type DELETE to confirm." in unconfirmed.text
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT erased_at, is_active FROM user_account WHERE id = %s", (student.id,)).fetchone()
    assert row == (None, True)


async def test_a_professor_with_upcoming_slots_is_told_to_cancel_or_hand_them_over(
    client: Any, database_url: str
) -> None:
    professor = await make_user("professor")
    await make_slot(professor, in_hours(40))
    await web_login(client, professor.username)
    response = await client.post(
        "/settings/data/delete",
        data={"password": PASSWORD, "confirm": "DELETE"},
        headers={**csrf_headers(client), **HTMX},
    )
    assert response.status_code == 409
    assert "Cancel them or hand them over to a colleague first" in response.text
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT erased_at FROM user_account WHERE id = %s", (professor.id,)).fetchone()
    assert row == (None,)


async def test_a_google_only_account_confirms_with_a_fresh_sign_in(client: Any, database_url: str) -> None:
    student = await make_user()
    await web_login(client, student.username)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE user_account SET password_hash = NULL WHERE id = %s", (student.id,))
        # The sign-in is older than ten minutes: pretend the session started an hour ago.
        conn.execute(
            "UPDATE user_session SET data = convert_to(replace(convert_from(data, 'UTF8'),"
            " substring(convert_from(data, 'UTF8') from '\"signed_in_at\":[0-9]+'),"
            " '\"signed_in_at\":' || (extract(epoch from now())::bigint - 3600)::text), 'UTF8')"
        )
    stale = await client.post(
        "/settings/data/delete", data={"confirm": "DELETE"}, headers={**csrf_headers(client), **HTMX}
    )
    assert stale.status_code == 422
    assert "Sign in with Google again" in stale.text
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE user_session SET data = convert_to(replace(convert_from(data, 'UTF8'),"
            " substring(convert_from(data, 'UTF8') from '\"signed_in_at\":[0-9]+'),"
            " '\"signed_in_at\":' || extract(epoch from now())::bigint::text), 'UTF8')"
        )
    fresh = await client.post("/settings/data/delete", data={"confirm": "DELETE"}, headers=csrf_headers(client))
    assert fresh.status_code == 303
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT erased_at IS NOT NULL FROM user_account WHERE id = %s", (student.id,)).fetchone()
    assert row == (True,)


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


async def test_the_command_erases_an_account_and_reports_what_it_did(database_url: str) -> None:
    professor = await make_user("professor")
    student = await make_user(first_name="Adalinde", last_name="Quuxlovelace")
    await book(student, await make_slot(professor, in_hours(30)), "Quuxlovelace question")
    done = run_cli(database_url, "users", "erase", student.email, "--yes")
    assert done.returncode == 0, done.stderr
    assert f"erased {student.id}: 1 upcoming booking(s) cancelled" in done.stdout
    assert full_text_hits(database_url, identifying_terms(student)) == []
    with psycopg.connect(database_url) as conn:
        audit = conn.execute("SELECT actor_id, target_id, ip FROM audit_log WHERE action = 'user.erased'").fetchall()
    assert audit == [(None, str(student.id), "cli")]


async def test_the_command_refuses_a_professor_with_upcoming_slots(database_url: str) -> None:
    professor = await make_user("professor")
    await make_slot(professor, in_hours(30))
    done = run_cli(database_url, "users", "erase", professor.username, "--yes")
    assert done.returncode == 1
    assert "hand them over" in done.stderr


async def test_someone_elses_account_cannot_be_erased_through_the_api_or_web(client: Any, database_url: str) -> None:
    """There is no id to name: the page erases only the signed-in account, whatever the form carries."""
    victim = await make_user()
    attacker = await make_user()
    await web_login(client, attacker.username)
    await client.post(
        "/settings/data/delete",
        data={"password": PASSWORD, "confirm": "DELETE", "user_id": str(victim.id)},
        headers=csrf_headers(client),
    )
    with psycopg.connect(database_url) as conn:
        rows = dict(conn.execute("SELECT id, erased_at IS NOT NULL FROM user_account").fetchall())
    assert rows[victim.id] is False
    assert rows[attacker.id] is True
