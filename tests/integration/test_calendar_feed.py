"""The personal iCalendar feed at a secret URL, and the development mailbox at /dev/mail."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from icalendar import Calendar

from app.config import get_settings
from app.domain.accounts.models import User
from app.domain.admin import controllers
from app.services import provide_services
from tests.helpers import book, csrf_headers, in_hours, make_admin, make_slot, make_user, web_login


def feed_token(database_url: str, user: User) -> str:
    with psycopg.connect(database_url) as conn:
        found = conn.execute("SELECT ics_feed_token FROM profile WHERE user_id = %s", (user.id,)).fetchone()
    assert found is not None
    return str(found[0])


async def feed_of(client: Any, database_url: str, user: User) -> Calendar:
    response = await client.get(f"/calendar/{feed_token(database_url, user)}.ics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    return Calendar.from_ical(response.content)


def events(calendar: Calendar) -> dict[str, str]:
    """UID -> STATUS of each event in the feed."""
    return {str(event["UID"]): str(event["STATUS"]) for event in calendar.walk("VEVENT")}


def uid(booking: Any) -> str:
    return f"booking-{booking.id}@office-hours"


async def bookings_in_three_states(professor: User) -> tuple[Any, Any, Any]:
    """A pending, a confirmed and a cancelled booking on the professor's slots, by three students."""
    pending = await book(await make_user(), await make_slot(professor, start=in_hours(48)))
    confirmed = await book(await make_user(), await make_slot(professor, start=in_hours(50)))
    cancelled = await book(await make_user(), await make_slot(professor, start=in_hours(52)))
    async with provide_services() as services:
        await services.bookings.confirm(professor, confirmed.id)
        await services.bookings.cancel(professor, cancelled.id, "Double-booked")
    return pending, confirmed, cancelled


async def test_the_feed_lists_a_professors_pending_and_confirmed_consultations_only(
    client: Any, database_url: str
) -> None:
    professor = await make_user("professor")
    pending, confirmed, _ = await bookings_in_three_states(professor)
    calendar = await feed_of(client, database_url, professor)
    assert events(calendar) == {uid(pending): "TENTATIVE", uid(confirmed): "CONFIRMED"}


async def test_the_feed_says_its_type_once_and_stamps_events_with_their_last_change(
    client: Any, database_url: str
) -> None:
    professor = await make_user("professor")
    pending, confirmed, _ = await bookings_in_three_states(professor)
    path = f"/calendar/{feed_token(database_url, professor)}.ics"
    first, second = await client.get(path), await client.get(path)
    assert first.headers["content-type"] == "text/calendar; charset=utf-8"
    assert first.content == second.content  # nothing changed, so a calendar app polling sees no change
    with psycopg.connect(database_url) as conn:
        changed = dict(conn.execute("SELECT id, date_trunc('second', updated_at) FROM booking").fetchall())
    stamps = {str(event["UID"]): event.decoded("DTSTAMP") for event in Calendar.from_ical(first.content).walk("VEVENT")}
    assert stamps == {uid(pending): changed[pending.id], uid(confirmed): changed[confirmed.id]}
    head = await client.head(path)
    assert (head.status_code, head.content) == (200, b"")


async def test_a_dev_mail_link_needs_an_administrator(client: Any, database_url: str) -> None:
    await book(await make_user(), await make_slot(await make_user("professor")))
    await web_login(client, (await make_user()).username)
    assert (await client.get("/dev/mail")).status_code == 403


async def test_the_feed_lists_a_students_own_active_consultations_only(client: Any, database_url: str) -> None:
    professor, student = await make_user("professor", max_active_bookings_per_student=5), await make_user()
    kept = await book(student, await make_slot(professor, start=in_hours(48)))
    dropped = await book(student, await make_slot(professor, start=in_hours(50)))
    await book(await make_user(), await make_slot(professor, start=in_hours(52)))  # someone else's
    async with provide_services() as services:
        await services.bookings.cancel(student, dropped.id)
    calendar = await feed_of(client, database_url, student)
    assert events(calendar) == {uid(kept): "TENTATIVE"}


async def test_a_user_without_consultations_gets_an_empty_feed(client: Any, database_url: str) -> None:
    calendar = await feed_of(client, database_url, await make_user())
    assert events(calendar) == {}


async def test_an_unknown_feed_token_is_not_found(client: Any, database_url: str) -> None:
    await make_user()
    assert (await client.get("/calendar/not-a-real-token.ics")).status_code == 404


async def test_a_feed_url_without_the_ics_suffix_is_not_found(client: Any, database_url: str) -> None:
    user = await make_user()
    assert (await client.get(f"/calendar/{feed_token(database_url, user)}")).status_code == 404


async def test_regenerating_the_feed_link_retires_the_old_one(
    client: Any, other_client: Any, database_url: str
) -> None:
    student = await make_user()
    await book(student, await make_slot(await make_user("professor")))
    old = feed_token(database_url, student)
    await web_login(client, student.username)
    response = await client.post("/settings/calendar-feed", headers=csrf_headers(client))
    assert response.status_code == 303
    new = feed_token(database_url, student)
    assert new != old
    assert (await other_client.get(f"/calendar/{old}.ics")).status_code == 404
    fresh = await other_client.get(f"/calendar/{new}.ics")
    assert fresh.status_code == 200
    assert len(Calendar.from_ical(fresh.content).walk("VEVENT")) == 1


# The development mailbox.


def notification_ids(database_url: str) -> list[Any]:
    with psycopg.connect(database_url) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM notification ORDER BY created_at")]


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = dataclasses.replace(get_settings(), app_env="production")
    monkeypatch.setattr(controllers, "get_settings", lambda: settings)


async def test_the_dev_mailbox_lists_outbox_mails_outside_production(client: Any, database_url: str) -> None:
    professor = await make_user("professor", first_name="Grace", last_name="Hopper", auto_confirm=True)
    student = await make_user(first_name="Ada", last_name="Lovelace")
    await book(student, await make_slot(professor))
    await web_login(client, (await make_admin()).username)
    response = await client.get("/dev/mail")
    assert response.status_code == 200
    for notification_id in notification_ids(database_url):
        assert f'href="/dev/mail/{notification_id}"' in response.text
    assert "New booking: Ada Lovelace on " in response.text
    assert "Confirmed: consultation with Grace Hopper on " in response.text
    assert professor.email in response.text
    assert student.email in response.text


async def test_the_dev_mailbox_renders_a_mail_as_its_recipient_sees_it(client: Any, database_url: str) -> None:
    student = await make_user(first_name="Ada", last_name="Lovelace")
    await book(student, await make_slot(await make_user("professor")), topic="Exam prep")
    notification_id, _acknowledgement = notification_ids(database_url)  # the request, then the student's receipt
    await web_login(client, (await make_admin()).username)
    response = await client.get(f"/dev/mail/{notification_id}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "Ada Lovelace booked your consultation slot" in response.text
    assert "Exam prep" in response.text


async def test_an_unknown_dev_mail_is_not_found(client: Any, database_url: str) -> None:
    await web_login(client, (await make_admin()).username)
    response = await client.get("/dev/mail/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404


@pytest.mark.usefixtures("production")
async def test_the_dev_mailbox_is_not_served_in_production(client: Any, database_url: str) -> None:
    await book(await make_user(), await make_slot(await make_user("professor")))
    notification_id, _acknowledgement = notification_ids(database_url)  # the request, then the student's receipt
    await web_login(client, (await make_admin()).username)
    assert (await client.get("/dev/mail")).status_code == 404
    assert (await client.get(f"/dev/mail/{notification_id}")).status_code == 404


async def test_a_feed_event_starts_and_ends_at_the_consultations_instants(client: Any, database_url: str) -> None:
    professor, student = await make_user("professor"), await make_user()
    start = in_hours(48)
    await book(student, await make_slot(professor, start=start, minutes=45))
    (event,) = (await feed_of(client, database_url, student)).walk("VEVENT")
    assert (event.decoded("DTSTART"), event.decoded("DTEND")) == (start, start + timedelta(minutes=45))


async def test_a_feed_event_is_summarised_with_the_other_party_for_each_side(client: Any, database_url: str) -> None:
    professor = await make_user("professor", first_name="Grace", last_name="Hopper")
    student = await make_user(first_name="Ada", last_name="Lovelace")
    await book(student, await make_slot(professor, location="Room 9"), "Loops")
    (seen_by_student,) = (await feed_of(client, database_url, student)).walk("VEVENT")
    (seen_by_professor,) = (await feed_of(client, database_url, professor)).walk("VEVENT")
    assert str(seen_by_student["SUMMARY"]) == "Consultation with Grace Hopper"
    assert str(seen_by_professor["SUMMARY"]) == "Consultation with Ada Lovelace"
    assert (str(seen_by_student["LOCATION"]), str(seen_by_student["DESCRIPTION"])) == ("Room 9", "Loops")


async def test_a_moved_slot_moves_the_feed_event_and_raises_its_sequence(client: Any, database_url: str) -> None:
    professor, student = await make_user("professor"), await make_user()
    start, later = in_hours(48), in_hours(52)
    booking = await book(student, await make_slot(professor, start=start))
    (before,) = (await feed_of(client, database_url, student)).walk("VEVENT")
    async with provide_services() as services:
        await services.slots.update_slot(
            professor, booking.slot_id, {"start_time": later, "end_time": later + timedelta(minutes=30)}
        )
    (after,) = (await feed_of(client, database_url, student)).walk("VEVENT")
    assert after.decoded("DTSTART") == later
    assert int(after["SEQUENCE"]) > int(before["SEQUENCE"])
