"""A prepared data export: the ZIP is kept in the database (every app process and worker reaches it) until it
expires; the retention job deletes expired ones."""

from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.lib.database import Base


class ExportStatus(enum.StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class DataExport(Base):
    __table_args__ = (CheckConstraint("status IN ('pending', 'ready', 'failed')", name="status_valid"),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=ExportStatus.PENDING.value)
    content: Mapped[bytes | None] = mapped_column(LargeBinary, default=None, deferred=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    ready_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
