"""The accounts' web forms: only these fields are ever read from a submission."""

from __future__ import annotations

import msgspec

from app.lib.forms import Verbatim


class SignInForm(msgspec.Struct):
    username: str = ""
    password: Verbatim = ""
    next: str = ""


class RegisterForm(msgspec.Struct):
    username: str = ""
    email: str = ""
    password: Verbatim = ""
    user_type: str = ""
    first_name: str = ""
    last_name: str = ""
    timezone: str = ""


class ProfileForm(msgspec.Struct):
    """Everyone's fields, then the professor's booking rules (ignored for students)."""

    # A text field left out of the form is left as it is.
    first_name: str | msgspec.UnsetType = msgspec.UNSET
    last_name: str | msgspec.UnsetType = msgspec.UNSET
    email: str | msgspec.UnsetType = msgspec.UNSET
    phone_number: str | msgspec.UnsetType = msgspec.UNSET
    timezone: str | msgspec.UnsetType = msgspec.UNSET
    locale: str | msgspec.UnsetType = msgspec.UNSET
    department: str | msgspec.UnsetType = msgspec.UNSET
    bio: str | msgspec.UnsetType = msgspec.UNSET
    second_reminder_minutes: int | None = None
    auto_confirm: bool = False
    booking_notice_hours: int | None = None
    cancellation_notice_hours: int | None = None
    max_active_bookings_per_student: int | None = None
    waitlist_hold_minutes: int | None = None
    waitlist_auto_book: bool = False
    students_may_reschedule: bool = False

    def changes(self, *, professor: bool) -> dict[str, object]:
        shared = ("first_name", "last_name", "email", "phone_number", "timezone", "locale", "department", "bio")
        changes: dict[str, object] = {
            name: value for name in shared if (value := getattr(self, name)) is not msgspec.UNSET
        }
        changes["second_reminder_minutes"] = self.second_reminder_minutes
        if professor:
            changes["auto_confirm"] = self.auto_confirm
            changes["waitlist_auto_book"] = self.waitlist_auto_book
            changes["students_may_reschedule"] = self.students_may_reschedule
            for name in PROFESSOR_NUMBERS:
                changes[name] = getattr(self, name)
        return changes

    def missing_numbers(self) -> dict[str, str]:
        """A professor's booking rules are whole numbers that must be given."""
        return {name: "Enter a whole number." for name in PROFESSOR_NUMBERS if getattr(self, name) is None}


PROFESSOR_NUMBERS = (
    "booking_notice_hours",
    "cancellation_notice_hours",
    "max_active_bookings_per_student",
    "waitlist_hold_minutes",
)


class PasswordForm(msgspec.Struct):
    current_password: Verbatim = ""
    new_password: Verbatim = ""


class TokenForm(msgspec.Struct):
    name: str = ""
    expires_in_days: int = 30


class ReturnForm(msgspec.Struct):
    """A button that acts and comes back to the page it was pressed on."""

    next: str = ""


class LanguageForm(msgspec.Struct):
    locale: str = ""
    next: str = ""


class TimezoneForm(msgspec.Struct):
    timezone: str = ""
    next: str = ""


class UnlockForm(msgspec.Struct):
    t: str = ""
