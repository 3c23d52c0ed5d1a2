"""Every model, imported once so the metadata (and Alembic) sees the whole schema."""

from app.domain.accounts.models import ApiToken, AuthFailure, Profile, User, UserSession
from app.domain.audit.models import AuditEntry
from app.domain.calendar.models import CalendarEvent
from app.domain.consultations.models import (
    Booking,
    ConsultationNote,
    ConsultationSlot,
    Course,
    CourseMember,
    WaitlistEntry,
)
from app.domain.lti.models import (
    LtiContext,
    LtiDeepLinkRequest,
    LtiIdentity,
    LtiKey,
    LtiLaunchToken,
    LtiNonce,
    LtiPlatform,
    LtiRosterMember,
)
from app.domain.notifications.models import Notification
from app.domain.privacy.models import DataExport

__all__ = (
    "ApiToken",
    "AuditEntry",
    "AuthFailure",
    "Booking",
    "CalendarEvent",
    "ConsultationNote",
    "ConsultationSlot",
    "Course",
    "CourseMember",
    "DataExport",
    "LtiContext",
    "LtiDeepLinkRequest",
    "LtiIdentity",
    "LtiKey",
    "LtiLaunchToken",
    "LtiNonce",
    "LtiPlatform",
    "LtiRosterMember",
    "Notification",
    "Profile",
    "User",
    "UserSession",
    "WaitlistEntry",
)
