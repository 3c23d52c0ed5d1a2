"""A booking as an iCalendar event: attached to its e-mails, and one entry of the personal feed."""

from __future__ import annotations

from datetime import UTC

from icalendar import Calendar, Event, vCalAddress, vText

from app.config import Settings
from app.domain.consultations.models import Booking
from app.lib.clock import utcnow
from app.lib.i18n import gettext as _


def booking_uid(booking: Booking) -> str:
    """One stable UID per booking: calendar clients update or remove the same event."""
    return f"booking-{booking.id}@office-hours"


def build_ics(booking: Booking, method: str, settings: Settings) -> bytes:
    slot = booking.slot
    calendar = Calendar()
    calendar.add("prodid", "-//Office hours//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", booking_uid(booking))
    event.add("sequence", booking.sequence)
    event.add("dtstamp", utcnow())
    event.add("dtstart", booking.start_time.astimezone(UTC))
    event.add("dtend", booking.end_time.astimezone(UTC))
    summary = _(
        "Consultation: %(professor)s / %(student)s",
        professor=slot.professor.full_name,
        student=booking.student.full_name,
    )
    event.add("summary", summary)

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
