"""Booking e-mails a person can act on: the request acknowledged to the student, and signed links (confirm, decline,
cancel, move) taken from real mails delivered over SMTP.

A link opens a page with one button; only that button's POST acts. It works once, for its recipient only (or
signed out), until the consultation starts and at most 14 days after the mail.
"""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row

from app.config import get_settings
from app.domain.accounts.models import User
from app.domain.consultations.links import MAX_LINK_AGE, ActionLink, LinkAction, read, sign
from app.domain.consultations.models import Booking
from app.lib.clock import utcnow
from app.lib.formatting import describe_time, local_time
from app.worker import deliver_notification
from tests.conftest import Mailbox
from tests.helpers import book, in_hours, make_slot, make_user, shift_into_past, web_login

PROFESSOR_ZONE, STUDENT_ZONE = "America/New_York", "Europe/Berlin"
CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def make_professor(**fields: Any) -> User:
    return await make_user("professor", first_name="Grace", last_name="Hopper", timezone=PROFESSOR_ZONE, **fields)


async def make_student(**fields: Any) -> User:
    return await make_user(**{"first_name": "Ada", "last_name": "Lovelace", "timezone": STUDENT_ZONE, **fields})


def booking_row(database_url: str, booking_id: Any) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cursor:
        found = cursor.execute("SELECT * FROM booking WHERE id = %s", (booking_id,)).fetchone()
    assert found is not None
    return found


def bookings_of(database_url: str, student: User) -> list[tuple[Any, str, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT slot_id, status, cancel_reason FROM booking WHERE student_id = %s ORDER BY created_at",
            (student.id,),
        ).fetchall()


def outbox(database_url: str) -> list[tuple[Any, str, Any, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT user_id, kind, booking_id, status FROM notification ORDER BY created_at, id"
        ).fetchall()


def sessions(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        found = conn.execute("SELECT count(*) FROM user_session").fetchone()
    assert found is not None
    return int(found[0])


async def deliver_queued(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        queued = [
            row[0] for row in conn.execute("SELECT id FROM notification WHERE status = 'queued' ORDER BY created_at")
        ]
    for notification_id in queued:
        assert await deliver_notification({}, notification_id=str(notification_id)) == "sent"


def subject(message: EmailMessage) -> str:
    return str(message["Subject"]).strip()


def bodies(message: EmailMessage) -> tuple[str, str]:
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None, message.as_string()
    assert html is not None, message.as_string()
    # As the lines read (SMTP sends them ending in CRLF).
    return plain.get_content().replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n")


def only_mail(mailbox: Mailbox, user: User, starts: str) -> EmailMessage:
    (message,) = [m for m in mailbox.to(user.email) if subject(m).startswith(starts)]
    return message


def action_url(message: EmailMessage, label: str) -> str:
    """The URL on the `label: URL` line of the message's plain-text part."""
    plain, _ = bodies(message)
    (url,) = re.findall(rf"^{re.escape(label)}: (\S+)$", plain, flags=re.MULTILINE)
    return url


def action_path(message: EmailMessage, label: str) -> str:
    return urlsplit(action_url(message, label)).path


def when(booking: Booking, zone: str) -> str:
    return describe_time(booking.start_time, booking.end_time, zone)


async def requested(database_url: str, mailbox: Mailbox, **professor_fields: Any) -> tuple[User, User, Booking]:
    """A pending request, its mails delivered: to the professor (the request) and the student (the acknowledgement)."""
    professor, student = await make_professor(**professor_fields), await make_student()
    booking = await book(student, await make_slot(professor, start=in_hours(50)), topic="Exam prep")
    await deliver_queued(database_url)
    return professor, student, booking


def csrf_of(page: Any) -> str:
    match = CSRF_FIELD.search(page.text)
    assert match is not None, page.text
    return match.group(1)


async def press(client: Any, path: str, **fields: str) -> Any:
    """Open the link's page and press its one button (with what was typed), as a person would."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return await client.post(path, data={"_csrf_token": csrf_of(page), **fields})


async def post_directly(client: Any, path: str, **fields: str) -> Any:
    """POST to a link without using its page (as a second press would, from a page kept open)."""
    await client.get("/login")  # a CSRF cookie
    return await client.post(path, data={"_csrf_token": client.cookies.get("csrftoken", ""), **fields})


# The acknowledgement of a request, and what each mail offers.


async def test_a_pending_request_is_acknowledged_to_the_student_with_a_link_to_manage_it(
    database_url: str, mailbox: Mailbox
) -> None:
    professor, student, booking = await requested(database_url, mailbox)
    assert [row[1] for row in outbox(database_url)] == ["booking_requested", "booking_received"]
    (message,) = mailbox.to(student.email)
    start = f"{local_time(booking.start_time, STUDENT_ZONE)} ({STUDENT_ZONE})"
    assert subject(message) == f"Request sent: consultation with Grace Hopper on {start}"
    plain, html = bodies(message)
    assert f"Your request for a consultation with Grace Hopper on {when(booking, STUDENT_ZONE)} was sent." in plain
    assert "Grace Hopper will answer it: you get an e-mail as soon as the request is confirmed or declined." in plain
    assert action_path(message, "Manage this booking").startswith("/actions/")
    assert "Confirm:" not in plain
    assert ">Manage this booking</a>" in html
    assert [subject(m).split(":")[0] for m in mailbox.to(professor.email)] == ["New booking"]


async def test_an_auto_confirmed_booking_is_not_acknowledged_as_a_request(database_url: str, mailbox: Mailbox) -> None:
    professor, student = await make_professor(auto_confirm=True), await make_student()
    booking = await book(student, await make_slot(professor))
    await deliver_queued(database_url)
    assert [row[1] for row in outbox(database_url)] == ["booking_requested", "booking_confirmed"]
    (confirmation,) = mailbox.to(student.email)
    assert subject(confirmation).startswith("Confirmed: consultation with Grace Hopper on ")
    assert action_path(confirmation, "Manage this booking").startswith("/actions/")
    (information,) = mailbox.to(professor.email)
    plain, _ = bodies(information)
    assert "Ada Lovelace booked your consultation slot." in plain
    assert "It is confirmed already (you confirm bookings automatically); there is nothing you need to do." in plain
    assert "Confirm:" not in plain
    assert "Decline:" not in plain
    assert action_url(information, "Manage this booking") == f"{get_settings().app_url}/bookings/{booking.id}"


async def test_the_professors_request_mail_asks_for_an_answer_with_confirm_and_decline_buttons(
    database_url: str, mailbox: Mailbox
) -> None:
    professor, _, booking = await requested(database_url, mailbox)
    (message,) = mailbox.to(professor.email)
    plain, html = bodies(message)
    assert "Ada Lovelace booked your consultation slot and waits for your confirmation." in plain
    assert "This request needs your answer: confirm or decline it with the buttons below." in plain
    confirm, decline = action_url(message, "Confirm"), action_url(message, "Decline")
    assert urlsplit(confirm).path.startswith("/actions/")
    assert urlsplit(decline).path.startswith("/actions/")
    assert action_url(message, "Manage this booking") == f"{get_settings().app_url}/bookings/{booking.id}"
    # Buttons in the HTML part: links styled inline (a mail has no stylesheet).
    assert f'<a href="{confirm}" title="Confirm the request" style="display: inline-block;' in html
    assert ">Decline</a>" in html


async def test_a_link_expires_at_the_latest_fourteen_days_after_the_mail(database_url: str, mailbox: Mailbox) -> None:
    professor, student = await make_professor(), await make_student()
    await book(student, await make_slot(professor, start=in_hours(24 * 20)))
    before = utcnow()
    await deliver_queued(database_url)
    token = action_path(mailbox.to(professor.email)[0], "Confirm").removeprefix("/actions/")
    link = read(token, get_settings().secret_key)
    assert before + MAX_LINK_AGE - timedelta(seconds=1) <= link.expires_at <= utcnow() + MAX_LINK_AGE
    assert (link.action, link.user_id, link.sequence) == (LinkAction.CONFIRM, professor.id, 0)


# A GET never acts.


async def test_opening_any_link_with_a_plain_get_changes_nothing(
    client: Any, database_url: str, mailbox: Mailbox
) -> None:
    professor, student, booking = await requested(database_url, mailbox)
    await make_slot(professor, start=in_hours(74))  # a time to move to: the student's page has its form
    professor_mail, student_mail = mailbox.to(professor.email)[0], mailbox.to(student.email)[0]
    paths = [action_path(professor_mail, "Confirm"), action_path(professor_mail, "Decline")]
    paths.append(action_path(student_mail, "Manage this booking"))
    before, mails = (booking_row(database_url, booking.id), outbox(database_url)), len(mailbox.messages)
    for path in paths:
        for _ in range(2):  # a scanner may fetch twice
            response = await client.get(path)
            assert response.status_code == 200
            assert 'method="post"' in response.text
    assert (booking_row(database_url, booking.id), outbox(database_url)) == before
    assert len(mailbox.messages) == mails
    assert sessions(database_url) == 0  # nobody was signed in by a link


# Confirm and decline, once each.


async def test_the_professor_confirms_from_the_mail_once(client: Any, database_url: str, mailbox: Mailbox) -> None:
    professor, student, booking = await requested(database_url, mailbox)
    path = action_path(mailbox.to(professor.email)[0], "Confirm")
    page = await client.get(path)
    assert "Confirm this request?" in page.text
    assert '<button type="submit">Confirm the booking</button>' in page.text
    response = await client.post(path, data={"_csrf_token": csrf_of(page)})
    assert response.status_code == 200
    assert "Confirmed. Ada Lovelace is told." in response.text
    confirmed = booking_row(database_url, booking.id)
    assert (confirmed["status"], confirmed["sequence"]) == ("confirmed", 1)
    assert outbox(database_url)[-1][:3] == (student.id, "booking_confirmed", booking.id)
    after = outbox(database_url)

    again = await post_directly(client, path)
    assert again.status_code == 409
    assert "This link can&#39;t be used any more" in again.text
    assert "This link has been used already, or the booking changed since the e-mail was sent" in again.text
    assert (booking_row(database_url, booking.id), outbox(database_url)) == (confirmed, after)
    assert (await client.get(path)).status_code == 409


async def test_declining_from_the_mail_asks_for_a_reason_and_keeps_what_was_typed(
    client: Any, database_url: str, mailbox: Mailbox
) -> None:
    professor, student, booking = await requested(database_url, mailbox)
    path = action_path(mailbox.to(professor.email)[0], "Decline")
    before = (booking_row(database_url, booking.id), outbox(database_url))

    empty = await press(client, path, reason="  ")
    assert empty.status_code == 422
    assert (
        'id="err-input-reason" name="reason" required aria-describedby="err-reason" aria-invalid="true"' in empty.text
    )
    assert (
        "Tell the student why you decline the request." in empty.text.split('id="err-reason"')[1].split("</small>")[0]
    )
    too_long = "Away at a conference. " * 50
    long = await client.post(path, data={"_csrf_token": csrf_of(empty), "reason": too_long})
    assert long.status_code == 422
    assert f">{too_long.strip()}</textarea>" in long.text
    assert "Use at most 1000 characters." in long.text.split('id="err-reason"')[1].split("</small>")[0]
    assert (booking_row(database_url, booking.id), outbox(database_url)) == before

    response = await client.post(path, data={"_csrf_token": csrf_of(long), "reason": "Away at a conference."})
    assert response.status_code == 200
    assert "Declined. Ada Lovelace is told, with your reason." in response.text
    declined = booking_row(database_url, booking.id)
    assert (declined["status"], declined["cancel_reason"], declined["cancelled_by"]) == (
        "declined",
        "Away at a conference.",
        professor.id,
    )
    assert outbox(database_url)[-1][:3] == (student.id, "booking_declined", booking.id)
    after = outbox(database_url)
    again = await post_directly(client, path, reason="Once more")
    assert again.status_code == 409
    assert (booking_row(database_url, booking.id), outbox(database_url)) == (declined, after)


async def test_a_confirm_link_is_dead_once_the_request_was_answered_elsewhere(
    client: Any, database_url: str, mailbox: Mailbox
) -> None:
    professor, _, booking = await requested(database_url, mailbox)
    decline = action_path(mailbox.to(professor.email)[0], "Decline")
    confirm = action_path(mailbox.to(professor.email)[0], "Confirm")
    assert (await press(client, decline, reason="Ill")).status_code == 200
    declined = booking_row(database_url, booking.id)
    response = await post_directly(client, confirm)
    assert response.status_code == 409
    assert booking_row(database_url, booking.id) == declined


# The student's link: cancel, move.


async def test_the_student_cancels_from_the_mail_once(client: Any, database_url: str, mailbox: Mailbox) -> None:
    professor, student, booking = await requested(database_url, mailbox)
    manage = await client.get(action_path(mailbox.to(student.email)[0], "Manage this booking"))
    assert manage.status_code == 200
    match = re.search(r'<a href="(/actions/[^"]+)">Cancel this booking</a>', manage.text)
    assert match is not None, manage.text
    cancel = match.group(1)
    response = await press(client, cancel, reason="I passed the exam.")
    assert response.status_code == 200
    assert "Cancelled. Grace Hopper is told." in response.text
    cancelled = booking_row(database_url, booking.id)
    assert (cancelled["status"], cancelled["cancel_reason"], cancelled["cancelled_by"]) == (
        "cancelled",
        "I passed the exam.",
        student.id,
    )
    assert outbox(database_url)[-1][:3] == (professor.id, "booking_cancelled", booking.id)
    after = outbox(database_url)
    for path in (cancel, action_path(mailbox.to(student.email)[0], "Manage this booking")):
        again = await post_directly(client, path)
        assert again.status_code == 409
    assert (booking_row(database_url, booking.id), outbox(database_url)) == (cancelled, after)


async def test_the_student_moves_the_booking_from_the_mail_once(
    client: Any, database_url: str, mailbox: Mailbox
) -> None:
    professor, student, booking = await requested(database_url, mailbox)
    later = await make_slot(professor, start=in_hours(74), location="Room 12")
    path = action_path(mailbox.to(student.email)[0], "Manage this booking")
    page = await client.get(path)
    assert f'<input type="radio" name="slot_id" value="{later.id}">' in page.text
    response = await client.post(path, data={"_csrf_token": csrf_of(page), "slot_id": str(later.id)})
    assert response.status_code == 200
    new_when = describe_time(later.start_time, later.end_time, STUDENT_ZONE)
    assert f"Moved to {new_when}. The professor will confirm the new time." in response.text
    assert bookings_of(database_url, student) == [
        (booking.slot_id, "cancelled", f"Moved to {new_when}"),
        (later.id, "pending", ""),
    ]
    kinds = [(user_id, kind) for user_id, kind, _, _ in outbox(database_url)[2:]]
    assert kinds == [(professor.id, "booking_rescheduled"), (student.id, "booking_received")]
    after = outbox(database_url)
    again = await post_directly(client, path, slot_id=str(later.id))
    assert again.status_code == 409
    assert outbox(database_url) == after
    assert len(bookings_of(database_url, student)) == 2


async def test_moving_to_a_slot_that_filled_up_shows_the_page_again_and_changes_nothing(
    client: Any, database_url: str, mailbox: Mailbox
) -> None:
    professor, student, booking = await requested(database_url, mailbox)
    later = await make_slot(professor, start=in_hours(74))
    path = action_path(mailbox.to(student.email)[0], "Manage this booking")
    page = await client.get(path)
    await book(await make_user(), later)  # someone else takes the last place meanwhile
    before = (booking_row(database_url, booking.id), outbox(database_url))
    response = await client.post(path, data={"_csrf_token": csrf_of(page), "slot_id": str(later.id)})
    assert response.status_code == 409
    assert "This slot is full." in response.text.split('id="err-slot_id"')[1].split("</small>")[0]
    assert (booking_row(database_url, booking.id), outbox(database_url)) == before


# Expired, for another account, forged.


async def test_an_expired_link_shows_why_and_changes_nothing(client: Any, database_url: str, mailbox: Mailbox) -> None:
    professor, _, booking = await requested(database_url, mailbox)
    past = utcnow() - timedelta(minutes=1)
    token = sign(ActionLink(LinkAction.CONFIRM, booking.id, professor.id, 0, past), get_settings().secret_key)
    before = (booking_row(database_url, booking.id), outbox(database_url))
    shown = await client.get(f"/actions/{token}")
    assert shown.status_code == 410
    assert "This link has expired" in shown.text
    assert (await post_directly(client, f"/actions/{token}")).status_code == 410
    assert (booking_row(database_url, booking.id), outbox(database_url)) == before


async def test_a_link_to_a_consultation_that_has_begun_has_expired(
    client: Any, database_url: str, mailbox: Mailbox
) -> None:
    professor, _, booking = await requested(database_url, mailbox)
    path = action_path(mailbox.to(professor.email)[0], "Confirm")
    shift_into_past(database_url, booking.slot_id, hours=0.5)
    before = (booking_row(database_url, booking.id), outbox(database_url))
    assert (await client.get(path)).status_code == 410
    assert (await post_directly(client, path)).status_code == 410
    assert (booking_row(database_url, booking.id), outbox(database_url)) == before


async def test_a_link_opened_while_someone_else_is_signed_in_is_refused(
    client: Any, other_client: Any, database_url: str, mailbox: Mailbox
) -> None:
    professor, student, booking = await requested(database_url, mailbox)
    path = action_path(mailbox.to(professor.email)[0], "Confirm")
    await web_login(other_client, student.username)  # the booking's own student, but not the mail's recipient
    before = (booking_row(database_url, booking.id), outbox(database_url))
    shown = await other_client.get(path)
    assert shown.status_code == 403
    assert "This link is for another account" in shown.text
    assert "Ada Lovelace" not in shown.text.split("<main")[1]  # nothing about the booking is shown
    refused = await other_client.post(path, data={"_csrf_token": other_client.cookies.get("csrftoken", "")})
    assert refused.status_code == 403
    assert (booking_row(database_url, booking.id), outbox(database_url)) == before
    # Its recipient, signed in, uses it.
    await web_login(client, professor.username)
    assert (await press(client, path)).status_code == 200
    assert booking_row(database_url, booking.id)["status"] == "confirmed"


async def test_a_changed_link_is_not_valid(client: Any, database_url: str, mailbox: Mailbox) -> None:
    professor, _, booking = await requested(database_url, mailbox)
    path = action_path(mailbox.to(professor.email)[0], "Confirm")
    token = path.removeprefix("/actions/")
    payload, signature = token.split(".")
    # Point the link at the decline action with the confirm link's signature.
    forged_payload = read(token, get_settings().secret_key)
    forged = sign(
        ActionLink(LinkAction.DECLINE, booking.id, professor.id, 0, forged_payload.expires_at), "another-secret"
    )
    for bad in (f"{payload}.{signature[:-2]}", f"{forged.split('.')[0]}.{signature}", "nonsense", forged):
        response = await client.get(f"/actions/{bad}")
        assert response.status_code == 404
        assert "This link is not valid" in response.text
    assert booking_row(database_url, booking.id)["status"] == "pending"
