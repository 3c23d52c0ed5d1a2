"""Request and response bodies of the accounts API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import msgspec

from app.lib.schemas import PartialUpdate


class RegisterInput(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    email: str
    password: str
    user_type: str = "student"
    first_name: str = ""
    last_name: str = ""
    timezone: str | None = None
    locale: str | None = None
    department: str = ""
    phone_number: str = ""


class TokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    password: str
    name: str = "API token"
    expires_in_days: int = 30


class TokenResponse(msgspec.Struct):
    token: str
    expires_at: datetime
    id: UUID
    name: str


class TokenOut(msgspec.Struct):
    """A token as its owner sees it in the list: never its value."""

    id: UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime
    current: bool


class UserOut(msgspec.Struct):
    id: UUID
    username: str
    email: str
    email_verified: bool
    user_type: str
    first_name: str
    last_name: str
    phone_number: str
    timezone: str
    locale: str
    is_admin: bool
    department: str
    bio: str
    profile_picture: str | None
    auto_confirm: bool
    booking_notice_hours: int
    cancellation_notice_hours: int
    max_active_bookings_per_student: int
    calendar_sync_enabled: bool
    second_reminder_minutes: int | None
    waitlist_hold_minutes: int
    waitlist_auto_book: bool
    students_may_reschedule: bool


class ProfessorOut(msgspec.Struct):
    id: UUID
    username: str
    first_name: str
    last_name: str
    department: str
    bio: str
    profile_picture: str | None


class MeUpdate(PartialUpdate):
    """PATCH body: only the fields present are changed."""

    email: str | msgspec.UnsetType = msgspec.UNSET
    first_name: str | msgspec.UnsetType = msgspec.UNSET
    last_name: str | msgspec.UnsetType = msgspec.UNSET
    phone_number: str | msgspec.UnsetType = msgspec.UNSET
    timezone: str | msgspec.UnsetType = msgspec.UNSET
    locale: str | msgspec.UnsetType = msgspec.UNSET
    department: str | msgspec.UnsetType = msgspec.UNSET
    bio: str | msgspec.UnsetType = msgspec.UNSET
    auto_confirm: bool | msgspec.UnsetType = msgspec.UNSET
    booking_notice_hours: int | msgspec.UnsetType = msgspec.UNSET
    cancellation_notice_hours: int | msgspec.UnsetType = msgspec.UNSET
    max_active_bookings_per_student: int | msgspec.UnsetType = msgspec.UNSET
    second_reminder_minutes: int | msgspec.UnsetType | None = msgspec.UNSET
    waitlist_hold_minutes: int | msgspec.UnsetType = msgspec.UNSET
    waitlist_auto_book: bool | msgspec.UnsetType = msgspec.UNSET
    students_may_reschedule: bool | msgspec.UnsetType = msgspec.UNSET


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    current_password: str
    new_password: str


class ProfessorPage(msgspec.Struct):
    items: list[ProfessorOut]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class GoogleIdentity:
    """A person as Google vouches for them (a verified ID token): linked to an account, or waiting to be."""

    sub: str
    email: str
    first_name: str
    last_name: str
