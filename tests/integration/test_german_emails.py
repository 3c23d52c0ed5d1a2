"""Every kind of e-mail reaches a German reader in German: subject, plain text, HTML and the calendar attachment.

The messages come from the real flows (booking, confirming, declining, cancelling, moving, the waitlist, the reminder
sweep); the few whose cause is heavy to stage (a lock after many failed sign-ins, a revoked Google grant, an LMS
course's invitation, the address check) are written to the outbox as their services write them. Each is delivered
by the worker's own function to the SMTP server on loopback. A kind added to the outbox's EMAILS and not made here
fails `test_every_kind_of_email_is_made_here`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import psycopg
import pytest

from app.domain.accounts.signin import ACCOUNT_LOCKED_KIND
from app.domain.accounts.verification import EMAIL_VERIFICATION_KIND
from app.domain.consultations.reminders import queue_due_reminders
from app.domain.google.grants import CALENDAR_DISCONNECTED
from app.domain.lti.course_dashboard import INVITATION_KIND
from app.domain.notifications.services import NotificationService
from app.lib.clock import utcnow
from app.services import EMAILS, provide_services
from app.worker import deliver_notification
from tests.conftest import Mailbox
from tests.helpers import book, in_hours, make_slot, make_user
from tests.integration.german import english_in_html, english_in_text

GERMAN_DATE = re.compile(
    r"\b(Mo|Di|Mi|Do|Fr|Sa|So)\., \d{1,2}\. (Jan|Feb|März|Apr|Mai|Juni|Juli|Aug|Sept|Okt|Nov|Dez)\.?"
)
SLOT = {"title": "Klausurvorbereitung", "location": "Raum 3.14"}
TOPIC, REASON, COURSE = "Fragen zur Klausur", "Krankheit", "Algorithmen und Datenstrukturen"
# Kinds about one booking: their subject names its time, the German way.
DATED = {
    "booking_cancelled",
    "booking_confirmed",
    "booking_declined",
    "booking_moved",
    "booking_received",
    "booking_requested",
    "booking_rescheduled",
    "reminder",
    "slot_cancelled",
    "waitlist_booked",
    "waitlist_offer",
}


async def record(user: Any, kind: str, context: dict[str, Any] | None = None) -> None:
    async with provide_services() as services:
        await NotificationService(session=services.session).record(
            user_id=user.id, booking_id=None, kind=kind, context=context or {}, variant=utcnow().isoformat()
        )


async def every_kind_of_email_for_german_readers(database_url: str) -> list[str]:
    """Make each kind of message happen to German readers; returns what their own data says (to take out)."""
    names = {"first_name": "Zofia", "last_name": "Kowalczyk"}
    professor = await make_user("professor", locale="de", max_active_bookings_per_student=20, **names)
    auto = await make_user("professor", locale="de", waitlist_auto_book=True, first_name="Ida", last_name="Pfeiffer")
    student = await make_user(locale="de", first_name="Lena", last_name="Schmidt")
    other = await make_user(locale="de", first_name="Jonas", last_name="Weber")
    unverified = await make_user(verified=False, locale="de", first_name="Mia", last_name="Becker")

    requested = await book(
        student, await make_slot(professor, start=in_hours(50), **SLOT), TOPIC
    )  # requested, received
    declined = await book(student, await make_slot(professor, start=in_hours(52), **SLOT), TOPIC)
    cancelled = await book(student, await make_slot(professor, start=in_hours(54), **SLOT), TOPIC)
    on_cancelled_slot = await book(student, await make_slot(professor, start=in_hours(56), **SLOT), TOPIC)
    moved_slot = await make_slot(professor, start=in_hours(58), **SLOT)
    moved = await book(student, moved_slot, TOPIC)
    target = await make_slot(professor, start=in_hours(60), **SLOT)
    soon = await book(student, await make_slot(professor, start=in_hours(20), **SLOT), TOPIC)
    offered_slot = await make_slot(professor, start=in_hours(62), capacity=1, **SLOT)
    held = await book(other, offered_slot, TOPIC)
    auto_slot = await make_slot(auto, start=in_hours(64), capacity=1, **SLOT)
    auto_held = await book(other, auto_slot, TOPIC)
    async with provide_services() as services:
        for booking in (requested, cancelled, moved, soon):
            await services.bookings.confirm(professor, booking.id)  # confirmed
        await services.bookings.decline(professor, declined.id, REASON)  # declined
        await services.waitlist.join_slot(student, offered_slot.id)
        await services.waitlist.join_slot(student, auto_slot.id)
    async with provide_services() as services:
        await services.bookings.cancel(student, cancelled.id, REASON)  # cancelled
    async with provide_services() as services:
        await services.slots.cancel_slot(professor, on_cancelled_slot.slot_id, REASON)  # slot cancelled
    async with provide_services() as services:
        await services.bookings.reschedule(student, requested.id, target.id)  # rescheduled
    async with provide_services() as services:
        start = moved_slot.start_time + timedelta(hours=1)
        await services.slots.update_slot(
            professor, moved_slot.id, {"start_time": start, "end_time": start + timedelta(minutes=30)}
        )  # moved
    async with provide_services() as services:
        await services.bookings.cancel(other, held.id)  # a place offered from the waitlist
        await services.bookings.cancel(other, auto_held.id)  # booked from the waitlist
    with psycopg.connect(database_url, autocommit=True) as conn:  # made two days ago, as reminders require
        conn.execute("UPDATE booking SET created_at = now() - interval '2 days' WHERE id = %s", (soon.id,))
    async with provide_services() as services:
        await queue_due_reminders(services.session)  # the reminder
    await record(student, ACCOUNT_LOCKED_KIND, {"locked_at": utcnow().isoformat()})
    await record(unverified, EMAIL_VERIFICATION_KIND, {"email": unverified.email.lower()})
    await record(professor, CALENDAR_DISCONNECTED)
    await record(student, INVITATION_KIND, {"professor_id": str(professor.id), "course_title": COURSE})
    people = (professor, auto, student, other, unverified)
    return [
        *(value for person in people for value in (person.full_name, person.first_name, person.last_name)),
        *(value for person in people for value in (person.username, person.email)),
        *SLOT.values(),
        TOPIC,
        REASON,
        COURSE,
    ]


def parts(message: EmailMessage) -> dict[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    found = {"subject": str(message["Subject"]), "text": text.get_content(), "html": html.get_content()}
    for part in message.iter_attachments():
        if part.get_content_type() == "text/calendar":
            ics = part.get_payload(decode=True).decode()
            unfolded = re.sub(r"\r?\n[ \t]", "", ics)
            found["ics"] = "\n".join(
                line.split(":", 1)[1].replace("\\n", "\n").replace("\\,", ",").replace("\\;", ";")
                for line in unfolded.splitlines()
                if line.startswith(("SUMMARY", "DESCRIPTION", "LOCATION"))
            )
    return found


def english_in_message(message: EmailMessage, known: list[str]) -> dict[str, list[str]]:
    found = {}
    for name, content in parts(message).items():
        english = english_in_html(content, known) if name == "html" else english_in_text(content, known)
        if english:
            found[name] = english
    return found


@pytest.fixture
async def delivered(database_url: str, mailbox: Mailbox) -> tuple[dict[str, list[EmailMessage]], list[str]]:
    """Every message of every kind, delivered: kind -> messages."""
    known = await every_kind_of_email_for_german_readers(database_url)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT id, kind FROM notification ORDER BY created_at, id").fetchall()
    by_kind: dict[str, list[EmailMessage]] = {}
    for notification_id, kind in rows:
        mailbox.clear()
        outcome = await deliver_notification({}, notification_id=str(notification_id))
        assert outcome == "sent", (kind, outcome)
        (message,) = mailbox.messages
        by_kind.setdefault(kind, []).append(message)
    return by_kind, known


async def test_every_kind_of_email_is_made_here(delivered: tuple[dict[str, list[EmailMessage]], list[str]]) -> None:
    by_kind, _ = delivered
    assert set(by_kind) == set(EMAILS.renderers)


async def test_every_email_reads_german_in_subject_text_html_and_calendar(
    delivered: tuple[dict[str, list[EmailMessage]], list[str]],
) -> None:
    by_kind, known = delivered
    found = {
        f"{kind} to {message['To']}": english
        for kind, messages in by_kind.items()
        for message in messages
        if (english := english_in_message(message, known))
    }
    assert found == {}, "\n".join(f"{where}: {english}" for where, english in found.items())


async def test_emails_about_a_booking_give_its_time_the_german_way(
    delivered: tuple[dict[str, list[EmailMessage]], list[str]],
) -> None:
    by_kind, _ = delivered
    undated = [
        f"{kind}: {message['Subject']}"
        for kind, messages in by_kind.items()
        if kind in DATED
        for message in messages
        if not GERMAN_DATE.search(str(message["Subject"]))
    ]
    assert undated == []


async def test_the_calendar_attachment_speaks_german(
    delivered: tuple[dict[str, list[EmailMessage]], list[str]],
) -> None:
    by_kind, _ = delivered
    (confirmed, *_rest) = by_kind["booking_confirmed"]
    ics = parts(confirmed)["ics"]
    assert "Sprechstunde" in ics, ics


async def test_the_check_finds_english_in_an_english_readers_mail(database_url: str, mailbox: Mailbox) -> None:
    """The same check on an English reader's message: it would notice words left in English."""
    professor = await make_user("professor", locale="en")
    await book(await make_user(locale="en"), await make_slot(professor))
    with psycopg.connect(database_url) as conn:
        (notification_id,) = conn.execute("SELECT id FROM notification WHERE user_id = %s", (professor.id,)).fetchone()  # type: ignore[misc]
    assert await deliver_notification({}, notification_id=str(notification_id)) == "sent"
    (message,) = mailbox.messages
    assert set(english_in_message(message, [])) == {"subject", "text", "html"}
