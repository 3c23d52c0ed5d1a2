"""What consultations announce: the messages people get (by kind) and the booking-changed signal."""

from __future__ import annotations

import enum
from uuid import UUID

from app.lib.i18n import N_, gettext
from app.lib.unit_of_work import AfterCommitSignal


class NotificationKind(enum.StrEnum):
    BOOKING_REQUESTED = "booking_requested"  # to the professor
    BOOKING_RECEIVED = "booking_received"  # to the student: their request was sent, the professor will answer
    BOOKING_CONFIRMED = "booking_confirmed"  # to the student
    BOOKING_DECLINED = "booking_declined"  # to the student: the professor cancelled a pending request
    BOOKING_CANCELLED = "booking_cancelled"  # to the other party
    SLOT_CANCELLED = "slot_cancelled"  # to each booked student
    BOOKING_MOVED = "booking_moved"  # to the student: the professor changed the slot's time or place
    BOOKING_RESCHEDULED = "booking_rescheduled"  # to the professor: the student moved to another of their slots
    REMINDER = "reminder"  # to both, before the start
    WAITLIST_OFFER = "waitlist_offer"  # to the student: a place is held for them
    WAITLIST_BOOKED = "waitlist_booked"  # to the student: booked straight from the waitlist


KIND_LABELS = {
    NotificationKind.BOOKING_REQUESTED: N_("Booking request"),
    NotificationKind.BOOKING_RECEIVED: N_("Request received"),
    NotificationKind.BOOKING_CONFIRMED: N_("Confirmation"),
    NotificationKind.BOOKING_DECLINED: N_("Declined request"),
    NotificationKind.BOOKING_CANCELLED: N_("Cancellation"),
    NotificationKind.SLOT_CANCELLED: N_("Slot cancelled"),
    NotificationKind.BOOKING_MOVED: N_("Changed time or place"),
    NotificationKind.BOOKING_RESCHEDULED: N_("Moved booking"),
    NotificationKind.REMINDER: N_("Reminder"),
    NotificationKind.WAITLIST_OFFER: N_("Waitlist offer"),
    NotificationKind.WAITLIST_BOOKED: N_("Booked from the waitlist"),
}


def kind_label(kind: str) -> str:
    """What a message about a booking is, in a few words of the reader's language."""
    label = KIND_LABELS.get(kind)  # type: ignore[call-overload]
    return gettext(label) if label else kind.replace("_", " ")


# A booking became confirmed, moved, or stopped being active: what mirrors bookings elsewhere (Google Calendar)
# follows once the change commits. Carries the booking's id.
booking_changed: AfterCommitSignal[UUID] = AfterCommitSignal("booking changed")
