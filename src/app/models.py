"""Every model, imported once so the metadata (and Alembic) sees the whole schema."""

from app.domain.accounts.models import ApiToken, AuthFailure, Profile, User, UserSession
from app.domain.calendar.models import CalendarEvent
from app.domain.consultations.models import Booking, ConsultationNote, ConsultationSlot, WaitlistEntry
from app.domain.lti.models import LtiContext, LtiIdentity, LtiKey, LtiLaunchToken, LtiNonce, LtiPlatform
from app.domain.notifications.models import Notification

__all__ = (
    "ApiToken",
    "AuthFailure",
    "Booking",
    "CalendarEvent",
    "ConsultationNote",
    "ConsultationSlot",
    "LtiContext",
    "LtiIdentity",
    "LtiKey",
    "LtiLaunchToken",
    "LtiNonce",
    "LtiPlatform",
    "Notification",
    "Profile",
    "User",
    "UserSession",
    "WaitlistEntry",
)
