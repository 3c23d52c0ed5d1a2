"""Consultation slots, their bookings, the notes on a booking, and the waitlist for places."""

from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.domain.accounts.models import User
from app.lib.database import Base


class SlotStatus(enum.StrEnum):
    AVAILABLE = "available"
    BOOKED = "booked"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class BookingStatus(enum.StrEnum):
    PENDING = "pending"  # requested, waiting for the professor's answer
    CONFIRMED = "confirmed"
    DECLINED = "declined"  # the professor said no to a request
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


ACTIVE_BOOKING_STATUSES = (BookingStatus.PENDING, BookingStatus.CONFIRMED)
# Active bookings take a place (as values, for queries).
ACTIVE = tuple(status.value for status in ACTIVE_BOOKING_STATUSES)
_ACTIVE_SQL = "status IN ('pending', 'confirmed')"


class CourseRole(enum.StrEnum):
    INSTRUCTOR = "instructor"
    LEARNER = "learner"


class Course(Base):
    """A group of students a professor may reserve slots for (an LMS course, kept up to date by the lti domain)."""

    title: Mapped[str] = mapped_column(String(500), default="")


class CourseMember(Base):
    """Who belongs to a course now, and as what. Leaving a course ends this row, never the person's bookings."""

    __table_args__ = (
        UniqueConstraint("course_id", "user_id", name="uq_course_member_course_user"),
        CheckConstraint("role IN ('instructor', 'learner')", name="role_valid"),
    )

    course_id: Mapped[UUID] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))


# The courses a slot is reserved for; a slot with none is open to every student.
slot_course = Table(
    "slot_course",
    Base.metadata,
    Column("slot_id", ForeignKey("consultation_slot.id", ondelete="CASCADE"), primary_key=True),
    Column("course_id", ForeignKey("course.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class ConsultationSlot(Base):
    __table_args__ = (
        CheckConstraint("end_time > start_time", name="end_after_start"),
        CheckConstraint("capacity >= 1", name="capacity_positive"),
        # "No slot created in the past": the start must lie after the row's creation.
        CheckConstraint("start_time > created_at", name="not_created_in_past"),
        CheckConstraint("status IN ('available', 'booked', 'completed', 'cancelled')", name="status_valid"),
        ExcludeConstraint(
            ("professor_id", "="),
            (text("tstzrange(start_time, end_time, '[)')"), "&&"),
            where=text("status <> 'cancelled'"),
            using="gist",
            name="consultation_slot_no_overlap",
        ),
        Index("ix_consultation_slot_professor_start", "professor_id", "start_time"),
        Index("ix_consultation_slot_status_start", "status", "start_time"),
    )

    professor_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    start_time: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    end_time: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    location: Mapped[str] = mapped_column(String(200), default="")
    meeting_url: Mapped[str] = mapped_column(String(500), default="")
    title: Mapped[str] = mapped_column(String(200), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=SlotStatus.AVAILABLE.value)
    series_id: Mapped[UUID | None] = mapped_column(default=None, index=True)

    professor: Mapped[User] = relationship(lazy="joined", innerjoin=True)
    courses: Mapped[list[Course]] = relationship(secondary=slot_course, lazy="selectin", order_by=Course.title)


class Booking(Base):
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'confirmed', 'declined', 'cancelled', 'completed', 'no_show')", name="status_valid"
        ),
        CheckConstraint("end_time > start_time", name="end_after_start"),
        # One active booking per (slot, student); a cancelled one does not block rebooking.
        Index(
            "uq_booking_active_slot_student",
            "slot_id",
            "student_id",
            unique=True,
            postgresql_where=text(_ACTIVE_SQL),
        ),
        # A student never holds two active bookings that overlap in time (times copied from the slot).
        ExcludeConstraint(
            ("student_id", "="),
            (text("tstzrange(start_time, end_time, '[)')"), "&&"),
            where=text(_ACTIVE_SQL),
            using="gist",
            name="booking_student_no_overlap",
        ),
        Index("ix_booking_student_status", "student_id", "status"),
    )

    slot_id: Mapped[UUID] = mapped_column(ForeignKey("consultation_slot.id", ondelete="CASCADE"), index=True)
    student_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16), default=BookingStatus.PENDING.value)
    start_time: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    end_time: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    cancelled_by: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), default=None)
    cancel_reason: Mapped[str] = mapped_column(Text, default="")
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    sequence: Mapped[int] = mapped_column(Integer, default=0)

    slot: Mapped[ConsultationSlot] = relationship(lazy="joined", innerjoin=True)
    student: Mapped[User] = relationship(lazy="joined", innerjoin=True, foreign_keys=[student_id])


class ConsultationNote(Base):
    __table_args__ = (CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating_range"),)

    booking_id: Mapped[UUID] = mapped_column(ForeignKey("booking.id", ondelete="CASCADE"), unique=True)
    professor_notes: Mapped[str] = mapped_column(Text, default="")
    student_feedback: Mapped[str] = mapped_column(Text, default="")
    rating: Mapped[int | None] = mapped_column(Integer, default=None)
    feedback_signed: Mapped[bool] = mapped_column(Boolean, default=False)
    rated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


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
