"""The personal iCalendar feed: a user's active consultations, at a secret URL calendar apps subscribe to."""

from __future__ import annotations

from datetime import UTC, timedelta

from icalendar import Calendar, Event
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.accounts.models import User
from app.domain.consultations.ics import booking_uid
from app.domain.consultations.models import ACTIVE, Booking, ConsultationSlot
from app.lib.clock import utcnow
from app.lib.i18n import gettext as _
from app.lib.i18n import use_locale

FEED_HISTORY = timedelta(days=30)


async def build_feed(session: AsyncSession, user: User) -> bytes:
    settings = get_settings()
    query = (
        select(Booking)
        .join(ConsultationSlot, Booking.slot_id == ConsultationSlot.id)
        .where(
            or_(Booking.student_id == user.id, ConsultationSlot.professor_id == user.id),
            Booking.status.in_(ACTIVE),
            Booking.end_time > utcnow() - FEED_HISTORY,
        )
        .order_by(Booking.start_time)
    )
    bookings = (await session.scalars(query)).unique().all()
    # Calendar apps fetch the link without anyone signed in: it speaks its owner's language.
    with use_locale(user.locale):
        calendar = Calendar()
        calendar.add("prodid", "-//Office hours//EN")
        calendar.add("version", "2.0")
        calendar.add("x-wr-calname", _("Office hours: %(name)s", name=user.full_name))
        for booking in bookings:
            slot = booking.slot
            other = booking.student if slot.professor_id == user.id else slot.professor
            event = Event()
            event.add("uid", booking_uid(booking))
            event.add("sequence", booking.sequence)
            # When the booking last changed, not the fetch time: a poll with no change looks like no change.
            event.add("dtstamp", booking.updated_at.astimezone(UTC))
            event.add("dtstart", booking.start_time)
            event.add("dtend", booking.end_time)
            event.add("summary", _("Consultation with %(name)s", name=other.full_name))
            event.add("status", "CONFIRMED" if booking.status == "confirmed" else "TENTATIVE")
            if slot.location or slot.meeting_url:
                event.add("location", slot.location or slot.meeting_url)
            event.add("description", "\n".join(filter(None, [booking.topic, slot.meeting_url])))
            event.add("url", f"{settings.app_url}/bookings/{booking.id}")
            calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data
