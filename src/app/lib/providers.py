"""Services outside a request (queue tasks, CLI): one database session, every service on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_alchemy_config
from app.domain.accounts.services import ApiTokenService, UserService
from app.domain.consultations.services import BookingService, SlotService
from app.domain.notifications.services import NotificationService
from app.domain.waitlist.services import WaitlistService


class Services:
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
    def notifications(self) -> NotificationService:
        return NotificationService(session=self.session)


@asynccontextmanager
async def provide_services() -> AsyncIterator[Services]:
    async with get_alchemy_config().get_session() as session:
        yield Services(session)
