"""Request and response bodies of the slots and bookings API."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from app.domain.consultations.rules import SlotRule
from app.lib.schemas import PartialUpdate


class SlotIn(msgspec.Struct, forbid_unknown_fields=True):
    start_time: datetime
    end_time: datetime
    capacity: int = 1
    location: str = ""
    meeting_url: str = ""
    title: str = ""
    notes: str = ""
    course_ids: list[UUID] = msgspec.field(default_factory=list)  # only these courses' students may book it


class SlotPatch(PartialUpdate):
    start_time: datetime | msgspec.UnsetType = msgspec.UNSET
    end_time: datetime | msgspec.UnsetType = msgspec.UNSET
    capacity: int | msgspec.UnsetType = msgspec.UNSET
    location: str | msgspec.UnsetType = msgspec.UNSET
    meeting_url: str | msgspec.UnsetType = msgspec.UNSET
    title: str | msgspec.UnsetType = msgspec.UNSET
    notes: str | msgspec.UnsetType = msgspec.UNSET
    course_ids: list[UUID] | msgspec.UnsetType = msgspec.UNSET


class SlotOut(msgspec.Struct):
    id: UUID
    professor_id: UUID
    start_time: datetime
    end_time: datetime
    capacity: int
    status: str
    location: str
    meeting_url: str
    title: str
    notes: str
    booked_count: int
    series_id: UUID | None
    course_ids: list[UUID]  # reserved for these courses' students; empty: open to every student


class BulkSlotsIn(SlotRule):
    """A slot rule (see SlotRule), and how to treat clashes and busy times. The dashboard's generator posts it too."""

    all_or_nothing: bool = False
    keep_busy: bool = False  # also create slots that collide with busy times in the professor's Google Calendar


class SlotClash(msgspec.Struct):
    start_time: datetime
    end_time: datetime
    clashes_with: UUID


class BulkSlotsOut(msgspec.Struct):
    items: list[SlotOut]
    total: int
    clashes: list[SlotClash]
    skipped_past: list[datetime]
    skipped_busy: list[datetime]


class SlotCancelIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: str = ""


class BookingIn(msgspec.Struct, forbid_unknown_fields=True):
    topic: str = ""


class BookingCancelIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: str = ""


class RescheduleIn(msgspec.Struct, forbid_unknown_fields=True):
    """Move the booking to another free slot of the same professor (one step: the current place is kept until then)."""

    slot_id: UUID


class BookingOut(msgspec.Struct):
    id: UUID
    slot_id: UUID
    student_id: UUID
    professor_id: UUID
    topic: str
    status: str
    created_at: datetime
    start_time: datetime
    end_time: datetime
    cancelled_by: UUID | None
    cancel_reason: str


class Page(msgspec.Struct):
    total: int
    limit: int
    offset: int


class SlotPage(Page):
    items: list[SlotOut]


class BookingPage(Page):
    items: list[BookingOut]


class NoteIn(PartialUpdate):
    """Professor: professor_notes. Student (after completion): rating 1..5, student_feedback, feedback_signed."""

    professor_notes: str | msgspec.UnsetType = msgspec.UNSET
    student_feedback: str | msgspec.UnsetType = msgspec.UNSET
    rating: int | msgspec.UnsetType = msgspec.UNSET
    feedback_signed: bool | msgspec.UnsetType = msgspec.UNSET


class NoteOut(msgspec.Struct):
    """Each party sees its own side: professor_notes only for the professor; feedback only for the student."""

    booking_id: UUID
    professor_notes: str | None
    student_feedback: str | None
    rating: int | None
    feedback_signed: bool | None
    editable_until: datetime | None


class WaitlistOut(msgspec.Struct):
    id: UUID
    slot_id: UUID | None
    student_id: UUID
    professor_id: UUID
    position: int | None
    status: str
    window_start: datetime
    window_end: datetime
    offered_slot_id: UUID | None
    hold_expires_at: datetime | None


class WaitlistPage(Page):
    items: list[WaitlistOut]


class WindowIn(msgspec.Struct, forbid_unknown_fields=True):
    """Wait for any free slot of a professor between start and end (at most two weeks)."""

    start: datetime
    end: datetime
