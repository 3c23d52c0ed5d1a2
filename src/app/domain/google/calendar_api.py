"""Google Calendar API calls made with a person's grant: their busy times, and events created or removed.

google-api-python-client is synchronous, so each call runs in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

import anyio
import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import User
from app.domain.google.grants import CalendarAccessLost, CalendarConnection
from app.lib.clock import day_bounds

logger = logging.getLogger(__name__)
T = TypeVar("T")
RETRYABLE_STATUSES = {429, 500, 502, 503, 504}


class RetryableSyncError(RuntimeError):
    """Google is busy, failing or not answering (429/5xx, a timeout, a failed token refresh other than a revoked
    grant): nothing is lost, the queue retries with backoff."""


def grant_revoked(exc: RefreshError) -> bool:
    """Only `invalid_grant` from the token endpoint means the grant is gone (revoked, expired, password changed);
    any other refusal (a 5xx, `temporarily_unavailable`, our own client misconfigured) is not the person's doing."""
    details = exc.args[1] if len(exc.args) > 1 else None
    if isinstance(details, dict):
        return details.get("error") == "invalid_grant"
    return str(exc.args[0] if exc.args else "").startswith("invalid_grant")


class CalendarApi:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _service(self, creds: Credentials) -> Any:
        # One timeout for the token refresh and the API call alike (httplib2 has no per-request timeout).
        http = AuthorizedHttp(creds, http=httplib2.Http(timeout=self.settings.google_timeout_seconds))
        return build(
            "calendar",
            "v3",
            http=http,
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
            if grant_revoked(exc):
                raise CalendarAccessLost(str(exc)) from exc
            raise RetryableSyncError(f"refreshing the access token failed: {exc}") from exc
        except (TransportError, httplib2.HttpLib2Error, OSError) as exc:  # OSError: timeouts, refused connections
            raise RetryableSyncError(f"Google did not answer: {exc!r}") from exc
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
    except RetryableSyncError as exc:  # Google is down for now: plan without busy times, keep the connection
        logger.warning("busy times not read from Google Calendar: %s", exc)
        return []
    await connection.remember_refresh(profile, creds)
    busy = answer.get("calendars", {}).get("primary", {}).get("busy", [])
    return [(datetime.fromisoformat(item["start"]), datetime.fromisoformat(item["end"])) for item in busy]
