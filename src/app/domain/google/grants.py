"""A person's Google Calendar grant: OAuth credentials encrypted at rest on their profile, refreshed as used."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from google.oauth2.credentials import Credentials
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import Profile
from app.domain.google.provider import CALENDAR_SCOPE, GoogleProvider
from app.domain.notifications.services import NotificationService
from app.lib.clock import utcnow
from app.lib.crypto import decrypt_json, encrypt_json
from app.lib.i18n import gettext as _

logger = logging.getLogger(__name__)
DISCONNECTED = "Google Calendar stopped accepting our access (it was revoked or expired). Connect it again."
CALENDAR_DISCONNECTED = "calendar_disconnected"  # the notification that tells the person


class CalendarAccessLost(RuntimeError):
    """The grant was revoked or is invalid even after a refresh: sync is turned off for that person."""


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

    async def profile(self, user_id: UUID) -> Profile:
        profile: Profile = (await self.session.scalars(select(Profile).where(Profile.user_id == user_id))).one()
        return profile

    async def connect(self, user_id: UUID, token: dict[str, Any]) -> None:
        if CALENDAR_SCOPE not in str(token.get("scope", "")).split():
            raise CalendarAccessLost(_("Google did not grant access to the calendar."))
        profile = await self.profile(user_id)
        previous = self.grant(profile)
        grant = {
            "access_token": token["access_token"],
            # Google sends a refresh token only on first consent; keep the one we have otherwise.
            "refresh_token": token.get("refresh_token") or (previous.refresh_token if previous else None),
            "expires_at": float(token.get("expires_at") or utcnow().timestamp() + 3000),
            "scope": token.get("scope", ""),
        }
        profile.google_calendar_token = encrypt_json(grant, self.settings)
        profile.calendar_sync_enabled, profile.calendar_sync_error = True, ""

    def grant(self, profile: Profile) -> StoredGrant | None:
        if not profile.google_calendar_token:
            return None
        data = decrypt_json(profile.google_calendar_token, self.settings)
        return StoredGrant(**data) if data else None

    async def disconnect(self, user_id: UUID) -> None:
        """Revoke at Google (best effort) and forget the credentials."""
        profile = await self.profile(user_id)
        grant = self.grant(profile)
        if grant is not None:
            try:
                await GoogleProvider(self.settings).revoke(grant.refresh_token or grant.access_token)
            except Exception:
                logger.warning("revoking a Google token failed; it is forgotten here anyway")
        profile.google_calendar_token, profile.calendar_sync_enabled, profile.calendar_sync_error = None, False, ""

    async def lose_access(self, user_id: UUID) -> None:
        """Turn sync off, keep the reason for /settings, and tell the person by e-mail."""
        profile = await self.profile(user_id)
        profile.google_calendar_token, profile.calendar_sync_enabled = None, False
        profile.calendar_sync_error = DISCONNECTED
        await NotificationService(session=self.session).record(
            user_id=user_id, booking_id=None, kind=CALENDAR_DISCONNECTED, variant=utcnow().isoformat()
        )

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
