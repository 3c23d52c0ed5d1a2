"""Google Calendar events created for bookings: one per (booking, person), so sync is idempotent."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.lib.database import Base


class CalendarEvent(Base):
    __table_args__ = (UniqueConstraint("booking_id", "user_id", name="uq_calendar_event_booking_user"),)

    booking_id: Mapped[UUID] = mapped_column(ForeignKey("booking.id", ondelete="CASCADE"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    google_event_id: Mapped[str] = mapped_column(String(1024))
    synced_sequence: Mapped[int] = mapped_column(default=0)
