"""Reminders before a consultation: one per party and lead time, only for bookings that still stand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import psycopg
from psycopg.rows import dict_row

from app.domain.accounts.models import User
from app.domain.consultations.models import Booking
from app.lib.clock import fixed_clock
from app.lib.formatting import local_time
from app.services import provide_services
from app.worker import deliver_notification, send_due_reminders
from tests.conftest import Mailbox
from tests.helpers import api_token, book, in_hours, make_slot, make_user

DAY_AHEAD = timedelta(hours=24) - timedelta(seconds=30)


def reminder_rows(database_url: str) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute("SELECT * FROM notification WHERE kind = 'reminder' ORDER BY created_at, id").fetchall()


async def deliver_reminders(database_url: str) -> list[str]:
    queued = [row["id"] for row in reminder_rows(database_url) if row["status"] == "queued"]
    return [await deliver_notification({}, notification_id=str(notification_id)) for notification_id in queued]


def reminders_received(mailbox: Mailbox) -> list[EmailMessage]:
    return [m for m in mailbox.messages if str(m["Subject"]).strip().startswith("Reminder:")]


def existed_since_two_days(database_url: str, booking: Booking) -> None:
    """The booking was made well before its reminder time."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE booking SET created_at = now() - interval '2 days' WHERE id = %s", (booking.id,))


def starts_in(database_url: str, booking: Booking, delay: timedelta) -> None:
    """Time passes: the slot and its booking now start `delay` from now (same booking version)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE consultation_slot SET start_time = now() + %s, end_time = now() + %s + interval '30 minutes'"
            " WHERE id = %s",
            (delay, delay, booking.slot_id),
        )
        conn.execute(
            "UPDATE booking b SET start_time = s.start_time, end_time = s.end_time FROM consultation_slot s"
            " WHERE b.slot_id = s.id AND b.id = %s",
            (booking.id,),
        )


async def confirmed_booking(professor: User, student: User, start: datetime) -> Booking:
    booking = await book(student, await make_slot(professor, start=start))
    async with provide_services() as services:
        return await services.bookings.confirm(professor, booking.id)


async def test_a_confirmed_booking_gets_one_reminder_per_party_however_often_reminders_run(
    database_url: str, mailbox: Mailbox
) -> None:
    professor, student = await make_user("professor"), await make_user(timezone="Europe/Berlin")
    start = in_hours(0) + DAY_AHEAD
    booking = await confirmed_booking(professor, student, start)
    existed_since_two_days(database_url, booking)
    assert await send_due_reminders({}) == 2
    assert await send_due_reminders({}) == 0
    assert await deliver_reminders(database_url) == ["sent", "sent"]
    received = reminders_received(mailbox)
    assert sorted(m["To"] for m in received) == sorted([student.email, professor.email])
    (to_student,) = [m for m in received if m["To"] == student.email]
    when = local_time(start, "Europe/Berlin")
    assert str(to_student["Subject"]).strip() == f"Reminder: consultation on {when} (Europe/Berlin)"
    assert "your consultation starts in 24 hours" in to_student.get_body(("plain",)).get_content()
    assert {(row["user_id"], row["status"]) for row in reminder_rows(database_url)} == {
        (student.id, "sent"),
        (professor.id, "sent"),
    }


async def test_a_cancelled_booking_gets_no_reminder(database_url: str, mailbox: Mailbox) -> None:
    professor, student = await make_user("professor"), await make_user()
    booking = await confirmed_booking(professor, student, in_hours(0) + DAY_AHEAD)
    existed_since_two_days(database_url, booking)
    async with provide_services() as services:
        await services.bookings.cancel(student, booking.id)
    assert await send_due_reminders({}) == 0
    assert reminder_rows(database_url) == []


async def test_a_booking_made_inside_the_reminder_window_gets_no_reminder(database_url: str) -> None:
    professor, student = await make_user("professor"), await make_user()
    await confirmed_booking(professor, student, in_hours(0) + DAY_AHEAD)
    assert await send_due_reminders({}) == 0
    assert reminder_rows(database_url) == []


async def test_a_reminder_for_a_booking_moved_before_delivery_is_skipped(database_url: str, mailbox: Mailbox) -> None:
    professor, student = await make_user("professor"), await make_user()
    start = in_hours(0) + DAY_AHEAD
    booking = await confirmed_booking(professor, student, start)
    existed_since_two_days(database_url, booking)
    assert await send_due_reminders({}) == 2
    later = start + timedelta(hours=3)
    async with provide_services() as services:
        await services.slots.update_slot(
            professor, booking.slot_id, {"start_time": later, "end_time": later + timedelta(minutes=30)}
        )
    assert await deliver_reminders(database_url) == ["skipped", "skipped"]
    assert reminders_received(mailbox) == []
    assert [(row["status"], row["attempts"]) for row in reminder_rows(database_url)] == [("skipped", 0)] * 2
    assert await send_due_reminders({}) == 0  # the new time is more than a day away


async def test_a_second_lead_time_yields_a_second_reminder_when_due(
    client: Any, database_url: str, mailbox: Mailbox
) -> None:
    professor, student = await make_user("professor"), await make_user()
    changed = await client.patch(
        "/api/v1/me", json={"second_reminder_minutes": 60}, headers=await api_token(client, student.username)
    )
    assert changed.status_code == 200, changed.text
    booking = await confirmed_booking(professor, student, in_hours(0) + DAY_AHEAD)
    existed_since_two_days(database_url, booking)
    assert await send_due_reminders({}) == 2  # the day-ahead reminders; the hour-ahead one is not due yet
    assert await deliver_reminders(database_url) == ["sent", "sent"]
    starts_in(database_url, booking, timedelta(minutes=60) - timedelta(seconds=30))
    assert await send_due_reminders({}) == 1
    assert await send_due_reminders({}) == 0
    assert await deliver_reminders(database_url) == ["sent"]
    assert sorted(m["To"] for m in reminders_received(mailbox)) == sorted(
        [student.email, student.email, professor.email]
    )
    assert sorted(
        (row["user_id"] == student.id, row["context"]["lead_minutes"]) for row in reminder_rows(database_url)
    ) == [
        (False, 1440),
        (True, 60),
        (True, 1440),
    ]


async def test_a_reminder_across_the_spring_clock_change_comes_24_hours_ahead_and_names_the_local_time(
    database_url: str, mailbox: Mailbox
) -> None:
    # Sunday 25 March 2035, 10:00 in Berlin: the clocks went forward at 02:00 that night, so the reminder 24 hours
    # ahead goes out at 09:00 local time on Saturday, and the mail still names 10:00.
    start = datetime(2035, 3, 25, 8, 0, tzinfo=UTC)
    with fixed_clock(datetime(2035, 3, 20, 12, 0, tzinfo=UTC)):
        professor, student = await make_user("professor"), await make_user(timezone="Europe/Berlin")
        await confirmed_booking(professor, student, start)
    with fixed_clock(start - timedelta(hours=24, minutes=1)):
        assert await send_due_reminders({}) == 0
    with fixed_clock(start - timedelta(hours=24) + timedelta(seconds=30)):
        assert await send_due_reminders({}) == 2
        assert await deliver_reminders(database_url) == ["sent", "sent"]
    (to_student,) = [m for m in reminders_received(mailbox) if m["To"] == student.email]
    when = local_time(start, "Europe/Berlin")
    assert "10:00" in when
    assert str(to_student["Subject"]).strip() == f"Reminder: consultation on {when} (Europe/Berlin)"
