"""Google sign-in and Google Calendar sync, against a faithful fake of Google's endpoints on loopback."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import psycopg
import pytest
from joserfc.jwk import RSAKey
from saq import Worker

from app.config import get_settings
from app.domain.calendar.sync import CalendarSync, queue_calendar_syncs
from app.domain.google.calendar_api import RetryableSyncError
from app.lib.crypto import decrypt_json, encrypt_json
from app.lib.queue import get_queue
from app.services import provide_services
from app.worker import sync_booking_calendar
from tests.conftest import free_port, start_server, wait_until_up
from tests.fake_google import Person
from tests.helpers import PASSWORD, book, csrf_headers, in_hours, make_slot, make_user, web_login
from tests.integration.test_email_delivery import deliver_queued


async def google_round_trip(client: Any, intent: str = "signin") -> httpx.Response:
    """Start at the app, let the fake Google approve, and come back to the app's callback."""
    start = await client.get("/auth/google", params={"intent": intent})
    assert start.status_code == 302, start.text
    async with httpx.AsyncClient() as browser:
        approved = await browser.get(start.headers["location"])
    assert approved.status_code == 302
    callback = urlparse(approved.headers["location"])
    return await client.get(f"{callback.path}?{callback.query}")


def users_with_email(database_url: str, email: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT username, user_type, google_sub, password_hash FROM user_account WHERE lower(email) = lower(%s)",
            (email,),
        ).fetchall()


async def test_a_new_person_signs_in_with_google_and_picks_a_role(client: Any, google: Any, database_url: str) -> None:
    google.person = Person(sub="g-new", email="new.person@gmail.example", given_name="Nia", family_name="Okafor")
    response = await google_round_trip(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/auth/google/choose"
    choose = await client.get("/auth/google/choose")
    assert "new.person@gmail.example" in choose.text
    done = await client.post("/auth/google/complete", data={"user_type": "student"}, headers=csrf_headers(client))
    assert done.status_code == 303
    assert done.headers["location"] == "/professors"
    assert users_with_email(database_url, "new.person@gmail.example") == [("new.person", "student", "g-new", None)]
    assert (await client.get("/settings")).status_code == 200


async def test_a_returning_google_user_is_signed_in_at_once(client: Any, other_client: Any, google: Any) -> None:
    google.person = Person(sub="g-back", email="back@gmail.example")
    await google_round_trip(client)
    await client.post("/auth/google/complete", data={"user_type": "professor"}, headers=csrf_headers(client))
    response = await google_round_trip(other_client)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"


async def test_a_domain_setting_decides_the_role(client: Any, google: Any, database_url: str, monkeypatch: Any) -> None:
    import dataclasses

    import app.domain.google.controllers as controllers

    settings = dataclasses.replace(get_settings(), google_professor_domains=("uni.example",))
    monkeypatch.setattr(controllers, "get_settings", lambda: settings)
    google.person = Person(sub="g-prof", email="turing@uni.example")
    response = await google_round_trip(client)
    assert response.headers["location"] == "/dashboard"
    assert users_with_email(database_url, "turing@uni.example")[0][1] == "professor"


async def test_an_existing_account_is_linked_only_after_its_password(
    client: Any, google: Any, database_url: str
) -> None:
    user = await make_user(email="owner@gmail.example")
    google.person = Person(sub="g-owner", email="owner@gmail.example")
    response = await google_round_trip(client)
    assert response.headers["location"] == "/login"
    assert users_with_email(database_url, "owner@gmail.example")[0][2] is None  # not linked yet
    await client.post("/login", data={"username": user.username, "password": PASSWORD}, headers=csrf_headers(client))
    assert users_with_email(database_url, "owner@gmail.example")[0][2] == "g-owner"


async def test_a_signed_in_user_links_google_from_settings(client: Any, google: Any, database_url: str) -> None:
    user = await make_user(email="linker@uni.example")
    await web_login(client, user.username)
    google.person = Person(sub="g-linker", email="someone.else@gmail.example")
    response = await google_round_trip(client, intent="link")
    assert response.headers["location"] == "/settings"
    assert users_with_email(database_url, "linker@uni.example")[0][2] == "g-linker"


async def test_an_unverified_email_is_refused(client: Any, google: Any, database_url: str) -> None:
    google.person = Person(sub="g-unverified", email="unverified@gmail.example", email_verified=False)
    response = await google_round_trip(client)
    assert response.status_code == 400
    assert "email address is not verified" in response.text
    assert users_with_email(database_url, "unverified@gmail.example") == []


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"nonce": "not-the-nonce"}, "could not be verified"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "could not be verified"),
        ({"aud": "someone-else"}, "could not be verified"),
    ],
    ids=["wrong nonce", "expired", "other audience"],
)
async def test_a_bad_id_token_is_refused(
    client: Any, google: Any, database_url: str, override: dict[str, Any], message: str
) -> None:
    google.person = Person(sub="g-bad", email="bad.token@gmail.example")
    google.id_token_overrides.update(override)
    response = await google_round_trip(client)
    assert response.status_code == 400
    assert message in response.text
    assert users_with_email(database_url, "bad.token@gmail.example") == []


async def test_a_badly_signed_id_token_is_refused(client: Any, google: Any, database_url: str) -> None:
    google.person = Person(sub="g-forged", email="forged@gmail.example")
    google.signing_key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    response = await google_round_trip(client)
    assert response.status_code == 400
    assert users_with_email(database_url, "forged@gmail.example") == []


async def test_a_wrong_or_replayed_state_is_refused(client: Any, google: Any, database_url: str) -> None:
    google.person = Person(sub="g-replay", email="replay@gmail.example")
    start = await client.get("/auth/google")
    async with httpx.AsyncClient() as browser:
        approved = await browser.get(start.headers["location"])
    query = parse_qs(urlparse(approved.headers["location"]).query)
    forged = await client.get("/auth/google/callback", params={"code": query["code"][0], "state": "forged"})
    assert forged.status_code == 400
    assert "not valid any more" in forged.text
    replay = await client.get("/auth/google/callback", params={"code": query["code"][0], "state": query["state"][0]})
    assert replay.status_code == 400  # the state was used up by the forged attempt
    assert users_with_email(database_url, "replay@gmail.example") == []


async def test_access_denied_at_google_changes_nothing(client: Any, google: Any) -> None:
    await client.get("/auth/google")
    response = await client.get("/auth/google/callback", params={"error": "access_denied", "state": "x"})
    assert response.status_code == 400
    assert "You cancelled the Google sign-in." in response.text


async def connect_calendar(client: Any, google: Any, user: Any, sub: str) -> None:
    await web_login(client, user.username)
    google.person = Person(sub=sub, email=user.email)
    response = await google_round_trip(client, intent="calendar")
    assert response.headers["location"] == "/settings"


async def sync(booking_id: Any, settings: Any = None) -> dict[Any, str]:
    async with provide_services() as services:
        return await CalendarSync(services.session, settings or get_settings()).sync_booking(booking_id)


async def test_the_stored_calendar_token_holds_no_plaintext(client: Any, google: Any, database_url: str) -> None:
    user = await make_user()
    await connect_calendar(client, google, user, "g-cal")
    with psycopg.connect(database_url) as conn:
        (stored, enabled) = conn.execute(
            "SELECT google_calendar_token, calendar_sync_enabled FROM profile WHERE user_id = %s", (user.id,)
        ).fetchone()
    grant = google.grants[-1]
    assert enabled is True
    assert grant.access_token not in stored
    assert grant.refresh_token not in stored
    assert stored.startswith("gAAAA")  # a Fernet token


async def both_connected_and_booked(client: Any, other_client: Any, google: Any, prefix: str) -> tuple[Any, ...]:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    await connect_calendar(client, google, professor, f"{prefix}-prof")
    await connect_calendar(other_client, google, student, f"{prefix}-stud")
    booking = await book(student, await make_slot(professor, location="Room 7"))
    return professor, student, booking


async def test_a_confirmed_booking_creates_an_event_in_each_partys_calendar(
    client: Any, other_client: Any, google: Any
) -> None:
    professor, _, booking = await both_connected_and_booked(client, other_client, google, "g-create")
    outcome = await sync(booking.id)
    assert set(outcome.values()) == {"created"}
    (student_event,) = google.calendar_of("g-create-stud").values()
    (professor_event,) = google.calendar_of("g-create-prof").values()
    assert student_event["summary"] == f"Consultation with {professor.full_name}"
    assert professor_event["location"] == "Room 7"


async def test_a_cancelled_booking_deletes_its_events_from_both_calendars(
    client: Any, other_client: Any, google: Any
) -> None:
    _, student, booking = await both_connected_and_booked(client, other_client, google, "g-delete")
    await sync(booking.id)
    async with provide_services() as services:
        await services.bookings.cancel(student, booking.id)
    await sync(booking.id)
    assert google.calendar_of("g-delete-stud") == {}
    assert google.calendar_of("g-delete-prof") == {}


async def test_a_retried_sync_never_creates_a_second_event(client: Any, google: Any, database_url: str) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    await connect_calendar(client, google, student, "g-retry")
    booking = await book(student, await make_slot(professor))
    await sync(booking.id)
    # As if the job died after Google made the event but before we stored its id: run it again.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM calendar_event")
    await sync(booking.id)
    await sync(booking.id)
    assert len(google.calendar_of("g-retry")) == 1


async def test_google_busy_answers_are_retried(client: Any, google: Any) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    await connect_calendar(client, google, student, "g-busy")
    booking = await book(student, await make_slot(professor))
    google.fail_next.extend([503])
    with pytest.raises(RetryableSyncError):
        await sync(booking.id)
    assert await sync(booking.id) == {student.id: "created"}


async def expire_access_token(google: Any, user: Any) -> None:
    """Google forgets the access token it gave `user`, and so do we (it expired): the next call must refresh it."""
    google.grants[-1].expires_at = time.time() - 10
    async with provide_services() as services:
        profile = (await services.users.get(user.id)).profile
        grant = decrypt_json(profile.google_calendar_token or "", get_settings()) or {}
        profile.google_calendar_token = encrypt_json({**grant, "expires_at": time.time() - 10}, get_settings())


def calendar_profile(database_url: str, user_id: Any) -> tuple[Any, ...]:
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT calendar_sync_enabled, google_calendar_token IS NOT NULL, calendar_sync_error"
            " FROM profile WHERE user_id = %s",
            (user_id,),
        ).fetchone()
    assert found is not None
    return tuple(found)


def notification_kinds(database_url: str, user_id: Any) -> list[str]:
    with psycopg.connect(database_url) as conn:
        return [r[0] for r in conn.execute("SELECT kind FROM notification WHERE user_id = %s", (user_id,))]


async def test_an_expired_access_token_is_refreshed(client: Any, google: Any, database_url: str) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    await connect_calendar(client, google, student, "g-refresh")
    await expire_access_token(google, student)
    booking = await book(student, await make_slot(professor))
    assert await sync(booking.id) == {student.id: "created"}
    assert google.refresh_calls == 1
    assert len(google.calendar_of("g-refresh")) == 1


async def test_invalid_grant_at_refresh_turns_sync_off(client: Any, google: Any, database_url: str) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    await connect_calendar(client, google, student, "g-invalid-grant")
    await expire_access_token(google, student)
    google.refresh_fails_with = "invalid_grant"
    booking = await book(student, await make_slot(professor))
    assert await sync(booking.id) == {student.id: "access lost"}
    enabled, has_token, error = calendar_profile(database_url, student.id)
    assert (enabled, has_token) == (False, False)
    assert error == "Google Calendar stopped accepting our access (it was revoked or expired). Connect it again."


async def test_invalid_grant_at_refresh_mails_calendar_disconnected(
    client: Any, google: Any, database_url: str, mailbox: Any
) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    await connect_calendar(client, google, student, "g-invalid-grant-mail")
    await expire_access_token(google, student)
    google.refresh_fails_with = "invalid_grant"
    booking = await book(student, await make_slot(professor))
    await sync(booking.id)
    assert "calendar_disconnected" in notification_kinds(database_url, student.id)
    await deliver_queued(database_url)
    (message,) = [m for m in mailbox.to(student.email) if "Google Calendar" in str(m["Subject"])]
    assert str(message["Subject"]) == "Google Calendar sync is off"
    assert "Connect it again under Settings: http" in message.get_body(("plain",)).get_content()


@pytest.mark.parametrize("status", ["500", "503"])
async def test_a_google_error_at_refresh_keeps_the_connection_and_retries(
    client: Any, google: Any, database_url: str, mailbox: Any, status: str
) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    await connect_calendar(client, google, student, f"g-refresh-{status}")
    await expire_access_token(google, student)
    google.refresh_fails_with = status
    booking = await book(student, await make_slot(professor))
    with pytest.raises(RetryableSyncError):
        await sync(booking.id)
    assert calendar_profile(database_url, student.id) == (True, True, "")
    assert "calendar_disconnected" not in notification_kinds(database_url, student.id)
    await deliver_queued(database_url)
    assert not [m for m in mailbox.to(student.email) if "Google Calendar" in str(m["Subject"])]


async def test_the_retry_after_a_google_error_at_refresh_creates_the_event(client: Any, google: Any) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    await connect_calendar(client, google, student, "g-refresh-recovers")
    await expire_access_token(google, student)
    google.refresh_fails_with = "503"
    booking = await book(student, await make_slot(professor))
    with pytest.raises(RetryableSyncError):
        await sync(booking.id)
    google.refresh_fails_with = None
    assert await sync(booking.id) == {student.id: "created"}
    assert len(google.calendar_of("g-refresh-recovers")) == 1


async def test_a_token_endpoint_that_does_not_answer_keeps_the_connection_and_retries(
    client: Any, google: Any, database_url: str, mailbox: Any
) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    await connect_calendar(client, google, student, "g-refresh-timeout")
    await expire_access_token(google, student)
    google.refresh_fails_with, google.hang_seconds = "timeout", 4.0
    booking = await book(student, await make_slot(professor))
    impatient = dataclasses.replace(get_settings(), google_timeout_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(RetryableSyncError):
        await sync(booking.id, impatient)
    assert time.monotonic() - started < 3.5  # gave up at the timeout, did not wait for the answer
    assert calendar_profile(database_url, student.id) == (True, True, "")
    assert "calendar_disconnected" not in notification_kinds(database_url, student.id)


async def test_a_sync_job_failing_at_refresh_is_queued_again_with_backoff(
    client: Any, google: Any, database_url: str
) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    await connect_calendar(client, google, student, "g-refresh-job")
    await expire_access_token(google, student)
    booking = await book(student, await make_slot(professor))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM saq_jobs")  # only the job below in the queue
    google.refresh_fails_with = "503"
    await queue_calendar_syncs([booking.id])
    queue = await get_queue()
    assert await Worker(queue, functions=[sync_booking_calendar]).process() is True
    with psycopg.connect(database_url) as conn:
        (key,) = conn.execute("SELECT key FROM saq_jobs WHERE key LIKE 'calendar:%'").fetchone()
    job = await queue.job(key)
    assert (job.status, job.attempts) == ("queued", 1)  # queued again, not failed
    # SAQ waits up to retry_delay * 2^(attempt-1) (random "full jitter") before each of the 6 tries.
    assert (job.retries, job.retry_delay, job.retry_backoff) == (6, 5.0, True)
    assert "refreshing the access token failed" in (job.error or "")
    assert calendar_profile(database_url, student.id) == (True, True, "")


async def test_busy_times_are_skipped_without_disconnecting_when_google_fails(
    client: Any, google: Any, database_url: str
) -> None:
    professor = await make_user("professor", timezone="UTC")
    await connect_calendar(client, google, professor, "g-freebusy-down")
    await expire_access_token(google, professor)
    google.refresh_fails_with = "503"
    day = in_hours(72).date()
    form = {
        "start_date": str(day),
        "end_date": str(day),
        "weekdays": [str(day.weekday())],
        "day_start": "10:00",
        "day_end": "11:00",
        "duration_minutes": "30",
        "buffer_minutes": "0",
        "capacity": "1",
    }
    preview = await client.post(
        "/dashboard/slots/preview", data=form, headers={**csrf_headers(client), "HX-Request": "true"}
    )
    assert "Preview: 2 slots would be created" in preview.text
    assert calendar_profile(database_url, professor.id) == (True, True, "")


async def test_a_revoked_grant_turns_sync_off_and_tells_the_user(client: Any, google: Any, database_url: str) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    await connect_calendar(client, google, student, "g-revoked")
    google.revoke_all(google.person)
    booking = await book(student, await make_slot(professor))
    assert await sync(booking.id) == {student.id: "access lost"}
    with psycopg.connect(database_url) as conn:
        profile = conn.execute(
            "SELECT calendar_sync_enabled, google_calendar_token, calendar_sync_error FROM profile WHERE user_id = %s",
            (student.id,),
        ).fetchone()
        kinds = [r[0] for r in conn.execute("SELECT kind FROM notification WHERE user_id = %s", (student.id,))]
    assert profile[:2] == (False, None)
    assert "Connect it again" in profile[2]
    assert "calendar_disconnected" in kinds
    settings_page = await client.get("/settings")
    assert "Google Calendar stopped accepting our access" in settings_page.text


async def test_disconnecting_revokes_the_token_at_google(client: Any, google: Any, database_url: str) -> None:
    user = await make_user()
    await connect_calendar(client, google, user, "g-disconnect")
    refresh_token = google.grants[-1].refresh_token
    response = await client.post("/settings/calendar/disconnect", headers=csrf_headers(client))
    assert response.status_code == 303
    assert google.revoked_tokens == [refresh_token]
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT calendar_sync_enabled, google_calendar_token FROM profile WHERE user_id = %s", (user.id,)
        ).fetchone()
    assert row == (False, None)


async def test_busy_times_are_flagged_in_the_preview_and_skipped(client: Any, google: Any, database_url: str) -> None:
    professor = await make_user("professor", timezone="UTC")
    await connect_calendar(client, google, professor, "g-freebusy")
    day = in_hours(72).date()
    google.busy["g-freebusy"] = [{"start": f"{day}T10:00:00Z", "end": f"{day}T10:45:00Z"}]
    form = {
        "start_date": str(day),
        "end_date": str(day),
        "weekdays": [str(day.weekday())],
        "day_start": "10:00",
        "day_end": "12:00",
        "duration_minutes": "30",
        "buffer_minutes": "0",
        "capacity": "1",
    }
    headers = {**csrf_headers(client), "HX-Request": "true"}
    preview = await client.post("/dashboard/slots/preview", data=form, headers=headers)
    assert "Preview: 2 slots would be created" in preview.text
    assert preview.text.count('class="busy-time skipped"') == 2
    created = await client.post("/dashboard/slots/bulk", data=form, headers=headers)
    assert "<h3>2 slots created</h3>" in created.text
    kept = await client.post("/dashboard/slots/bulk", data={**form, "keep_busy": "on"}, headers=headers)
    assert "<h3>2 slots created</h3>" in kept.text
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM consultation_slot").fetchone() == (4,)


@pytest.mark.slow
async def test_without_google_settings_the_buttons_are_gone_and_nothing_breaks(database_url: str) -> None:
    port = free_port()
    server = start_server(database_url, port, GOOGLE_CLIENT_ID="", GOOGLE_CLIENT_SECRET="")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, server)
        async with httpx.AsyncClient(base_url=url) as browser:
            login = await browser.get("/login")
            assert login.status_code == 200
            assert "Sign in with Google" not in login.text
            assert (await browser.get("/auth/google")).status_code == 404
    finally:
        server.terminate()
        server.wait(timeout=15)


async def test_unlinking_google_forgets_the_identity_and_keeps_the_password(
    client: Any, google: Any, database_url: str
) -> None:
    user = await make_user(email="unlinker@uni.example")
    await web_login(client, user.username)
    google.person = Person(sub="g-unlinker", email="unlinker@gmail.example")
    await google_round_trip(client, intent="link")
    response = await client.post("/settings/google/unlink", headers=csrf_headers(client))
    assert (response.status_code, response.headers["location"]) == (303, "/settings")
    ((_, _, google_sub, password_hash),) = users_with_email(database_url, "unlinker@uni.example")
    assert (google_sub, password_hash is not None) == (None, True)


async def test_a_google_only_account_cannot_unlink_its_only_way_in(client: Any, google: Any, database_url: str) -> None:
    google.person = Person(sub="g-only", email="only.google@gmail.example")
    await google_round_trip(client)
    await client.post("/auth/google/complete", data={"user_type": "student"}, headers=csrf_headers(client))
    response = await client.post("/settings/google/unlink", headers=csrf_headers(client))
    assert response.status_code == 409
    assert "Set a password first" in response.text
    assert users_with_email(database_url, "only.google@gmail.example")[0][2] == "g-only"


async def test_moving_a_slot_updates_the_google_event_to_the_new_time(client: Any, google: Any) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    await connect_calendar(client, google, student, "g-moved")
    start, later = in_hours(48), in_hours(53)
    booking = await book(student, await make_slot(professor, start=start))
    await sync(booking.id)
    async with provide_services() as services:
        await services.slots.update_slot(
            professor, booking.slot_id, {"start_time": later, "end_time": later + timedelta(minutes=30)}
        )
    assert await sync(booking.id) == {student.id: "updated"}
    (event,) = google.calendar_of("g-moved").values()
    assert datetime.fromisoformat(event["start"]["dateTime"]) == later
    assert datetime.fromisoformat(event["end"]["dateTime"]) == later + timedelta(minutes=30)


async def test_moving_a_slot_queues_a_calendar_sync_of_its_booking(client: Any, google: Any, database_url: str) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    await connect_calendar(client, google, student, "g-moved-queued")
    later = in_hours(53)
    booking = await book(student, await make_slot(professor))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM saq_jobs")
    async with provide_services() as services:
        await services.slots.update_slot(
            professor, booking.slot_id, {"start_time": later, "end_time": later + timedelta(minutes=30)}
        )
    with psycopg.connect(database_url) as conn:
        keys = [row[0] for row in conn.execute("SELECT key FROM saq_jobs WHERE status = 'queued'")]
    assert [key.rsplit(":", 1)[0] for key in keys if key.startswith("calendar:")] == [f"calendar:{booking.id}"]
