"""The e-mails of the LMS integration: a course's instructor invites the students who have not booked this term."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import User
from app.domain.lti.course_dashboard import INVITATION_KIND
from app.domain.notifications.emails import Detail, EmailContent, EmailRenderers
from app.domain.notifications.models import Notification
from app.lib.i18n import gettext as _


async def course_invitation(session: AsyncSession, row: Notification, settings: Settings) -> EmailContent:
    recipient = await session.get_one(User, row.user_id)
    professor = await session.get_one(User, UUID(row.context["professor_id"]))
    course = row.context.get("course_title") or _("your course")
    return EmailContent(
        address=recipient.email,
        greeting=recipient.first_name or recipient.username,
        subject=_("Office hours for %(course)s: book a consultation", course=course),
        body=_(
            "%(professor)s holds office hours for %(course)s and would like to see you. "
            "You have not booked a consultation this term yet: pick a free time that suits you.",
            professor=professor.full_name,
            course=course,
        ),
        link=Detail(_("Book"), _("See the free times"), url=f"{settings.app_url}/professors/{professor.id}"),
    )


EMAILS: EmailRenderers = {INVITATION_KIND: course_invitation}
