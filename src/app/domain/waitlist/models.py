"""Waitlist entries: a student waiting for a full slot, or for any free slot of a professor in a time window."""

from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base
from app.domain.accounts.models import User
from app.domain.consultations.models import ConsultationSlot


class WaitlistStatus(enum.StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"  # a place is held for this student until hold_expires_at
    ACCEPTED = "accepted"
    EXPIRED = "expired"
    LEFT = "left"


class WaitlistEntry(Base):
    __table_args__ = (
        CheckConstraint("status IN ('waiting', 'offered', 'accepted', 'expired', 'left')", name="status_valid"),
        CheckConstraint("window_end > window_start", name="window_valid"),
        CheckConstraint(
            "status <> 'offered' OR (offered_slot_id IS NOT NULL AND hold_expires_at IS NOT NULL)",
            name="offer_complete",
        ),
        # One open entry per student and slot (or per student and professor window).
        Index(
            "uq_waitlist_open_slot_student",
            "slot_id",
            "student_id",
            unique=True,
            postgresql_where=text("status IN ('waiting', 'offered') AND slot_id IS NOT NULL"),
        ),
        Index("ix_waitlist_professor_status_created", "professor_id", "status", "created_at"),
        Index("ix_waitlist_offered_slot", "offered_slot_id", postgresql_where=text("status = 'offered'")),
    )

    professor_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    student_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    slot_id: Mapped[UUID | None] = mapped_column(ForeignKey("consultation_slot.id", ondelete="CASCADE"), default=None)
    window_start: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default=WaitlistStatus.WAITING.value)
    offered_slot_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("consultation_slot.id", ondelete="CASCADE"), default=None
    )
    hold_expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    offer_nonce: Mapped[str | None] = mapped_column(String(64), default=None)

    student: Mapped[User] = relationship(lazy="joined", foreign_keys=[student_id])
    offered_slot: Mapped[ConsultationSlot | None] = relationship(lazy="joined", foreign_keys=[offered_slot_id])
