"""Google Calendar API calls made with a person's grant: their busy times, and events created or removed.

google-api-python-client is synchronous, so each call runs in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

import anyio
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import User
from app.domain.google.grants import CalendarAccessLost, CalendarConnection
from app.lib.clock import day_bounds

T = TypeVar("T")
RETRYABLE_STATUSES = {429, 500, 502, 503, 504}


class RetryableSyncError(RuntimeError):
    """Google is busy or failing (429/5xx): the queue retries with backoff."""


class CalendarApi:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

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

    async def call(self, creds: Credentials, action: Callable[[Any], T]) -> T:
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

    async def upsert_event(self, creds: Credentials, event_id: str, body: dict[str, Any]) -> None:
        await self.call(creds, lambda api: _upsert(api, event_id, body))

    async def delete_event(self, creds: Credentials, event_id: str) -> None:
        await self.call(creds, lambda api: _delete(api, event_id))


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
    """The professor's busy times over whole local days, from their primary calendar (FreeBusy); none when Google
    is not set up or their calendar is not connected."""
    if not settings.google_enabled:
        return []
    connection = CalendarConnection(session, settings)
    profile = await connection.profile(professor.id)
    creds = await connection.credentials(profile)
    if creds is None:
        return []
    start, end = day_bounds(first, last, professor.timezone)
    body = {"timeMin": start.isoformat(), "timeMax": end.isoformat(), "items": [{"id": "primary"}]}
    try:
        answer = await CalendarApi(settings).call(creds, lambda api: api.freebusy().query(body=body).execute())
    except CalendarAccessLost:
        await connection.lose_access(professor.id)
        return []
    await connection.remember_refresh(profile, creds)
    busy = answer.get("calendars", {}).get("primary", {}).get("busy", [])
    return [(datetime.fromisoformat(item["start"]), datetime.fromisoformat(item["end"])) for item in busy]
