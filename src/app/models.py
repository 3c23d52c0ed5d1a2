"""Every model, imported once so the metadata (and Alembic) sees the whole schema."""

from app.domain.accounts.models import ApiToken, AuthFailure, Profile, User, UserSession
from app.domain.consultations.models import Booking, ConsultationNote, ConsultationSlot
from app.domain.notifications.models import Notification

__all__ = (
    "ApiToken",
    "AuthFailure",
    "Booking",
    "ConsultationNote",
    "ConsultationSlot",
    "Notification",
    "Profile",
    "User",
    "UserSession",
)
