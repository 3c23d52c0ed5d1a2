"""The consultations' web forms: only these fields are ever read from a submission."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec

from app.lib.errors import FieldErrors
from app.lib.i18n import gettext as _


class TopicForm(msgspec.Struct):
    topic: str = ""


class ReasonForm(msgspec.Struct):
    reason: str = ""


class RescheduleForm(msgspec.Struct):
    """Move a booking: the free slot chosen (its id; the service decides whether it can be taken)."""

    slot_id: str = ""

    def target(self) -> UUID:
        try:
            return UUID(self.slot_id)
        except ValueError as exc:
            raise FieldErrors.single("slot_id", _("Choose one of the free times listed.")) from exc


class NotesForm(msgspec.Struct):
    """The professor's private notes on a booking."""

    professor_notes: str = ""


class AcceptForm(msgspec.Struct):
    """The e-mailed waitlist link's one button: the offer's single-use token."""

    t: str = ""


class FeedbackForm(msgspec.Struct):
    rating: int | None = None
    student_feedback: str = ""
    feedback_signed: bool = False


class SlotForm(msgspec.Struct):
    """One slot on the dashboard: a local date and times in the professor's zone."""

    date: str = ""
    start: str = ""
    end: str = ""
    capacity: int = 1
    location: str = ""
    meeting_url: str = ""
    title: str = ""
    notes: str = ""
    course_ids: list[UUID] = msgspec.field(default_factory=list)

    def values(self, timezone: str) -> dict[str, Any]:
        """The slot service's values; a date or time that does not parse is a FieldErrors."""
        errors: dict[str, str] = {}
        times: dict[str, datetime] = {}
        for name, clock in (("start", self.start), ("end", self.end)):
            try:
                times[name] = datetime.fromisoformat(f"{self.date}T{clock}").replace(tzinfo=ZoneInfo(timezone))
            except ValueError:
                errors[name] = _("Enter a valid date and time.")
        if errors:
            raise FieldErrors(errors)
        return {
            "start_time": times["start"],
            "end_time": times["end"],
            "capacity": self.capacity,
            "location": self.location,
            "meeting_url": self.meeting_url,
            "title": self.title,
            "notes": self.notes,
            "course_ids": self.course_ids,
        }


# The service names the times start_time/end_time; this form calls them start/end.
SLOT_FORM_NAMES = {"start_time": "start", "end_time": "end"}


def slot_form_errors(errors: dict[str, str]) -> dict[str, str]:
    return {SLOT_FORM_NAMES.get(name, name): message for name, message in errors.items()}
