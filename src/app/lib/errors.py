"""Domain errors raised by services; the web and API layers turn them into responses."""

from __future__ import annotations

from advanced_alchemy.exceptions import IntegrityError as RepositoryIntegrityError
from sqlalchemy.exc import IntegrityError as DatabaseIntegrityError

# A constraint violation surfaces raw from a commit and wrapped by advanced-alchemy from a repository call.
INTEGRITY_ERRORS = (DatabaseIntegrityError, RepositoryIntegrityError)


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FieldErrors(DomainError):
    """Bad input: one message per named field; nothing was written."""

    status_code = 422

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
    "meeting_url": "Meeting link",
    "start_time": "Start",
    "end_time": "End",
    "day_start": "Daily from",
    "day_end": "Daily until",
    "duration_minutes": "Minutes per slot",
    "buffer_minutes": "Break between slots",
    "capacity": "Places",
    "user_type": "Account type",
    "second_reminder_minutes": "Second reminder",
    "professor_notes": "Private notes",
    "student_feedback": "Feedback",
}


def field_label(field: str) -> str:
    return FIELD_LABELS.get(field, field.replace("_", " ").capitalize())


class ConflictError(DomainError):
    """The request is well formed but the current state forbids it (full slot, bad transition...)."""

    status_code = 409


class Forbidden(DomainError):
    """The object is visible to this person, but the action is not theirs to take."""

    status_code = 403


class NotFound(DomainError):
    """Missing, or someone else's: both read the same so ids cannot be probed."""

    status_code = 404


class TooManyAttempts(DomainError):
    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthenticationFailed(DomainError):
    status_code = 401
