"""LTI 1.3: registered platforms, the tool's own signing keys, who is who on each platform, and one-time values."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.domain.accounts.models import User
from app.domain.consultations.models import Course
from app.lib.database import Base


class RegisteredVia(enum.StrEnum):
    MANUAL = "manual"  # `app lti add-platform`: approved by whoever ran it
    DYNAMIC = "dynamic"  # LTI Dynamic Registration: waits for an administrator's approval (unless LTI_AUTO_APPROVE)


class LtiPlatform(Base):
    """An LMS registration: what the platform told us (issuer, client id, its endpoints and deployments).

    No deployment ids (a dynamic registration the platform gave none): every deployment of this client id counts.
    """

    __table_args__ = (
        UniqueConstraint("issuer", "client_id", name="uq_lti_platform_issuer_client"),
        CheckConstraint("registered_via IN ('manual', 'dynamic')", name="registered_via_valid"),
    )

    name: Mapped[str] = mapped_column(String(200), default="")
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    deployment_ids: Mapped[list[str]] = mapped_column(ARRAY(String(255)), default=list)
    auth_login_url: Mapped[str] = mapped_column(String(1000))
    jwks_url: Mapped[str] = mapped_column(String(1000))
    token_url: Mapped[str] = mapped_column(String(1000), default="")
    # Link a launch to an existing account with the same email only when the platform vouches for emails.
    trust_email: Mapped[bool] = mapped_column(Boolean, default=False)
    registered_via: Mapped[str] = mapped_column(String(16), default=RegisteredVia.MANUAL.value)
    # Launches are accepted only once an administrator approved the registration.
    approved_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

    @property
    def is_approved(self) -> bool:
        return self.approved_at is not None


class LtiKey(Base):
    """The tool's RSA key pair; the current one and, for a while after a rotation, the previous ones are published."""

    __table_args__ = (
        # At most one current key, even when two processes create the first one at once.
        Index("uq_lti_key_current", "is_current", unique=True, postgresql_where=text("is_current")),
    )

    kid: Mapped[str] = mapped_column(String(100), unique=True)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    private_key: Mapped[str] = mapped_column(Text)  # Fernet-encrypted JWK (lib/crypto); never served
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    retired_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class LtiIdentity(Base):
    """A platform's person (issuer, sub) linked to one of our accounts."""

    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_lti_identity_issuer_subject"),)

    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)

    user: Mapped[User] = relationship(lazy="joined")


class LtiContext(Base):
    """A course on a platform: the course here (consultations), the professor whose office hours its learners see
    (its first instructor), and the course roster from the platform's Names and Role Provisioning Service."""

    __table_args__ = (UniqueConstraint("issuer", "context_id", name="uq_lti_context_issuer_context"),)

    issuer: Mapped[str] = mapped_column(String(500))
    context_id: Mapped[str] = mapped_column(String(255))
    # Removing a platform removes its courses' contexts and rosters (the courses stay, with their reserved slots).
    platform_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("lti_platform.id", ondelete="CASCADE"), default=None, index=True
    )
    course_id: Mapped[UUID] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"), unique=True)
    professor_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), default=None, index=True
    )
    memberships_url: Mapped[str] = mapped_column(String(1000), default="")
    roster_fetched_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    roster_error: Mapped[str] = mapped_column(Text, default="")
    term_start: Mapped[date | None] = mapped_column(Date, default=None)

    course: Mapped[Course] = relationship(lazy="joined", innerjoin=True)


class LtiRosterMember(Base):
    """An active member of a course as its platform's roster lists them (NRPS), whether or not they opened the tool."""

    __table_args__ = (
        UniqueConstraint("context_id", "subject", name="uq_lti_roster_member_context_subject"),
        CheckConstraint("role IN ('instructor', 'learner', 'other')", name="role_valid"),
    )

    context_id: Mapped[UUID] = mapped_column(ForeignKey("lti_context.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(300), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    role: Mapped[str] = mapped_column(String(16))


class LtiDeepLinkRequest(Base):
    """An instructor's deep-linking launch waiting for their choice: where the answer goes, and what to echo."""

    platform_id: Mapped[UUID] = mapped_column(ForeignKey("lti_platform.id", ondelete="CASCADE"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    deployment_id: Mapped[str] = mapped_column(String(255))
    return_url: Mapped[str] = mapped_column(String(1000))
    data: Mapped[str] = mapped_column(Text, default="")  # the platform's opaque `data`, sent back unchanged
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)

    platform: Mapped[LtiPlatform] = relationship(lazy="joined", innerjoin=True)


class LtiNonce(Base):
    """An id_token nonce already used: a replayed launch is refused until the token would have expired anyway."""

    nonce: Mapped[str] = mapped_column(String(255), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)


class LtiLaunchToken(Base):
    """Signs a launch in again in a new tab when the frame can keep no cookie: short-lived, single-use, hashed."""

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    target: Mapped[str] = mapped_column(String(1000))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
