"""E-mail notifications end to end: outbox rows delivered over real SMTP (aiosmtpd on loopback).

Deliveries are driven by calling the queue task directly, as the worker would, so each test is deterministic.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import psycopg
from icalendar import Calendar
from psycopg.rows import dict_row

from app.domain.accounts.models import User
from app.domain.notifications.delivery import MAX_ATTEMPTS
from app.lib.clock import fixed_clock
from app.lib.formatting import local_time
from app.services import provide_services
from app.worker import deliver_notification
from tests.conftest import Mailbox
from tests.helpers import book, in_hours, make_slot, make_user

ROOT = Path(__file__).resolve().parents[2]
PROFESSOR_ZONE, STUDENT_ZONE = "America/New_York", "Europe/Berlin"


async def make_professor(**fields: Any) -> User:
    return await make_user("professor", first_name="Grace", last_name="Hopper", timezone=PROFESSOR_ZONE, **fields)


async def make_student(**fields: Any) -> User:
    return await make_user(**{"first_name": "Ada", "last_name": "Lovelace", "timezone": STUDENT_ZONE, **fields})


def when(moment: datetime, zone: str) -> str:
    """The start as the subject names it: the recipient's local time, then the zone."""
    return f"{local_time(moment, zone)} ({zone})"


def rows(database_url: str, where: str = "TRUE", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(f"SELECT * FROM notification WHERE {where} ORDER BY created_at, id", params).fetchall()


def row(database_url: str, notification_id: Any) -> dict[str, Any]:
    (found,) = rows(database_url, "id = %s", (notification_id,))
    return found


async def deliver(notification_id: Any) -> str:
    return await deliver_notification({}, notification_id=str(notification_id))


async def deliver_queued(database_url: str) -> list[str]:
    """Deliver every queued row once, oldest first, as the worker's jobs would."""
    return [await deliver(queued["id"]) for queued in rows(database_url, "status = 'queued'")]


def subject(message: EmailMessage) -> str:
    """The Subject as a mail client shows it (Python folds a long one onto a continuation line)."""
    return str(message["Subject"]).strip()


def answers(mailbox: Mailbox, user: User) -> list[EmailMessage]:
    """What reached `user`, less the acknowledgement of their own request (see test_email_actions.py)."""
    return [m for m in mailbox.to(user.email) if not subject(m).startswith("Request sent: ")]


def bodies(message: EmailMessage) -> tuple[str, str]:
    """The plain-text and HTML parts; both must be there."""
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None, message.as_string()
    assert html is not None, message.as_string()
    return plain.get_content(), html.get_content()


def calendars(message: EmailMessage) -> list[Calendar]:
    return [
        Calendar.from_ical(part.get_payload(decode=True))
        for part in message.walk()
        if part.get_content_type() == "text/calendar"
    ]


def only_event(message: EmailMessage) -> tuple[Calendar, Any]:
    (calendar,) = calendars(message)
    (event,) = calendar.walk("VEVENT")
    return calendar, event


def booking_sequence(database_url: str, booking_id: Any) -> int:
    with psycopg.connect(database_url) as conn:
        found = conn.execute("SELECT sequence FROM booking WHERE id = %s", (booking_id,)).fetchone()
    assert found is not None
    return int(found[0])


async def confirm(professor: User, booking_id: Any) -> None:
    async with provide_services() as services:
        await services.bookings.confirm(professor, booking_id)


async def cancel(user: User, booking_id: Any, reason: str = "") -> None:
    async with provide_services() as services:
        await services.bookings.cancel(user, booking_id, reason)


CLI_TIMEOUT_SECONDS = 30


def run_cli_now(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `app <args>` as an operator would; a command still running after 30 s is killed and reported."""
    command = [sys.executable, "-m", "app", *args]
    try:
        return subprocess.run(
            command,
            cwd=ROOT,
            env={**os.environ},
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = [part.decode() if isinstance(part, bytes) else (part or "") for part in (exc.stdout, exc.stderr)]
        return subprocess.CompletedProcess(
            command, -9, output[0], output[1] + f"\n[still running after {CLI_TIMEOUT_SECONDS} s: killed]"
        )


async def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_cli_now, *args)


# Each kind of e-mail: recipients, subjects, parts and calendar attachments.


async def test_professor_receives_a_booking_request_in_their_own_time_zone(database_url: str, mailbox: Mailbox) -> None:
    professor, student = await make_professor(), await make_student()
    start = in_hours(50)
    await book(student, await make_slot(professor, start=start))
    assert await deliver_queued(database_url) == ["sent", "sent"]  # the request, and its acknowledgement
    (message,) = mailbox.to(professor.email)
    assert message["To"] == professor.email
    assert message["From"] == "Office Hours <office-hours@uni.example>"
    assert subject(message) == f"New booking: Ada Lovelace on {when(start, PROFESSOR_ZONE)}"
    plain, html = bodies(message)
    assert "Ada Lovelace booked your consultation slot and waits for your confirmation." in plain
    assert "Ada Lovelace booked your consultation slot and waits for your confirmation." in html
    assert "(America/New_York)" in plain
    assert calendars(message) == []


async def test_student_receives_the_confirmation_with_a_calendar_request(database_url: str, mailbox: Mailbox) -> None:
    professor, student = await make_professor(), await make_student()
    start = in_hours(50)
    booking = await book(student, await make_slot(professor, start=start))
    await confirm(professor, booking.id)
    await deliver_queued(database_url)
    (message,) = answers(mailbox, student)
    assert subject(message) == f"Confirmed: consultation with Grace Hopper on {when(start, STUDENT_ZONE)}"
    plain, html = bodies(message)
    assert "Your consultation with Grace Hopper is confirmed." in plain
    assert "(Europe/Berlin)" in html
    calendar, event = only_event(message)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(event["UID"]) == f"booking-{booking.id}@office-hours"
    assert int(event["SEQUENCE"]) == booking_sequence(database_url, booking.id) == 1
    assert event.decoded("DTSTART") == start


async def test_student_receives_a_declined_request_with_the_reason_and_a_calendar_cancel(
    database_url: str, mailbox: Mailbox
) -> None:
    professor, student = await make_professor(), await make_student()
    start = in_hours(50)
    booking = await book(student, await make_slot(professor, start=start))
    requested_sequence = booking_sequence(database_url, booking.id)
    await cancel(professor, booking.id, "Called away to a conference")
    await deliver_queued(database_url)
    (message,) = answers(mailbox, student)
    assert subject(message) == f"Declined: consultation with Grace Hopper on {when(start, STUDENT_ZONE)}"
    plain, html = bodies(message)
    assert "Grace Hopper declined your booking request." in plain
    assert "Reason: Called away to a conference" in plain
    assert "Called away to a conference" in html
    calendar, event = only_event(message)
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(event["UID"]) == f"booking-{booking.id}@office-hours"
    assert int(event["SEQUENCE"]) == booking_sequence(database_url, booking.id) > requested_sequence


async def test_student_receives_the_professors_cancellation_of_a_confirmed_booking_as_a_later_calendar_cancel(
    database_url: str, mailbox: Mailbox
) -> None:
    professor, student = await make_professor(), await make_student()
    start = in_hours(50)
    booking = await book(student, await make_slot(professor, start=start))
    await confirm(professor, booking.id)
    await deliver_queued(database_url)
    await cancel(professor, booking.id, "Ill")
    await deliver_queued(database_url)
    confirmation, cancellation = answers(mailbox, student)
    assert subject(cancellation) == f"Cancelled: consultation on {when(start, STUDENT_ZONE)}"
    plain, html = bodies(cancellation)
    assert "Grace Hopper cancelled this consultation." in plain
    assert "Reason: Ill" in plain
    assert "Ill" in html
    _, confirmed_event = only_event(confirmation)
    calendar, cancelled_event = only_event(cancellation)
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(cancelled_event["UID"]) == str(confirmed_event["UID"]) == f"booking-{booking.id}@office-hours"
    assert int(cancelled_event["SEQUENCE"]) > int(confirmed_event["SEQUENCE"])
    assert str(cancelled_event["STATUS"]) == "CANCELLED"


async def test_professor_receives_the_students_cancellation(database_url: str, mailbox: Mailbox) -> None:
    professor, student = await make_professor(), await make_student()
    start = in_hours(50)
    booking = await book(student, await make_slot(professor, start=start))
    await cancel(student, booking.id)
    await deliver_queued(database_url)
    assert [subject(m) for m in mailbox.to(professor.email)] == [
        f"New booking: Ada Lovelace on {when(start, PROFESSOR_ZONE)}",
        f"Cancelled: consultation on {when(start, PROFESSOR_ZONE)}",
    ]
    assert answers(mailbox, student) == []
    plain, _ = bodies(mailbox.to(professor.email)[1])
    assert "Ada Lovelace cancelled this consultation." in plain
    calendar, event = only_event(mailbox.to(professor.email)[1])
    assert (str(calendar["METHOD"]), str(event["UID"])) == ("CANCEL", f"booking-{booking.id}@office-hours")


async def test_a_student_who_cancels_a_confirmed_booking_receives_the_calendar_cancel_too(
    database_url: str, mailbox: Mailbox
) -> None:
    professor, student = await make_professor(), await make_student()
    booking = await book(student, await make_slot(professor, start=in_hours(50)))
    await confirm(professor, booking.id)
    await deliver_queued(database_url)
    await cancel(student, booking.id)
    await deliver_queued(database_url)
    invitation, cancellation = answers(mailbox, student)
    plain, _ = bodies(cancellation)
    assert "You cancelled this consultation: it is taken out of your calendar." in plain
    _, invited = only_event(invitation)
    calendar, cancelled = only_event(cancellation)
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(cancelled["UID"]) == str(invited["UID"])
    assert int(cancelled["SEQUENCE"]) > int(invited["SEQUENCE"])


async def test_the_calendar_part_names_its_charset_so_accented_names_arrive_intact(
    database_url: str, mailbox: Mailbox
) -> None:
    professor = await make_user("professor", first_name="Jürgen", last_name="Groß")
    booking = await book(await make_student(first_name="Zoë"), await make_slot(professor))
    await confirm(professor, booking.id)
    await deliver_queued(database_url)
    (part,) = [
        part for message in mailbox.messages for part in message.walk() if part.get_content_type() == "text/calendar"
    ]
    assert (part.get_content_charset(), part.get_param("method")) == ("utf-8", "REQUEST")
    text = part.get_payload(decode=True).decode(part.get_content_charset())
    assert "Consultation: Jürgen Groß / Zoë Lovelace" in text
    assert "\r\n" in text  # iCalendar's line ends survive the trip


async def test_a_name_with_a_line_break_is_written_on_one_line_into_the_subject(
    database_url: str, mailbox: Mailbox
) -> None:
    """A name stored before names were checked (or sent by a platform) cannot break the headers."""
    professor, student = await make_professor(), await make_student()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE user_account SET first_name = %s WHERE id = %s", ("Eve\r\nBcc: x@example.org", student.id))
    await book(student, await make_slot(professor))
    assert await deliver_queued(database_url) == ["sent", "sent"]
    (request,) = mailbox.to(professor.email)
    assert subject(request).startswith("New booking: Eve Bcc: x@example.org Lovelace on ")
    assert request["Bcc"] is None


async def test_a_message_that_cannot_be_written_fails_at_once_and_is_visible(
    database_url: str, mailbox: Mailbox
) -> None:
    _, notification_id = await requested_notification(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE notification SET kind = 'no_such_kind' WHERE id = %s", (notification_id,))
    assert await deliver(notification_id) == "failed"
    assert await deliver(notification_id) == "not_queued"
    final = row(database_url, notification_id)
    assert (final["status"], final["attempts"]) == ("failed", 1)
    assert final["last_error"].startswith("cannot be written: LookupError")
    assert mailbox.messages == []


async def test_each_booked_student_receives_the_slot_cancellation_in_their_own_time_zone(
    database_url: str, mailbox: Mailbox
) -> None:
    professor = await make_professor()
    start = in_hours(50)
    slot = await make_slot(professor, start=start, capacity=2)
    berliner = await make_student()
    tokyoite = await make_user(first_name="Kenji", last_name="Sato", timezone="Asia/Tokyo")
    bookings = {berliner.email: await book(berliner, slot), tokyoite.email: await book(tokyoite, slot)}
    async with provide_services() as services:
        await services.slots.cancel_slot(professor, slot.id, "Faculty meeting")
    await deliver_queued(database_url)
    for student, zone in ((berliner, STUDENT_ZONE), (tokyoite, "Asia/Tokyo")):
        (message,) = answers(mailbox, student)
        assert subject(message) == f"Cancelled by Grace Hopper: consultation on {when(start, zone)}"
        plain, html = bodies(message)
        assert "Grace Hopper cancelled this consultation slot, and with it your booking." in plain
        assert "Reason: Faculty meeting" in plain
        assert "Faculty meeting" in html
        calendar, event = only_event(message)
        assert str(calendar["METHOD"]) == "CANCEL"
        assert str(event["UID"]) == f"booking-{bookings[student.email].id}@office-hours"
        assert int(event["SEQUENCE"]) == booking_sequence(database_url, bookings[student.email].id) == 1


async def test_a_script_in_the_topic_is_escaped_in_the_html_part(database_url: str, mailbox: Mailbox) -> None:
    professor, student = await make_professor(), await make_student()
    await book(student, await make_slot(professor), topic="<script>alert(1)</script>")
    await deliver_queued(database_url)
    (message,) = mailbox.to(professor.email)
    plain, html = bodies(message)
    assert "Topic: <script>alert(1)</script>" in plain
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()


async def test_a_script_in_a_name_is_escaped_in_the_html_part_of_every_party(
    database_url: str, mailbox: Mailbox
) -> None:
    professor = await make_professor(auto_confirm=True)
    student = await make_student(first_name="<script>alert(2)</script>")
    await book(student, await make_slot(professor))
    await deliver_queued(database_url)
    assert len(mailbox.messages) == 2  # the request to the professor, the confirmation to the student
    for message in mailbox.messages:
        plain, html = bodies(message)
        assert "<script>alert(2)</script>" in plain
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
        assert "<script" not in html.lower()


# Retries, final failures, the CLI and rejected recipients.


async def requested_notification(database_url: str, professor: User | None = None) -> tuple[User, Any]:
    """One booking request: returns the professor and the id of the outbox row for them."""
    professor = professor or await make_professor()
    booking = await book(await make_student(), await make_slot(professor))
    (notification,) = rows(database_url, "booking_id = %s AND kind = 'booking_requested'", (booking.id,))
    return professor, notification["id"]


async def fail_for_good(database_url: str, mailbox: Mailbox) -> tuple[User, Any]:
    professor, notification_id = await requested_notification(database_url)
    mailbox.refuse_next = MAX_ATTEMPTS
    outcomes = [await deliver(notification_id) for _ in range(MAX_ATTEMPTS)]
    assert outcomes == ["retry"] * (MAX_ATTEMPTS - 1) + ["failed"]
    return professor, notification_id


async def test_a_message_refused_twice_arrives_exactly_once_on_the_third_attempt(
    database_url: str, mailbox: Mailbox
) -> None:
    professor, notification_id = await requested_notification(database_url)
    mailbox.refuse_next = 2
    assert [await deliver(notification_id) for _ in range(3)] == ["retry", "retry", "sent"]
    assert await deliver(notification_id) == "not_queued"
    assert mailbox.attempts == 3
    assert [m["To"] for m in mailbox.messages] == [professor.email]
    final = row(database_url, notification_id)
    assert (final["status"], final["attempts"], final["last_error"]) == ("sent", 3, "")
    assert final["sent_at"] is not None


async def test_a_refused_attempt_is_queued_again_as_a_later_job(
    database_url: str, mailbox: Mailbox, backend: str
) -> None:
    """On both queue backends (the job is read back through SAQ from PostgreSQL or from Redis)."""
    from app.lib.queue import get_queue

    _, notification_id = await requested_notification(database_url)
    mailbox.refuse_next = 1
    assert await deliver(notification_id) == "retry"
    job = await (await get_queue()).job(f"deliver:{notification_id}:1")
    assert job is not None
    assert job.status == "queued"
    assert 20 <= job.scheduled - datetime.now().timestamp() <= 40  # the first back-off is 30 seconds


async def test_the_outbox_sweep_leaves_a_refused_message_to_its_backoff_and_takes_it_once_that_is_overdue(
    database_url: str, mailbox: Mailbox
) -> None:
    _, notification_id = await requested_notification(database_url)
    mailbox.refuse_next = 1
    assert await deliver(notification_id) == "retry"  # its next attempt is queued 30 seconds ahead

    async def swept(seconds_later: int) -> bool:
        with fixed_clock(lambda: datetime.now(UTC) + timedelta(seconds=seconds_later)):
            async with provide_services() as services:
                return (notification_id, 1) in await services.notifications.stale_queued(0)

    assert (await swept(0), await swept(20), await swept(35)) == (False, False, True)


async def test_a_message_refused_max_attempts_times_ends_failed_with_the_error(
    database_url: str, mailbox: Mailbox
) -> None:
    _, notification_id = await fail_for_good(database_url, mailbox)
    assert await deliver(notification_id) == "not_queued"
    assert mailbox.attempts == MAX_ATTEMPTS
    assert mailbox.messages == []
    final = row(database_url, notification_id)
    assert (final["status"], final["attempts"], final["sent_at"]) == ("failed", MAX_ATTEMPTS, None)
    assert final["last_error"].startswith("SMTPDataError")
    assert "Try again later" in final["last_error"]


async def test_a_failed_message_is_listed_by_the_cli(database_url: str, mailbox: Mailbox) -> None:
    _, failed_id = await fail_for_good(database_url, mailbox)
    _, sent_id = await requested_notification(database_url)
    assert await deliver(sent_id) == "sent"
    result = await run_cli("notifications", "list", "--failed")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith(f"{failed_id}  booking_requested")
    assert f"failed    tries={MAX_ATTEMPTS}" in lines[0]
    assert "SMTPDataError" in lines[0]
    assert str(sent_id) not in result.stdout


async def test_a_failed_message_resent_with_the_cli_is_delivered(database_url: str, mailbox: Mailbox) -> None:
    professor, notification_id = await fail_for_good(database_url, mailbox)
    result = await run_cli("notifications", "resend")
    assert (result.returncode, result.stdout.strip()) == (0, "queued again: 1"), result.stderr[-2000:]
    requeued = row(database_url, notification_id)
    assert (requeued["status"], requeued["attempts"]) == ("queued", 0)
    assert await deliver(notification_id) == "sent"
    assert [m["To"] for m in mailbox.messages] == [professor.email]
    final = row(database_url, notification_id)
    assert (final["status"], final["attempts"], final["last_error"]) == ("sent", 1, "")


async def test_a_rejected_recipient_fails_at_once_and_does_not_block_other_mail(
    database_url: str, mailbox: Mailbox
) -> None:
    rejected, rejected_id = await requested_notification(database_url)
    accepted, accepted_id = await requested_notification(database_url, await make_user("professor"))
    mailbox.reject.add(rejected.email)
    assert await deliver(rejected_id) == "failed"
    assert await deliver(accepted_id) == "sent"
    assert [m["To"] for m in mailbox.messages] == [accepted.email]
    failed = row(database_url, rejected_id)
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert failed["last_error"].startswith("recipient refused")
    assert "No such user here" in failed["last_error"]
    assert row(database_url, accepted_id)["status"] == "sent"


async def test_student_receives_the_booking_moved_mail_with_the_new_time_and_a_later_calendar_request(
    database_url: str, mailbox: Mailbox
) -> None:
    professor, student = await make_professor(auto_confirm=True), await make_student()
    start, later = in_hours(50), in_hours(53)
    booking = await book(student, await make_slot(professor, start=start, location="Room 1"))
    await deliver_queued(database_url)
    mailbox.clear()
    confirmed_sequence = booking_sequence(database_url, booking.id)
    async with provide_services() as services:
        await services.slots.update_slot(
            professor, booking.slot_id, {"start_time": later, "end_time": later + timedelta(minutes=30)}
        )
    await deliver_queued(database_url)
    (message,) = answers(mailbox, student)
    assert subject(message) == f"Changed: consultation with Grace Hopper, now {when(later, STUDENT_ZONE)}"
    plain, _ = bodies(message)
    assert "Grace Hopper changed this consultation. Here are the new details." in plain
    calendar, event = only_event(message)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert event.decoded("DTSTART") == later
    assert int(event["SEQUENCE"]) == booking_sequence(database_url, booking.id) > confirmed_sequence


async def test_student_booked_straight_from_the_waitlist_receives_the_auto_booked_mail(
    database_url: str, mailbox: Mailbox
) -> None:
    professor, student = await make_professor(waitlist_auto_book=True), await make_student()
    start = in_hours(50)
    slot = await make_slot(professor, start=start)
    holder = await make_user()
    taken = await book(holder, slot)
    async with provide_services() as services:
        await services.waitlist.join_slot(student, slot.id)
    await cancel(holder, taken.id)
    await deliver_queued(database_url)
    (message,) = [m for m in answers(mailbox, student) if subject(m).startswith("Booked from the waitlist")]
    assert subject(message) == f"Booked from the waitlist: Grace Hopper on {when(start, STUDENT_ZONE)}"
    plain, _ = bodies(message)
    assert "A place freed up and you were next on the waitlist: you are booked." in plain


async def test_professor_receives_the_reminder_in_their_own_zone_naming_the_student(
    database_url: str, mailbox: Mailbox
) -> None:
    from app.domain.consultations.reminders import queue_due_reminders

    professor, student = await make_professor(auto_confirm=True), await make_student()
    start = in_hours(23)
    booking = await book(student, await make_slot(professor, start=start))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE booking SET created_at = now() - interval '2 days' WHERE id = %s", (booking.id,))
        conn.execute("DELETE FROM notification")
    async with provide_services() as services:
        await queue_due_reminders(services.session)
    await deliver_queued(database_url)
    (message,) = mailbox.to(professor.email)
    assert subject(message) == f"Reminder: consultation on {when(start, PROFESSOR_ZONE)}"
    plain, _ = bodies(message)
    assert "A reminder: your consultation starts in 24 hours." in plain
    assert re.search(r"^With: +Ada Lovelace\r?$", plain, re.MULTILINE)
    assert f"({PROFESSOR_ZONE})" in plain


async def test_the_admin_notifications_list_shows_failed_deliveries_with_their_error(
    client: Any, database_url: str, mailbox: Mailbox
) -> None:
    from tests.helpers import make_admin, web_login

    professor, student = await make_professor(), await make_student()
    await book(student, await make_slot(professor))
    mailbox.reject.add(professor.email)
    await deliver_queued(database_url)
    admin = await make_admin()
    await web_login(client, admin.username)
    page = await client.get("/admin/notifications")
    assert page.status_code == 200
    assert "<h1>Notifications: Failed</h1>" in page.text
    assert f"<tr><td>booking_requested</td><td>{professor.id}</td>" in page.text
    assert "No such user here" in page.text
    assert f"<td>{student.id}</td>" not in page.text  # the student's acknowledgement was delivered
