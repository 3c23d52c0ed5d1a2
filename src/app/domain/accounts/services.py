"""Account rules: registration, profiles and pictures, linking Google; sign-in lives in throttle.py."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import available_timezones

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import ModelDictT, SQLAlchemyAsyncRepositoryService, is_dict
from sqlalchemy import func, select

from app.config import Settings, get_settings
from app.domain.accounts.models import Profile, User, UserType, new_feed_token
from app.domain.accounts.schemas import GoogleIdentity
from app.domain.accounts.tokens import ApiTokenService
from app.domain.accounts.verification import send_verification
from app.lib.clock import utcnow
from app.lib.errors import INTEGRITY_ERRORS, ConflictError, FieldErrors, NotFound
from app.lib.i18n import SUPPORTED_LOCALES, current_locale
from app.lib.i18n import gettext as _
from app.lib.images import PictureRejected, clean_picture
from app.lib.security import hash_password, verify_password
from app.lib.text import control_character_problem
from app.lib.unit_of_work import after_commit, savepoint

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@+-]{3,150}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 10
COMMON_PASSWORDS = frozenset(
    {"password123", "1234567890", "qwertyuiop", "password1234", "iloveyou12", "letmein123", "0123456789"}
)
TIMEZONES = frozenset(available_timezones())

USER_FIELDS = ("email", "first_name", "last_name", "phone_number", "timezone", "locale")
PROFILE_FIELDS = (
    "second_reminder_minutes",
    "department",
    "bio",
    "auto_confirm",
    "booking_notice_hours",
    "cancellation_notice_hours",
    "max_active_bookings_per_student",
    "waitlist_hold_minutes",
    "waitlist_auto_book",
    "students_may_reschedule",
)
# What registration may write; anything else a caller passes (is_admin, google_sub, profile_picture...) is dropped.
REGISTRATION_FIELDS = frozenset({"username", "password", "user_type", *USER_FIELDS, *PROFILE_FIELDS})
TEXT_LIMITS = {"first_name": 150, "last_name": 150, "phone_number": 32, "department": 200, "bio": 5000}
HOUR_LIMITS = {"booking_notice_hours": (0, 720), "cancellation_notice_hours": (0, 720)}
HOLD_MINUTES = (5, 2880)


def password_problem(password: str, username: str = "") -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return _("Use at least %(count)s characters.", count=MIN_PASSWORD_LENGTH)
    if password.lower() in COMMON_PASSWORDS or len(set(password)) < 4:
        return _("This password is too easy to guess.")
    if username and username.lower() in password.lower():
        return _("The password must not contain the username.")
    return None


def account_field_problems(changes: dict[str, Any]) -> dict[str, str]:
    """Check the editable user and profile fields present in `changes`; one message per bad field."""
    errors: dict[str, str] = {}
    if "email" in changes and not EMAIL_PATTERN.match(str(changes["email"]).strip()):
        errors["email"] = _("Enter a valid email address.")
    if "locale" in changes and changes["locale"] not in SUPPORTED_LOCALES:
        errors["locale"] = _("Choose English or Deutsch.")
    if "timezone" in changes and changes["timezone"] not in TIMEZONES:
        errors["timezone"] = _("Pick a time zone from the list (an IANA name such as Europe/Berlin).")
    for field, limit in TEXT_LIMITS.items():
        if field in changes and len(str(changes[field])) > limit:
            errors[field] = _("Use at most %(limit)s characters.", limit=limit)
    for field in (*TEXT_LIMITS, "username", "email"):
        if problem := control_character_problem(changes.get(field), multiline=field == "bio"):
            errors[field] = problem
    for field, (low, high) in HOUR_LIMITS.items():
        if field in changes and not low <= int(changes[field]) <= high:
            errors[field] = _("Enter a number of hours from %(low)s to %(high)s.", low=low, high=high)
    reminder = changes.get("second_reminder_minutes")
    if reminder is not None and (not isinstance(reminder, int) or not 5 <= reminder <= 10080):
        errors["second_reminder_minutes"] = _("Choose from 5 minutes to 7 days before, or none.")
    if (
        "waitlist_hold_minutes" in changes
        and not HOLD_MINUTES[0] <= int(changes["waitlist_hold_minutes"]) <= HOLD_MINUTES[1]
    ):
        errors["waitlist_hold_minutes"] = _("Hold a freed place from 5 minutes to 2 days (2880 minutes).")
    if "max_active_bookings_per_student" in changes and not 1 <= int(changes["max_active_bookings_per_student"]) <= 50:
        errors["max_active_bookings_per_student"] = _("Enter a number from 1 to 50.")
    return errors


class UserService(SQLAlchemyAsyncRepositoryService[User]):
    class Repository(SQLAlchemyAsyncRepository[User]):
        model_type = User

    repository_type = Repository

    async def to_model_on_create(self, data: ModelDictT[User]) -> ModelDictT[User]:
        if is_dict(data):
            data = dict(data)
            data["email"] = data["email"].strip()
            data.setdefault("timezone", get_settings().default_timezone)
            data.setdefault("locale", current_locale())  # the language the person registered in
            profile_fields = {f: data.pop(f) for f in (*PROFILE_FIELDS, "profile_picture") if f in data}
            data["profile"] = Profile(**profile_fields)
        return data

    async def find_by_login(self, login: str) -> User | None:
        """A user by username or email, whatever the case."""
        key = login.strip().lower()
        user: User | None = await self.repository.get_one_or_none(
            (func.lower(User.username) == key) | (func.lower(User.email) == key)
        )
        return user

    async def search_professors(self, query: str = "", limit: int = 50, offset: int = 0) -> tuple[list[User], int]:
        """Active professors whose name, username or department contains every word of `query`."""
        filters = [User.user_type == UserType.PROFESSOR.value, User.is_active.is_(True)]
        for word in query.split()[:5]:
            pattern = f"%{word.replace('%', '').replace('_', '')}%"
            filters.append(
                User.first_name.ilike(pattern)
                | User.last_name.ilike(pattern)
                | User.username.ilike(pattern)
                | User.profile.has(Profile.department.ilike(pattern))
            )
        statement = select(User).where(*filters).order_by(User.last_name, User.first_name, User.username)
        total = await self.repository.session.scalar(select(func.count()).select_from(User).where(*filters))
        rows = (await self.repository.session.scalars(statement.limit(limit).offset(offset))).unique().all()
        return list(rows), int(total or 0)

    async def register(self, data: dict[str, Any], *, by_admin: bool = False) -> User:
        """Create a user and their profile, or raise FieldErrors naming every bad field.

        `by_admin`: an administrator (the CLI, the demo data) may create professors whatever the email domain, and
        the address counts as verified; anyone else is mailed a link to verify it.
        """
        data = {
            key: value
            for key, value in data.items()
            if key in REGISTRATION_FIELDS and not (key in ("timezone", "locale") and not value)
        }
        errors = account_field_problems(data)
        username = str(data.get("username", "")).strip()
        if problem := password_problem(str(data.get("password", "")), username):
            errors["password"] = problem
        else:
            # Hashed before the first query, so no pooled connection waits on it (a taken name costs the same time).
            data["password_hash"] = await hash_password(str(data.pop("password")))
        if not USERNAME_PATTERN.match(username):
            errors["username"] = _("Use 3 to 150 letters, digits or . _ @ + -")
        elif await self.repository.exists(func.lower(User.username) == username.lower()):
            errors["username"] = _("This username is taken.")
        if "email" not in errors and await self.repository.exists(
            func.lower(User.email) == str(data["email"]).strip().lower()
        ):
            errors["email"] = _("An account with this email exists already.")
        if data.get("user_type") not in (UserType.PROFESSOR, UserType.STUDENT):
            errors["user_type"] = _("Choose professor or student.")
        elif (
            not by_admin
            and data.get("user_type") == UserType.PROFESSOR
            and not may_self_register_as_professor(str(data.get("email", "")), get_settings())
        ):
            errors["user_type"] = _("Professor accounts are granted by an administrator; register as a student.")
        if errors:
            raise FieldErrors(errors)
        data = {**data, "username": username}
        try:
            async with savepoint(self.repository.session):
                user = await self.create(data)
        except INTEGRITY_ERRORS as exc:  # a concurrent registration took the name first
            raise FieldErrors({"username": _("This username or email is taken.")}) from exc
        if by_admin:
            user.email_verified_at = utcnow()
        else:
            await send_verification(self.repository.session, user)
        return user

    async def update_account(self, user_id: UUID, changes: dict[str, Any]) -> User:
        user = await self.get(user_id)
        if errors := account_field_problems(changes):
            raise FieldErrors(errors)
        new_address = False
        if "email" in changes:
            email = str(changes["email"]).strip()
            taken = await self.repository.exists(func.lower(User.email) == email.lower(), User.id != user.id)
            if taken:
                raise FieldErrors.single("email", _("An account with this email exists already."))
            changes = {**changes, "email": email}
            new_address = email.lower() != user.email.lower()
        for field in USER_FIELDS:
            if field in changes:
                setattr(user, field, changes[field])
        for field in PROFILE_FIELDS:
            if field in changes:
                setattr(user.profile, field, changes[field])
        try:
            async with savepoint(self.repository.session):
                await self.repository.session.flush()
        except INTEGRITY_ERRORS as exc:  # a concurrent change took the address first
            raise FieldErrors.single("email", _("An account with this email exists already.")) from exc
        if new_address:
            user.email_verified_at = None
            await send_verification(self.repository.session, user)
        return user

    async def verify_email(self, user_id: UUID, email: str) -> User | None:
        """Mark the address proven if the link names the address the account has now, unproven; None: the link
        is used up (the address is verified already, or was changed since)."""
        user: User | None = await self.repository.get_one_or_none(User.id == user_id, User.is_active.is_(True))
        if user is None or user.email.lower() != email.lower() or user.email_verified_at is not None:
            return None
        user.email_verified_at = utcnow()
        return user

    async def resend_verification(self, user_id: UUID) -> User:
        user = await self.get(user_id)
        if user.email_verified_at is None:
            await send_verification(self.repository.session, user)
        return user

    async def grant_professor(self, login: str) -> User:
        """An administrator makes an existing account a professor."""
        user = await self.find_by_login(login)
        if user is None:
            raise NotFound(_("No account %(login)r.", login=login))
        user.user_type = UserType.PROFESSOR.value
        return user

    async def find_by_google(self, sub: str) -> User | None:
        user: User | None = await self.repository.get_one_or_none(User.google_sub == sub, User.is_active.is_(True))
        return user

    async def register_google(self, identity: GoogleIdentity, user_type: str) -> User:
        """A new account from a verified Google identity: no password; the username comes from the email."""
        if user_type not in (UserType.PROFESSOR, UserType.STUDENT):
            raise FieldErrors.single("user_type", _("Choose professor or student."))
        if await self.repository.exists(func.lower(User.email) == identity.email.lower()):
            raise ConflictError(_("An account with this email exists; sign in with its password to link Google."))
        base = re.sub(r"[^A-Za-z0-9_.-]", "", identity.email.split("@")[0])[:140] or "user"
        username, suffix = base if len(base) >= 3 else f"{base}_g", 1
        while await self.repository.exists(func.lower(User.username) == username.lower()):
            suffix += 1
            username = f"{base}{suffix}"
        try:
            async with savepoint(self.repository.session):
                return await self.create(
                    {
                        "username": username,
                        "email": identity.email,
                        "user_type": user_type,
                        "google_sub": identity.sub,
                        "first_name": identity.first_name[:150],
                        "last_name": identity.last_name[:150],
                        "email_verified_at": utcnow(),  # Google vouches for it (email_verified)
                    },
                )
        except INTEGRITY_ERRORS as exc:
            raise ConflictError(_("This Google account is already linked to another account.")) from exc

    async def link_google(self, user_id: UUID, identity: GoogleIdentity) -> User:
        owner = await self.find_by_google(identity.sub)
        if owner is not None and owner.id != user_id:
            raise ConflictError(_("This Google account is already linked to another account."))
        user = await self.get(user_id)
        user.google_sub = identity.sub
        if user.email_verified_at is None and identity.email.lower() == user.email.lower():
            user.email_verified_at = utcnow()  # Google vouches for the same address
        try:
            async with savepoint(self.repository.session):
                await self.repository.session.flush()
        except INTEGRITY_ERRORS as exc:  # linked elsewhere meanwhile
            raise ConflictError(_("This Google account is already linked to another account.")) from exc
        return user

    async def unlink_google(self, user_id: UUID) -> None:
        user = await self.get(user_id)
        if user.password_hash is None:
            raise ConflictError(_("Set a password first: without Google you could not sign in any more."))
        user.google_sub = None

    async def regenerate_feed_token(self, user_id: UUID) -> str:
        """A new secret calendar link; the old one stops working at once."""
        user = await self.get(user_id)
        user.profile.ics_feed_token = new_feed_token()
        return user.profile.ics_feed_token

    async def change_password(self, user_id: UUID, current: str, new: str, keep_token: str | None = None) -> User:
        """A new password ends every other sign-in: see sign_out_everywhere."""
        user = await self.get(user_id)
        if user.password_hash is not None and not await verify_password(user.password_hash, current):
            raise FieldErrors.single("current_password", _("The current password is wrong."))
        if problem := password_problem(new, user.username):
            raise FieldErrors.single("new_password", problem)
        user.password_hash = await hash_password(new)
        return await self.sign_out_everywhere(user_id, keep_token)

    async def sign_out_everywhere(self, user_id: UUID, keep_token: str | None = None) -> User:
        """End every web session of the account (its session epoch rises; the caller signs its own browser in
        again) and revoke every API token but `keep_token` (the one making this request, if any)."""
        user = await self.get(user_id)
        user.session_epoch += 1
        await ApiTokenService(session=self.repository.session).revoke_all(user_id, keep=keep_token)
        return user

    async def set_profile_picture(self, user_id: UUID, content: bytes, settings: Settings) -> str:
        """Store an uploaded picture after checking its bytes (not its name); returns its URL path."""
        user = await self.get(user_id)
        if len(content) > settings.max_upload_bytes:
            raise FieldErrors.single(
                "profile_picture",
                _("The picture is larger than %(value)s MB.", value=settings.max_upload_bytes // (1024 * 1024)),
            )
        try:
            stored, extension = clean_picture(content)
        except PictureRejected as exc:
            raise FieldErrors.single("profile_picture", str(exc)) from exc
        settings.upload_dir.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex}.{extension}"
        (settings.upload_dir / name).write_bytes(stored)
        old = user.profile.profile_picture
        user.profile.profile_picture = f"/media/{name}"
        if old and old.startswith("/media/"):
            # The old file goes once the new picture is committed (a rolled-back change keeps it).
            after_commit(self.repository.session, delete_files, settings.upload_dir / Path(old).name)
        return user.profile.profile_picture


async def delete_files(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def may_self_register_as_professor(email: str, settings: Settings) -> bool:
    """Anyone in development; in production only emails of the PROFESSOR_SIGNUP_DOMAINS (else an admin grants it)."""
    if not settings.is_production:
        return True
    return email.rsplit("@", 1)[-1].lower() in settings.professor_signup_domains
