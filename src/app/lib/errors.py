"""Domain errors raised by services; the web and API layers turn them into responses."""

from __future__ import annotations

from advanced_alchemy.exceptions import IntegrityError as RepositoryIntegrityError
from sqlalchemy.exc import IntegrityError as DatabaseIntegrityError

from app.lib.i18n import N_, gettext

# A constraint violation surfaces raw from a commit and wrapped by advanced-alchemy from a repository call.
INTEGRITY_ERRORS = (DatabaseIntegrityError, RepositoryIntegrityError)


class DomainError(Exception):
    """`message` is for people, in the language of the request (the API's is English); `code` is for programs: it
    stays the same whatever the wording."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class FieldErrors(DomainError):
    """Bad input: one message per named field; nothing was written."""

    status_code = 422
    code = "invalid_fields"

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))

    @classmethod
    def single(cls, field: str, message: str) -> FieldErrors:
        return cls({field: message})

    def in_words(self) -> str:
        """The messages led by each field's name as a person reads it ("Meeting link: ...", not "meeting_url")."""
        return " ".join(f"{field_label(field)}: {message}" for field, message in self.errors.items())


# Field names whose words are not just the name with spaces.
FIELD_LABELS = {
    "meeting_url": N_("Meeting link"),
    "start_time": N_("Start"),
    "end_time": N_("End"),
    "start": N_("Start"),
    "end": N_("End"),
    "date": N_("Date"),
    "start_date": N_("From"),
    "end_date": N_("Until"),
    "weekdays": N_("Weekdays"),
    "day_start": N_("Daily from"),
    "day_end": N_("Daily until"),
    "duration_minutes": N_("Minutes per slot"),
    "buffer_minutes": N_("Break between slots"),
    "capacity": N_("Places"),
    "location": N_("Location"),
    "user_type": N_("Account type"),
    "username": N_("Username"),
    "password": N_("Password"),
    "current_password": N_("Current password"),
    "new_password": N_("New password"),
    "email": N_("Email"),
    "first_name": N_("First name"),
    "last_name": N_("Last name"),
    "phone_number": N_("Phone"),
    "timezone": N_("Time zone"),
    "locale": N_("Language"),
    "department": N_("Department"),
    "bio": N_("About you"),
    "profile_picture": N_("Picture"),
    "second_reminder_minutes": N_("Second reminder"),
    "booking_notice_hours": N_("Booking notice"),
    "cancellation_notice_hours": N_("Cancellation notice"),
    "max_active_bookings_per_student": N_("Upcoming bookings per student"),
    "waitlist_hold_minutes": N_("Waitlist hold"),
    "topic": N_("Topic"),
    "reason": N_("Reason"),
    "rating": N_("Rating"),
    "slot_id": N_("New time"),
    "name": N_("Name"),
    "expires_in_days": N_("Valid for"),
    "professor_notes": N_("Private notes"),
    "student_feedback": N_("Feedback"),
}


def field_label(field: str) -> str:
    label = FIELD_LABELS.get(field)
    return gettext(label) if label else field.replace("_", " ").capitalize()


class ConflictError(DomainError):
    """The request is well formed but the current state forbids it (full slot, bad transition...)."""

    status_code = 409
    code = "conflict"


class Forbidden(DomainError):
    """The object is visible to this person, but the action is not theirs to take."""

    status_code = 403
    code = "forbidden"


class NotFound(DomainError):
    """Missing, or someone else's: both read the same so ids cannot be probed."""

    status_code = 404
    code = "not_found"


class TooManyAttempts(DomainError):
    status_code = 429
    code = "too_many_attempts"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthenticationFailed(DomainError):
    status_code = 401
    code = "not_signed_in"
