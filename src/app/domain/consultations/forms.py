"""The consultations' web forms: only these fields are ever read from a submission."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec

from app.lib.clock import clock_change_problem
from app.lib.errors import FieldErrors
from app.lib.i18n import N_
from app.lib.i18n import gettext as _

# A time on a clock-change day that names no instant, or two, is refused (the field named), never guessed: the
# professor picks a time on either side of the change. Weekly rules (rules.SlotRule) skip the missing times instead.
CLOCK_CHANGE_MESSAGES = {
    "skipped": N_(
        "This time does not exist on that day in %(zone)s: the clocks go forward over it. Choose another time."
    ),
    "repeated": N_("This time occurs twice on that day in %(zone)s: the clocks go back over it. Choose another time."),
}


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
                local = datetime.fromisoformat(f"{self.date}T{clock}")
            except ValueError:
                errors[name] = _("Enter a valid date and time.")
                continue
            problem = clock_change_problem(local, timezone)
            if problem is not None:
                errors[name] = _(CLOCK_CHANGE_MESSAGES[problem], zone=timezone)
            else:
                times[name] = local.replace(tzinfo=ZoneInfo(timezone))
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
