"""The e-mail this package sends: Google Calendar sync was switched off."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import User
from app.domain.google.grants import CALENDAR_DISCONNECTED
from app.domain.notifications.emails import EmailContent, EmailRenderers, render_text
from app.domain.notifications.models import Notification
from app.lib.i18n import gettext as _


async def calendar_disconnected(session: AsyncSession, row: Notification, settings: Settings) -> EmailContent:
    recipient = await session.get_one(User, row.user_id)
    return EmailContent(
        address=recipient.email,
        greeting=recipient.first_name or recipient.username,
        subject=_("Google Calendar sync is off"),
        body=render_text("emails/calendar_disconnected.txt", app_url=settings.app_url),
    )


EMAILS: EmailRenderers = {CALENDAR_DISCONNECTED: calendar_disconnected}
