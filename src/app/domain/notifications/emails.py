"""E-mails from outbox rows: subject, HTML and plain text from Jinja templates, and an iCalendar attachment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from icalendar import Calendar, Event, vCalAddress, vText
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.config import Settings
from app.domain.accounts.models import User
from app.domain.consultations.models import Booking
from app.domain.notifications.models import Notification
from app.lib.templates import TEMPLATE_DIR, local_time

SUBJECTS = {
    "booking_requested": "New booking: {student} on {when}",
    "booking_confirmed": "Confirmed: consultation with {professor} on {when}",
    "booking_declined": "Declined: consultation with {professor} on {when}",
    "booking_cancelled": "Cancelled: consultation on {when}",
    "slot_cancelled": "Cancelled by {professor}: consultation on {when}",
    "booking_moved": "Changed: consultation with {professor}, now {when}",
    "reminder": "Reminder: consultation on {when}",
    "waitlist_offer": "A place is free for you: {offer_professor} on {offer_when}",
    "waitlist_booked": "Booked from the waitlist: {professor} on {when}",
    "calendar_disconnected": "Google Calendar sync is off",
}
ICS_METHOD = {
    "booking_confirmed": "REQUEST",
    "booking_moved": "REQUEST",
    "booking_cancelled": "CANCEL",
    "booking_declined": "CANCEL",
    "slot_cancelled": "CANCEL",
}


@dataclass(frozen=True)
class RenderedEmail:
    recipient: str
    subject: str
    text: str
    html: str
    ics: bytes | None
    ics_method: str | None


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(("html",), default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local_time"] = local_time
    return env


_ENV = _environment()


def booking_uid(booking: Booking) -> str:
    """One stable UID per booking: calendar clients update or remove the same event."""
    return f"booking-{booking.id}@office-hours"


def render_email(
    notification: Notification, recipient: User, booking: Booking | None, settings: Settings
) -> RenderedEmail:
    context: dict[str, Any] = {
        "notification": notification,
        "recipient": recipient,
        "booking": booking,
        "slot": booking.slot if booking else None,
        "reason": notification.context.get("reason", ""),
        "app_url": settings.app_url,
        "timezone": recipient.timezone,
        "link": f"{settings.app_url}/bookings/{booking.id}" if booking else settings.app_url,
    }
    when = local_time(booking.start_time, recipient.timezone, "%a %d %b %Y, %H:%M") if booking else ""
    offer = notification.context
    offer_when = (
        local_time(datetime.fromisoformat(offer["start"]), recipient.timezone, "%a %d %b %Y, %H:%M")
        if "start" in offer
        else ""
    )
    context["offer_when"] = f"{offer_when} ({recipient.timezone})"
    context["offer_until"] = (
        local_time(datetime.fromisoformat(offer["hold_expires_at"]), recipient.timezone, "%H:%M on %d %b")
        if offer.get("hold_expires_at")
        else ""
    )
    subject = SUBJECTS.get(notification.kind, "Office hours").format(
        student=booking.student.full_name if booking else "",
        professor=booking.slot.professor.full_name if booking else "",
        when=f"{when} ({recipient.timezone})",
        offer_professor=offer.get("professor", ""),
        offer_when=context["offer_when"],
    )
    # The body sentence is rendered once as plain text; the HTML template escapes it like any other value.
    body = _ENV.get_template("emails/_body.txt").render(**context)
    text = _ENV.get_template("emails/message.txt").render(subject=subject, body=body, **context)
    html = _ENV.get_template("emails/message.html").render(subject=subject, body=body, **context)
    method = ICS_METHOD.get(notification.kind)
    ics = build_ics(booking, method, settings) if booking and method else None
    return RenderedEmail(recipient.email, subject, text, html, ics, method if ics else None)


def build_ics(booking: Booking, method: str, settings: Settings) -> bytes:
    slot = booking.slot
    calendar = Calendar()
    calendar.add("prodid", "-//Office hours//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", booking_uid(booking))
    event.add("sequence", booking.sequence)
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", booking.start_time.astimezone(UTC))
    event.add("dtend", booking.end_time.astimezone(UTC))
    event.add("summary", f"Consultation: {slot.professor.full_name} / {booking.student.full_name}")
    if slot.location or slot.meeting_url:
        event.add("location", slot.location or slot.meeting_url)
    description = "\n".join(
        filter(None, [booking.topic, slot.meeting_url, f"{settings.app_url}/bookings/{booking.id}"])
    )
    event.add("description", description)
    event.add("url", f"{settings.app_url}/bookings/{booking.id}")
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    organizer = vCalAddress(f"mailto:{slot.professor.email}")
    organizer.params["cn"] = vText(slot.professor.full_name)
    event.add("organizer", organizer)
    attendee = vCalAddress(f"mailto:{booking.student.email}")
    attendee.params["cn"] = vText(booking.student.full_name)
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    event.add("attendee", attendee)
    calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data


def to_message(email: RenderedEmail, settings: Settings, message_key: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = email.recipient
    message["Subject"] = email.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    # The outbox row's dedupe key names the message: a copy sent again after a crash has the same Message-ID,
    # so mail systems recognise it as the same message.
    message["Message-ID"] = f"<{message_key.replace(':', '.')}@office-hours>"
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    if email.ics is not None and email.ics_method is not None:
        message.add_attachment(
            email.ics,
            maintype="text",
            subtype="calendar",
            filename="consultation.ics",
            params={"method": email.ics_method},
        )
    return message
