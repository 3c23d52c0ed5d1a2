"""Accounts: people, their profiles, API tokens, web sessions and failed sign-in attempts."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime
from uuid import UUID

from advanced_alchemy.extensions.litestar.session import SessionModelMixin
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, func, literal_column
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.lib.database import Base
from app.lib.i18n import gettext as _


class UserType(enum.StrEnum):
    PROFESSOR = "professor"
    STUDENT = "student"


def person_name(first_name: str, last_name: str, username: str, *, erased: bool, professor: bool) -> str:
    """How the site names a person (also where it reads their columns without loading the user)."""
    if erased:
        return _("Former professor") if professor else _("Former student")
    return f"{first_name} {last_name}".strip() or username


class User(Base):
    __tablename__ = "user_account"
    __table_args__ = (
        # Usernames and emails are unique whatever their case: "Ada" and "ada" are one person.
        Index("uq_user_account_username_lower", func.lower(literal_column("username")), unique=True),
        Index("uq_user_account_email_lower", func.lower(literal_column("email")), unique=True),
        CheckConstraint("user_type IN ('professor', 'student')", name="user_type_valid"),
    )

    username: Mapped[str] = mapped_column(String(150))
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    user_type: Mapped[str] = mapped_column(String(16), default=UserType.STUDENT.value)
    first_name: Mapped[str] = mapped_column(String(150), default="")
    last_name: Mapped[str] = mapped_column(String(150), default="")
    phone_number: Mapped[str] = mapped_column(String(32), default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(64))
    # Google account (OpenID Connect `sub`), once linked.
    google_sub: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    # When the address was proven by a mailed link (or by Google, an LMS, an administrator); None: not yet.
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # Raised by a password change or "sign out everywhere": web sessions signed in under an older epoch end.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The language pages and e-mails speak to this person (lib/i18n.SUPPORTED_LOCALES).
    locale: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    # When the person's data was erased (domain/privacy): the row stays only as a pseudonymous id that their
    # past bookings and the audit log point to; nothing in it names them any more.
    erased_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

    profile: Mapped[Profile] = relationship(
        back_populates="user", lazy="joined", uselist=False, cascade="all, delete-orphan"
    )

    @property
    def full_name(self) -> str:
        return person_name(
            self.first_name, self.last_name, self.username, erased=self.is_erased, professor=self.is_professor
        )

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None

    @property
    def is_professor(self) -> bool:
        return self.user_type == UserType.PROFESSOR

    @property
    def is_student(self) -> bool:
        return self.user_type == UserType.STUDENT


def new_feed_token() -> str:
    return secrets.token_urlsafe(32)


class Profile(Base):
    __table_args__ = (
        CheckConstraint("booking_notice_hours >= 0", name="booking_notice_hours_not_negative"),
        CheckConstraint("cancellation_notice_hours >= 0", name="cancellation_notice_hours_not_negative"),
        CheckConstraint("max_active_bookings_per_student >= 1", name="max_active_bookings_positive"),
        CheckConstraint("waitlist_hold_minutes BETWEEN 5 AND 2880", name="waitlist_hold_minutes_range"),
        CheckConstraint(
            "second_reminder_minutes IS NULL OR second_reminder_minutes BETWEEN 5 AND 10080",
            name="second_reminder_minutes_range",
        ),
    )

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), unique=True)
    department: Mapped[str] = mapped_column(String(200), default="")
    bio: Mapped[str] = mapped_column(Text, default="")
    profile_picture: Mapped[str | None] = mapped_column(String(500), default=None)
    google_calendar_token: Mapped[str | None] = mapped_column(Text, default=None)  # Fernet-encrypted JSON
    calendar_sync_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    calendar_sync_error: Mapped[str] = mapped_column(Text, default="")
    auto_confirm: Mapped[bool] = mapped_column(Boolean, default=False)
    booking_notice_hours: Mapped[int] = mapped_column(Integer, default=2)
    cancellation_notice_hours: Mapped[int] = mapped_column(Integer, default=2)
    max_active_bookings_per_student: Mapped[int] = mapped_column(Integer, default=2)
    ics_feed_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_feed_token)
    # A second reminder besides the 24 h one, e.g. 60 minutes before; None: only the default.
    second_reminder_minutes: Mapped[int | None] = mapped_column(Integer, default=None)
    # Waitlist: how long a freed place is held for the next student, or book them at once (no hold).
    waitlist_hold_minutes: Mapped[int] = mapped_column(Integer, default=120)
    waitlist_auto_book: Mapped[bool] = mapped_column(Boolean, default=False)
    # Students may move their booking to another free slot of this professor (one step, keeping the place).
    students_may_reschedule: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")

    user: Mapped[User] = relationship(back_populates="profile")


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 digest is stored."""

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="api")
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))

    user: Mapped[User] = relationship(lazy="joined")


class UserSession(SessionModelMixin):
    """Server-side web sessions, shared by every app process through PostgreSQL."""

    __tablename__ = "user_session"


class AuthFailure(Base):
    """One failed sign-in, keyed by account or by client address; successes are never counted."""

    __table_args__ = (Index("ix_auth_failure_key_created_at", "key", "created_at"),)

    key: Mapped[str] = mapped_column(String(300))
