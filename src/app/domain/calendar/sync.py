"""Bookings mirrored into their parties' Google Calendars.

A booking change queues a sync job once it commits (consultations announces the change; this package connects the
job to it). Sync is idempotent: an event's id is derived from (booking, person), so a retried insert finds the
event it made before instead of a twin.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from google.oauth2.credentials import Credentials
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings, get_settings
from app.domain.accounts.models import User
from app.domain.calendar.models import CalendarEvent
from app.domain.consultations.models import Booking, BookingStatus
from app.domain.google.calendar_api import CalendarApi
from app.domain.google.grants import CalendarAccessLost, CalendarConnection
from app.lib.i18n import gettext as _
from app.lib.i18n import use_locale
from app.lib.queue import get_queue

SYNC_TASK = "sync_booking_calendar"


def event_id_for(booking_id: UUID, user_id: UUID) -> str:
    """Google accepts client-chosen ids of base32hex characters (0-9, a-v); hex digits are a subset."""
    return f"oh{booking_id.hex}{user_id.hex[:12]}"


async def queue_calendar_syncs(booking_ids: list[UUID]) -> None:
    """After a commit: one sync job per changed booking; SAQ retries it with backoff when Google is busy."""
    if not get_settings().google_enabled:
        return
    queue = await get_queue()
    for booking_id in dict.fromkeys(booking_ids):
        await queue.enqueue(
            SYNC_TASK,
            key=f"calendar:{booking_id}:{time.time_ns()}",
            booking_id=str(booking_id),
            timeout=60,
            retries=6,
            retry_delay=5.0,
            retry_backoff=True,
        )


class CalendarSync:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.connection = CalendarConnection(session, settings)
        self.api = CalendarApi(settings)

    async def sync_booking(self, booking_id: UUID) -> dict[UUID, str]:
        """Bring each connected party's calendar in line with the booking: create, update or delete its event."""
        booking = await self.session.get(Booking, booking_id)
        if booking is None:
            return {}
        outcome: dict[UUID, str] = {}
        for user in (booking.student, booking.slot.professor):
            profile = await self.connection.profile(user.id)
            creds = await self.connection.credentials(profile)
            if creds is None:
                continue
            try:
                outcome[user.id] = await self._sync_one(booking, user, creds)
            except CalendarAccessLost:
                await self.connection.lose_access(user.id)
                outcome[user.id] = "access lost"
                continue
            await self.connection.remember_refresh(profile, creds)
        return outcome

    async def _sync_one(self, booking: Booking, user: User, creds: Credentials) -> str:
        row = (
            await self.session.scalars(
                select(CalendarEvent).where(CalendarEvent.booking_id == booking.id, CalendarEvent.user_id == user.id)
            )
        ).one_or_none()
        wanted = booking.status == BookingStatus.CONFIRMED
        event_id = row.google_event_id if row else event_id_for(booking.id, user.id)
        if not wanted:
            if row is None:
                return "nothing"
            await self.api.delete_event(creds, event_id)
            await self.session.delete(row)
            return "deleted"
        if row is not None and row.synced_sequence == booking.sequence:
            return "unchanged"
        await self.api.upsert_event(creds, event_id, self.event_body(booking, user, event_id))
        if row is None:
            self.session.add(
                CalendarEvent(
                    booking_id=booking.id, user_id=user.id, google_event_id=event_id, synced_sequence=booking.sequence
                )
            )
            return "created"
        row.synced_sequence = booking.sequence
        return "updated"

    def event_body(self, booking: Booking, user: User, event_id: str) -> dict[str, Any]:
        slot = booking.slot
        other = booking.student if user.id == slot.professor_id else slot.professor
        link = f"{self.settings.app_url}/bookings/{booking.id}"
        with use_locale(user.locale):  # the event in its owner's language, as their e-mails are
            summary, source = _("Consultation with %(name)s", name=other.full_name), _("Office hours")
        return {
            "id": event_id,
            "summary": summary,
            "start": {"dateTime": booking.start_time.isoformat(), "timeZone": user.timezone},
            "end": {"dateTime": booking.end_time.isoformat(), "timeZone": user.timezone},
            "location": slot.location or slot.meeting_url,
            "description": "\n".join(filter(None, [booking.topic, slot.meeting_url, link])),
            "source": {"title": source, "url": link},
        }
