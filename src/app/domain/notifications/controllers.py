"""Outbox pages: development mailbox (/dev/mail), failed deliveries for admins, and the ICS feed."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.accounts.models import Profile, User
from app.domain.calendar.feed import build_feed
from app.domain.consultations.models import Booking
from app.domain.notifications.emails import render_email
from app.domain.notifications.models import Notification
from app.domain.notifications.services import OutboxDelivery, delivery_state, list_notifications
from app.lib.auth import requires_admin
from app.lib.rendering import render

MAX_LISTED = 200
MAIL_PREVIEW_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


async def rendered(session: AsyncSession, row: Notification) -> Any:
    recipient = await session.get_one(User, row.user_id)
    booking = await session.get(Booking, row.booking_id) if row.booking_id else None
    return render_email(row, recipient, booking, get_settings())


class DevMailbox(Controller):
    """Development only: with no SMTP server, the outbox is the mailbox."""

    path = "/dev/mail"
    include_in_schema = False

    def _guard(self) -> None:
        if get_settings().is_production:
            raise NotFoundException()

    @get("/")
    async def index(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Response[Any]:
        self._guard()
        rows = await list_notifications(db_session, limit=MAX_LISTED)
        mails = [(row, await rendered(db_session, row)) for row in rows]
        return render(request, "pages/dev_mail.html", {"mails": mails, "state": delivery_state})

    @get("/{notification_id:uuid}")
    async def show(self, notification_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]) -> Response[str]:
        self._guard()
        row = await db_session.get(Notification, notification_id)
        if row is None:
            raise NotFoundException()
        email = await rendered(db_session, row)
        # The e-mail's own HTML, shown as the recipient's client would; it has no scripts to run.
        return Response(email.html, media_type="text/html", headers={"Content-Security-Policy": MAIL_PREVIEW_CSP})


class AdminNotifications(Controller):
    path = "/admin/notifications"
    guards = [requires_admin]
    include_in_schema = False

    @get("/")
    async def index(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        status: FromQuery[str] = "failed",
    ) -> Response[Any]:
        rows = await list_notifications(db_session, status=status if status != "all" else None, limit=MAX_LISTED)
        return render(
            request, "pages/admin_notifications.html", {"rows": rows, "status": status, "state": delivery_state}
        )

    @post("/resend", status_code=303)
    async def resend(self, db_session: NamedDependency[AsyncSession]) -> Response[Any]:
        await OutboxDelivery(db_session, get_settings()).retry_failed()
        return Response(b"", status_code=303, headers={"Location": "/admin/notifications"})


class CalendarFeed(Controller):
    include_in_schema = True
    tags = ["calendar"]

    @get(
        "/calendar/{feed_name:str}",
        summary="Your consultations as iCalendar (the link is the key)",
        responses={404: ResponseSpec(data_container=None, description="Unknown or replaced link")},
    )
    async def feed(self, feed_name: FromPath[str], db_session: NamedDependency[AsyncSession]) -> Response[bytes]:
        token = feed_name.removesuffix(".ics")
        if not feed_name.endswith(".ics") or not token:
            raise NotFoundException()
        user_id = await db_session.scalar(select(Profile.user_id).where(Profile.ics_feed_token == token))
        if user_id is None:
            raise NotFoundException()
        user = await db_session.get_one(User, user_id)
        return Response(
            await build_feed(db_session, user),
            media_type="text/calendar; charset=utf-8",
            headers={"Cache-Control": "private, max-age=300"},
        )
