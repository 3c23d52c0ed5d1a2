"""One row per admin or security-relevant action. It names people only by their id (an erased account's id is
pseudonymous), never by name or address; the database refuses to change or delete a row (migration 0011)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.lib.database import Base


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_created_at", "created_at"),
        Index("ix_audit_log_target_id", "target_id"),
        Index("ix_audit_log_actor_id", "actor_id"),
    )

    # Who acted: an account id, or None for the system (a command run on the server, a scheduled job).
    actor_id: Mapped[UUID | None] = mapped_column(default=None)
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32), default="user")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Where from: the client's address (lib/http.client_address), or "cli"/"job".
    ip: Mapped[str] = mapped_column(String(64), default="")
