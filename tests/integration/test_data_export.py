"""Download my data: a queue job builds a ZIP (JSON and an .ics) offered by a signed link that expires; the API
answers 202 while it is built and the ZIP itself once ready. Nobody else can fetch it."""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any
from uuid import UUID

import psycopg
from icalendar import Calendar

from app.services import provide_services
from app.worker import build_data_export
from tests.helpers import api_token, book, csrf_headers, in_hours, make_slot, make_user, shift_into_past, web_login

HTMX = {"HX-Request": "true"}


async def run_export_jobs(database_url: str) -> list[int]:
    """What a worker would do: build every pending export."""
    with psycopg.connect(database_url) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM data_export WHERE status = 'pending'")]
    return [await build_data_export({}, export_id=str(export_id)) for export_id in ids]


async def person_with_history(database_url: str) -> tuple[Any, Any]:
    professor = await make_user("professor", first_name="Grace", last_name="Hopper")
    student = await make_user(first_name="Ada", last_name="Lovelace")
    past = await make_slot(professor, in_hours(30), location="Room 101")
    booking = await book(student, past, "Chapter 3 questions")
    shift_into_past(database_url, past.id, hours=48)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO consultation_note (id, booking_id, professor_notes, student_feedback, rating, feedback_signed,"
            " created_at, updated_at) VALUES (gen_random_uuid(), %s, 'private remark', 'Very helpful', 5, false,"
            " now(), now())",
            (booking.id,),
        )
    upcoming = await make_slot(professor, in_hours(50))
    await book(student, upcoming, "Exam preparation")
    full = await make_slot(professor, in_hours(72), capacity=1)
    await book(await make_user(), full)
    async with provide_services() as services:
        await services.waitlist.join_slot(student, full.id)
    return student, professor


def unzip(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


async def test_the_web_export_is_built_by_a_job_and_downloaded_through_a_signed_link(
    client: Any, database_url: str
) -> None:
    student, _professor = await person_with_history(database_url)
    await web_login(client, student.username)

    started = await client.post("/settings/data/export", headers={**csrf_headers(client), **HTMX})
    assert started.status_code == 200
    assert "Preparing your data" in started.text
    assert 'hx-trigger="every 2s"' in started.text
    with psycopg.connect(database_url) as conn:
        keys = [row[0] for row in conn.execute("SELECT key FROM saq_jobs")]
    assert any(key.startswith("export:") for key in keys)

    assert len(await run_export_jobs(database_url)) == 1
    ready = await client.get("/settings/data", headers=HTMX)
    link = re.search(r'href="(/settings/data/download\?t=[^"]+)"', ready.text)
    assert link is not None
    download = await client.get(link.group(1).replace("&amp;", "&"))
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    assert "attachment" in download.headers["content-disposition"]

    files = unzip(download.content)
    assert {
        "account.json",
        "profile.json",
        "bookings.json",
        "notes_and_ratings.json",
        "waitlist.json",
        "notifications.json",
        "bookings.ics",
    } <= set(files)
    account = json.loads(files["account.json"])
    assert (account["username"], account["email"], account["last_name"]) == (
        student.username,
        student.email,
        "Lovelace",
    )
    bookings = json.loads(files["bookings.json"])
    assert sorted(b["topic"] for b in bookings) == ["Chapter 3 questions", "Exam preparation"]
    assert {b["professor"] for b in bookings} == {"Grace Hopper"}
    notes = json.loads(files["notes_and_ratings.json"])
    assert notes == [
        {
            "booking_id": notes[0]["booking_id"],
            "student_feedback": "Very helpful",
            "rating": 5,
            "feedback_signed": False,
            "rated_at": None,
        }
    ]
    assert "private remark" not in files["notes_and_ratings.json"].decode()  # the professor's, not the student's
    assert [entry["status"] for entry in json.loads(files["waitlist.json"])] == ["waiting"]
    assert isinstance(json.loads(files["notifications.json"]), list)
    events = Calendar.from_ical(files["bookings.ics"]).walk("VEVENT")
    assert len(events) == 2
    assert {str(e["summary"]) for e in events} == {"Consultation with Grace Hopper"}


async def test_the_export_is_in_the_audit_log(client: Any, database_url: str) -> None:
    student = await make_user()
    await web_login(client, student.username)
    await client.post("/settings/data/export", headers=csrf_headers(client))
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT actor_id::text, action, target_id FROM audit_log").fetchall()
    assert rows == [(str(student.id), "user.data_exported", str(student.id))]


async def test_asking_twice_while_it_is_built_starts_one_job(client: Any, database_url: str) -> None:
    student = await make_user()
    await web_login(client, student.username)
    for _ in range(3):
        await client.post("/settings/data/export", headers=csrf_headers(client))
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM data_export").fetchone() == (1,)


async def test_someone_elses_export_link_is_not_found(client: Any, other_client: Any, database_url: str) -> None:
    owner = await make_user()
    await web_login(client, owner.username)
    await client.post("/settings/data/export", headers=csrf_headers(client))
    await run_export_jobs(database_url)
    link = re.search(r'href="(/settings/data/download\?t=[^"]+)"', (await client.get("/settings/data")).text)
    assert link is not None

    intruder = await make_user()
    await web_login(other_client, intruder.username)
    assert (await other_client.get(link.group(1))).status_code == 404
    forged = link.group(1)[:-3] + ("AAA" if not link.group(1).endswith("AAA") else "BBB")
    assert (await client.get(forged)).status_code == 404
    assert (await client.get(link.group(1))).status_code == 200


async def test_an_expired_export_link_is_not_found(client: Any, database_url: str) -> None:
    owner = await make_user()
    await web_login(client, owner.username)
    await client.post("/settings/data/export", headers=csrf_headers(client))
    await run_export_jobs(database_url)
    link = re.search(r'href="(/settings/data/download\?t=[^"]+)"', (await client.get("/settings/data")).text)
    assert link is not None
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE data_export SET expires_at = now() - interval '1 minute'")
    assert (await client.get(link.group(1))).status_code == 404


async def test_the_api_answers_202_until_the_zip_is_ready_then_the_zip(client: Any, database_url: str) -> None:
    student, _ = await person_with_history(database_url)
    headers = await api_token(client, student.username)
    first = await client.get("/api/v1/me/export", headers=headers)
    assert first.status_code == 202
    assert first.headers["retry-after"] == "5"
    assert first.json()["status"] == "pending"
    UUID(first.json()["id"])
    again = await client.get("/api/v1/me/export", headers=headers)
    assert (again.status_code, again.json()["id"]) == (202, first.json()["id"])

    await run_export_jobs(database_url)
    ready = await client.get("/api/v1/me/export", headers=headers)
    assert ready.status_code == 200
    assert ready.headers["content-type"] == "application/octet-stream"
    assert 'filename="office-hours-data.zip"' in ready.headers["content-disposition"]
    assert json.loads(unzip(ready.content)["account.json"])["id"] == str(student.id)


async def test_the_api_needs_a_token(client: Any) -> None:
    assert (await client.get("/api/v1/me/export")).status_code == 401
