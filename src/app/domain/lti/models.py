"""LTI 1.3: registered platforms, the tool's own signing keys, who is who on each platform, and one-time values."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.domain.accounts.models import User
from app.lib.database import Base


class LtiPlatform(Base):
    """An LMS registration: what the platform told us (issuer, client id, its endpoints and deployments)."""

    __table_args__ = (UniqueConstraint("issuer", "client_id", name="uq_lti_platform_issuer_client"),)

    name: Mapped[str] = mapped_column(String(200), default="")
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    deployment_ids: Mapped[list[str]] = mapped_column(ARRAY(String(255)), default=list)
    auth_login_url: Mapped[str] = mapped_column(String(1000))
    jwks_url: Mapped[str] = mapped_column(String(1000))
    token_url: Mapped[str] = mapped_column(String(1000), default="")
    # Link a launch to an existing account with the same email only when the platform vouches for emails.
    trust_email: Mapped[bool] = mapped_column(Boolean, default=False)


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
    """A course on a platform and the professor whose office hours its learners see (its first instructor)."""

    __table_args__ = (UniqueConstraint("issuer", "context_id", name="uq_lti_context_issuer_context"),)

    issuer: Mapped[str] = mapped_column(String(500))
    context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(500), default="")
    professor_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)


class LtiNonce(Base):
    """An id_token nonce already used: a replayed launch is refused until the token would have expired anyway."""

    nonce: Mapped[str] = mapped_column(String(255), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)


class LtiLaunchToken(Base):
    """Signs a launch in again in a new tab when the frame can keep no cookie: short-lived, single-use, hashed."""

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    target: Mapped[str] = mapped_column(String(300))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
