"""The composition root: the services a queue job or a command works with, and the wiring between domains.

Every entry point (the app, the worker, the CLI) imports this module, so the connections below always hold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cached_property
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.emails import EMAILS as ACCOUNT_EMAILS
from app.domain.accounts.models import User
from app.domain.accounts.services import UserService
from app.domain.accounts.tokens import ApiTokenService
from app.domain.calendar.sync import queue_calendar_syncs
from app.domain.consultations.bookings import BookingService
from app.domain.consultations.emails import EMAILS as CONSULTATION_EMAILS
from app.domain.consultations.events import booking_changed
from app.domain.consultations.notes import NoteService
from app.domain.consultations.slots import SlotService
from app.domain.consultations.waitlist import WaitlistService
from app.domain.google.emails import EMAILS as GOOGLE_EMAILS
from app.domain.lti.emails import EMAILS as LTI_EMAILS
from app.domain.notifications.emails import EmailBook
from app.domain.notifications.services import NotificationService
from app.lib.i18n import DEFAULT_LOCALE
from app.lib.unit_of_work import unit_of_work


async def recipient_locale(session: AsyncSession, user_id: UUID) -> str:
    """The language a person reads their e-mail in: the one they chose for the site."""
    locale = await session.scalar(select(User.locale).where(User.id == user_id))
    return locale or DEFAULT_LOCALE


# Every kind of e-mail the outbox may hold, what renders it, and in which language.
EMAILS = EmailBook(
    renderers={**ACCOUNT_EMAILS, **CONSULTATION_EMAILS, **GOOGLE_EMAILS, **LTI_EMAILS}, locale_of=recipient_locale
)

# Google Calendar mirrors bookings: a committed booking change queues its sync.
booking_changed.connect(queue_calendar_syncs)


class Services:
    """Every service on one session (one unit of work)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @cached_property
    def users(self) -> UserService:
        return UserService(session=self.session)

    @cached_property
    def tokens(self) -> ApiTokenService:
        return ApiTokenService(session=self.session)

    @cached_property
    def slots(self) -> SlotService:
        return SlotService(session=self.session)

    @cached_property
    def bookings(self) -> BookingService:
        return BookingService(session=self.session)

    @cached_property
    def waitlist(self) -> WaitlistService:
        return WaitlistService(session=self.session)

    @cached_property
    def notes(self) -> NoteService:
        return NoteService(session=self.session)

    @cached_property
    def notifications(self) -> NotificationService:
        return NotificationService(session=self.session)


@asynccontextmanager
async def provide_services() -> AsyncIterator[Services]:
    """One unit of work: committed when the block ends (then its after-commit actions run), undone if it raises."""
    async with unit_of_work() as unit:
        yield Services(unit.session)
