"""Administration: the outbox's failed deliveries (re-send), and the development mailbox (/dev/mail)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.notifications.emails import EmailBook, NoLongerRelevant, RenderedEmail, render_email
from app.domain.notifications.models import Notification
from app.domain.notifications.services import NotificationService, delivery_label, delivery_state
from app.lib.guards import requires_admin
from app.lib.i18n import gettext as _
from app.lib.rendering import render

MAX_LISTED = 200
MAIL_PREVIEW_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


async def rendered(session: AsyncSession, row: Notification, emails: EmailBook) -> RenderedEmail | None:
    """The message as it would be sent now; None when it would not be sent any more (a stale reminder)."""
    try:
        return await render_email(session, row, emails, get_settings())
    except NoLongerRelevant:
        return None


class DevMailbox(Controller):
    """Development only, for administrators: with no SMTP server, the outbox is the mailbox (it holds everyone's
    mail, so nobody else may read it)."""

    path = "/dev/mail"
    include_in_schema = False
    guards = [requires_admin]

    def _guard(self) -> None:
        if get_settings().is_production:
            raise NotFoundException()

    @get("/")
    async def index(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        emails: NamedDependency[EmailBook],
    ) -> Response[Any]:
        self._guard()
        rows = await NotificationService(session=db_session).newest(limit=MAX_LISTED)
        mails = [(row, await rendered(db_session, row, emails)) for row in rows]
        return render(request, "pages/dev_mail.html", {"mails": mails, "state": delivery_state})

    @get("/{notification_id:uuid}")
    async def show(
        self,
        notification_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        emails: NamedDependency[EmailBook],
    ) -> Response[str]:
        self._guard()
        row = await db_session.get(Notification, notification_id)
        if row is None:
            raise NotFoundException()
        email = await rendered(db_session, row, emails)
        if email is None:
            raise NotFoundException(_("This message would not be sent any more."))
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
        notifications = NotificationService(session=db_session)
        rows = await notifications.newest(status=status if status != "all" else None, limit=MAX_LISTED)
        return render(
            request, "pages/admin_notifications.html", {"rows": rows, "status": status, "state": delivery_label}
        )

    @post("/resend", status_code=303)
    async def resend(self, db_session: NamedDependency[AsyncSession]) -> Response[Any]:
        await NotificationService(session=db_session).retry_failed()
        return Response(b"", status_code=303, headers={"Location": "/admin/notifications"})
