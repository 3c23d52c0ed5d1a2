"""Google Calendar: the connection (encrypted OAuth credentials) and the sync of bookings to events.

google-api-python-client is synchronous, so each call runs in a worker thread. Sync is idempotent: an event's
id is derived from (booking, person), so a retried insert finds the event it made before instead of a twin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import anyio
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.google import CALENDAR_SCOPE, GoogleProvider
from app.domain.accounts.models import Profile, User
from app.domain.calendar.models import CalendarEvent
from app.domain.consultations.models import Booking, BookingStatus
from app.domain.notifications.services import NotificationService
from app.lib.crypto import decrypt_json, encrypt_json
from app.lib.transactions import commit

logger = logging.getLogger(__name__)
T = TypeVar("T")
RETRYABLE_STATUSES = {429, 500, 502, 503, 504}
DISCONNECTED = "Google Calendar stopped accepting our access (it was revoked or expired). Connect it again."


class RetryableSyncError(RuntimeError):
    """Google is busy or failing (429/5xx): the queue retries with backoff."""


class CalendarAccessLost(RuntimeError):
    """The grant was revoked or is invalid even after a refresh: sync is turned off for that person."""


def event_id_for(booking_id: UUID, user_id: UUID) -> str:
    """Google accepts client-chosen ids of base32hex characters (0-9, a-v); hex digits are a subset."""
    return f"oh{booking_id.hex}{user_id.hex[:12]}"


@dataclass(frozen=True)
class StoredGrant:
    access_token: str
    refresh_token: str | None
    expires_at: float
    scope: str


class CalendarConnection:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    async def _profile(self, user_id: UUID) -> Profile:
        profile: Profile = (await self.session.scalars(select(Profile).where(Profile.user_id == user_id))).one()
        return profile

    async def connect(self, user_id: UUID, token: dict[str, Any]) -> None:
        if CALENDAR_SCOPE not in str(token.get("scope", "")).split():
            raise CalendarAccessLost("Google did not grant access to the calendar.")
        profile = await self._profile(user_id)
        previous = self.grant(profile)
        grant = {
            "access_token": token["access_token"],
            # Google sends a refresh token only on first consent; keep the one we have otherwise.
            "refresh_token": token.get("refresh_token") or (previous.refresh_token if previous else None),
            "expires_at": float(token.get("expires_at") or datetime.now(UTC).timestamp() + 3000),
            "scope": token.get("scope", ""),
        }
        profile.google_calendar_token = encrypt_json(grant, self.settings)
        profile.calendar_sync_enabled, profile.calendar_sync_error = True, ""
        await self.session.commit()

    def grant(self, profile: Profile) -> StoredGrant | None:
        if not profile.google_calendar_token:
            return None
        data = decrypt_json(profile.google_calendar_token, self.settings)
        return StoredGrant(**data) if data else None

    async def disconnect(self, user_id: UUID) -> None:
        """Revoke at Google (best effort) and forget the credentials."""
        profile = await self._profile(user_id)
        grant = self.grant(profile)
        if grant is not None:
            try:
                await GoogleProvider(self.settings).revoke(grant.refresh_token or grant.access_token)
            except Exception:
                logger.warning("revoking a Google token failed; it is forgotten here anyway")
        profile.google_calendar_token, profile.calendar_sync_enabled, profile.calendar_sync_error = None, False, ""
        await self.session.commit()

    async def lose_access(self, user_id: UUID) -> None:
        """Turn sync off, keep the reason for /settings, and tell the person by e-mail."""
        profile = await self._profile(user_id)
        profile.google_calendar_token, profile.calendar_sync_enabled = None, False
        profile.calendar_sync_error = DISCONNECTED
        await NotificationService(session=self.session).record(
            user_id=user_id, booking_id=None, kind="calendar_disconnected", variant=datetime.now(UTC).isoformat()
        )
        await commit(self.session)

    async def credentials(self, profile: Profile) -> Credentials | None:
        grant = self.grant(profile) if profile.calendar_sync_enabled else None
        if grant is None:
            return None
        meta = await GoogleProvider(self.settings).metadata()
        return Credentials(  # type: ignore[no-untyped-call]
            token=grant.access_token,
            refresh_token=grant.refresh_token,
            token_uri=meta["token_endpoint"],
            client_id=self.settings.google_client_id,
            client_secret=self.settings.google_client_secret,
            scopes=grant.scope.split() or None,
            expiry=datetime.fromtimestamp(grant.expires_at, UTC).replace(tzinfo=None),
        )

    async def remember_refresh(self, profile: Profile, creds: Credentials) -> None:
        """After google-auth refreshed the access token, store the new one (encrypted)."""
        grant = self.grant(profile)
        if grant is None or creds.token == grant.access_token:
            return
        expiry = creds.expiry.replace(tzinfo=UTC).timestamp() if creds.expiry else grant.expires_at
        profile.google_calendar_token = encrypt_json(
            {
                "access_token": creds.token,
                "refresh_token": creds.refresh_token or grant.refresh_token,
                "expires_at": expiry,
                "scope": grant.scope,
            },
            self.settings,
        )


class CalendarSync:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.connection = CalendarConnection(session, settings)

    def _service(self, creds: Credentials) -> Any:
        return build(
            "calendar",
            "v3",
            credentials=creds,
            cache_discovery=False,
            static_discovery=True,
            # GOOGLE_API_ROOT is Google's root URL; the Calendar API lives under calendar/v3/ there.
            client_options={"api_endpoint": self.settings.google_api_root.rstrip("/") + "/calendar/v3/"},
        )

    async def _call(self, creds: Credentials, action: Callable[[Any], T]) -> T:
        """Run one Calendar API call in a thread; map Google's answers to retry / access lost."""

        def run() -> T:
            api = self._service(creds)
            try:
                return action(api)
            finally:
                api.close()  # httplib2 keeps its socket open otherwise

        try:
            return await anyio.to_thread.run_sync(run)
        except RefreshError as exc:
            raise CalendarAccessLost(str(exc)) from exc
        except HttpError as exc:
            if exc.status_code in RETRYABLE_STATUSES:
                raise RetryableSyncError(f"Google answered {exc.status_code}") from exc
            if exc.status_code == 401:
                raise CalendarAccessLost("401 after refresh") from exc
            raise

    async def sync_booking(self, booking_id: UUID) -> dict[UUID, str]:
        """Bring each connected party's calendar in line with the booking: create, update or delete its event."""
        booking = await self.session.get(Booking, booking_id)
        if booking is None:
            return {}
        outcome: dict[UUID, str] = {}
        for user in (booking.student, booking.slot.professor):
            user_id = user.id
            profile = (await self.session.scalars(select(Profile).where(Profile.user_id == user_id))).one()
            creds = await self.connection.credentials(profile)
            if creds is None:
                continue
            try:
                outcome[user_id] = await self._sync_one(booking, user, creds)
            except CalendarAccessLost:
                await self.connection.lose_access(user_id)
                outcome[user_id] = "access lost"
                continue
            await self.connection.remember_refresh(profile, creds)
            await self.session.commit()
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
            await self._call(creds, lambda api: _delete(api, event_id))
            await self.session.delete(row)
            return "deleted"
        body = self.event_body(booking, user, event_id)
        if row is not None and row.synced_sequence == booking.sequence:
            return "unchanged"
        await self._call(creds, lambda api: _upsert(api, event_id, body))
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
        return {
            "id": event_id,
            "summary": f"Consultation with {other.full_name}",
            "start": {"dateTime": booking.start_time.isoformat(), "timeZone": user.timezone},
            "end": {"dateTime": booking.end_time.isoformat(), "timeZone": user.timezone},
            "location": slot.location or slot.meeting_url,
            "description": "\n".join(filter(None, [booking.topic, slot.meeting_url, link])),
            "source": {"title": "Office hours", "url": link},
        }

    async def busy_periods(self, professor: User, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Busy times in the professor's primary calendar (FreeBusy), or none when it is not connected."""
        profile = (await self.session.scalars(select(Profile).where(Profile.user_id == professor.id))).one()
        creds = await self.connection.credentials(profile)
        if creds is None:
            return []
        body = {
            "timeMin": start.isoformat(),
            "timeMax": end.isoformat(),
            "items": [{"id": "primary"}],
        }
        try:
            answer = await self._call(creds, lambda api: api.freebusy().query(body=body).execute())
        except CalendarAccessLost:
            await self.connection.lose_access(professor.id)
            return []
        await self.connection.remember_refresh(profile, creds)
        await self.session.commit()
        busy = answer.get("calendars", {}).get("primary", {}).get("busy", [])
        return [(datetime.fromisoformat(item["start"]), datetime.fromisoformat(item["end"])) for item in busy]


def _upsert(api: Any, event_id: str, body: dict[str, Any]) -> None:
    try:
        api.events().insert(calendarId="primary", body=body).execute()
    except HttpError as exc:
        if exc.status_code != 409:  # 409: it exists (an earlier try made it): update it instead
            raise
        api.events().patch(calendarId="primary", eventId=event_id, body=body).execute()


def _delete(api: Any, event_id: str) -> None:
    try:
        api.events().delete(calendarId="primary", eventId=event_id).execute()
    except HttpError as exc:
        if exc.status_code not in (404, 410):  # gone already: the goal is met
            raise


async def busy_between(
    session: AsyncSession, settings: Settings, professor: User, first: date, last: date
) -> list[tuple[datetime, datetime]]:
    """The professor's busy times over whole local days (none when Google is not set up or not connected)."""
    if not settings.google_enabled:
        return []
    zone = ZoneInfo(professor.timezone)
    start = datetime.combine(first, time(0), tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)
    return await CalendarSync(session, settings).busy_periods(professor, start, end)
