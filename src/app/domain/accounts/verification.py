"""Proving an e-mail address: a signed link mailed at registration and on every change of address.

Nothing is granted because of an address until it is proven: a professor account from PROFESSOR_SIGNUP_DOMAINS
publishes slots only once verified (consultations checks `publishing_problem`), and a platform that vouches for
addresses (LTI) joins a launch to an existing account only when that account's address is verified. An address
Google or a trusted platform vouches for, or an administrator set, counts as verified from the start.

The link is single-use by what it names: it carries the address, so it stops working once that address is verified
or replaced.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import User
from app.domain.notifications.services import NotificationService
from app.lib.clock import utcnow
from app.lib.i18n import gettext as _
from app.lib.signing import sign

VERIFY_PURPOSE = "verify-email"
VERIFY_LINK_LIFETIME = timedelta(days=7)
EMAIL_VERIFICATION_KIND = "email_verification"
# One mail per address per quarter of an hour, however often "send it again" is pressed.
RESEND_BUCKET_SECONDS = 15 * 60


def verify_url(user: User, settings: Settings) -> str:
    payload = {"user": str(user.id), "email": user.email.lower()}
    token = sign(VERIFY_PURPOSE, payload, utcnow() + VERIFY_LINK_LIFETIME, settings)
    return f"{settings.app_url}/account/verify?t={token}"


async def send_verification(session: AsyncSession, user: User) -> None:
    """Queue the mail with the link (signed when it is sent, for the address the account has then)."""
    bucket = int(utcnow().timestamp()) // RESEND_BUCKET_SECONDS
    await NotificationService(session=session).record(
        user_id=user.id,
        booking_id=None,
        kind=EMAIL_VERIFICATION_KIND,
        variant=f"{user.email.lower()}:{bucket}",
        context={"email": user.email.lower()},
    )


def publishing_problem(user: User, settings: Settings) -> str | None:
    """Why this professor may not publish slots yet: an account registered with a password, where addresses grant
    the professor role (PROFESSOR_SIGNUP_DOMAINS), publishes once its address is proven."""
    if user.password_hash is not None and user.email_verified_at is None and settings.professor_signup_domains:
        return _(
            "Verify your e-mail address before publishing slots: follow the link we sent to %(email)s.",
            email=user.email,
        )
    return None
