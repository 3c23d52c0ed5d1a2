"""The e-mails of accounts: the link that proves an address; an account locked by failed sign-ins, with the link
that unlocks it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import User
from app.domain.accounts.signin import ACCOUNT_LOCKED_KIND
from app.domain.accounts.verification import EMAIL_VERIFICATION_KIND, VERIFY_LINK_LIFETIME, verify_url
from app.domain.notifications.emails import Detail, EmailContent, EmailRenderers, NoLongerRelevant
from app.domain.notifications.models import Notification
from app.lib.clock import utcnow
from app.lib.i18n import gettext as _
from app.lib.signing import sign

UNLOCK_PURPOSE = "unlock-account"
UNLOCK_LINK_LIFETIME = timedelta(hours=24)


def unlock_url(user: User, settings: Settings) -> str:
    token = sign(UNLOCK_PURPOSE, {"user": str(user.id)}, utcnow() + UNLOCK_LINK_LIFETIME, settings)
    return f"{settings.app_url}/account/unlock?t={token}"


async def account_locked(session: AsyncSession, row: Notification, settings: Settings) -> EmailContent:
    recipient = await session.get_one(User, row.user_id)
    return EmailContent(
        address=recipient.email,
        greeting=recipient.first_name or recipient.username,
        subject=_("Your account was locked after many failed sign-ins"),
        body="\n".join(
            (
                _(
                    "Someone tried many wrong passwords for your Office hours account, so it is locked for a while. "
                    "On a device where you signed in before, you can still sign in."
                ),
                _(
                    "If it was you, or to sign in elsewhere now, unlock it with the link below (valid for 24 hours). "
                    "If it was not you, your password kept the account safe; consider changing it to a longer one."
                ),
            )
        ),
        link=Detail(_("Unlock"), _("Unlock my account"), url=unlock_url(recipient, settings)),
    )


async def email_verification(session: AsyncSession, row: Notification, settings: Settings) -> EmailContent:
    recipient = await session.get_one(User, row.user_id)
    if recipient.email.lower() != row.context.get("email") or recipient.email_verified_at is not None:
        raise NoLongerRelevant("the address was verified or changed since")
    return EmailContent(
        address=recipient.email,
        greeting=recipient.first_name or recipient.username,
        subject=_("Confirm your e-mail address for Office hours"),
        body="\n".join(
            (
                _(
                    "Please confirm that %(email)s is your address, so that booking confirmations, reminders and "
                    "answers reach you. The link is valid for %(days)s days.",
                    email=recipient.email,
                    days=VERIFY_LINK_LIFETIME.days,
                ),
                _("If you did not create an Office hours account or change your address, ignore this e-mail."),
            )
        ),
        link=Detail(_("Confirm"), _("Confirm my address"), url=verify_url(recipient, settings)),
    )


EMAILS: EmailRenderers = {ACCOUNT_LOCKED_KIND: account_locked, EMAIL_VERIFICATION_KIND: email_verification}
