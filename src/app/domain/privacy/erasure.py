"""Erasure (GDPR Art. 17): "Delete my account" and `app users erase`.

In order: a professor with upcoming slots is refused (they cancel or hand them over first); the person's upcoming
bookings are cancelled with the usual notifications and their open waitlist places given up; the Google grant is
revoked at Google; then everything that names them goes: sessions, API tokens, exports, pictures, the calendar
link, LMS identities and roster rows, course memberships, the notifications sent to them, sign-in failure records.
The account row stays only as a pseudonymous id (username `former-…`, no address, no name, `erased_at` set) that
their past bookings (kept for the professors' statistics, shown as "Former student") and the audit log point to;
their topics, reasons and written feedback are removed, ratings kept without a name.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from uuid import UUID

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import ApiToken, AuthFailure, Profile, User, UserSession, new_feed_token
from app.domain.accounts.services import delete_files
from app.domain.audit.services import AuditAction, AuditService
from app.domain.calendar.models import CalendarEvent
from app.domain.consultations.bookings import BookingService
from app.domain.consultations.models import (
    ACTIVE,
    Booking,
    ConsultationNote,
    ConsultationSlot,
    CourseMember,
    WaitlistEntry,
    WaitlistStatus,
)
from app.domain.consultations.slots import upcoming_slot_count
from app.domain.consultations.waitlist import WaitlistService
from app.domain.google.grants import CalendarConnection
from app.domain.lti.models import LtiDeepLinkRequest, LtiIdentity, LtiLaunchToken, LtiRosterMember
from app.domain.notifications.models import Notification
from app.domain.privacy.models import DataExport
from app.lib.clock import utcnow
from app.lib.errors import ConflictError, NotFound
from app.lib.i18n import N_
from app.lib.i18n import gettext as _
from app.lib.unit_of_work import after_commit

ERASED_DOMAIN = "erased.invalid"
CANCEL_REASON = N_("The student's account was deleted.")


@dataclass(frozen=True)
class ErasureReport:
    bookings_cancelled: int
    waitlist_places_given_up: int
    bookings_pseudonymised: int
    notifications_deleted: int


def pseudonym() -> tuple[str, str]:
    """A username and address that say nothing about the person (and collide with nobody)."""
    tag = secrets.token_hex(8)
    return f"former-{tag}", f"former-{tag}@{ERASED_DOMAIN}"


async def new_pseudonymous_account(session: AsyncSession, user_type: str, settings: Settings) -> User:
    """An erased account of its own, to which old records are moved (retention): they stay apart from each other's
    but no longer lead to the person."""
    username, email = pseudonym()
    now = utcnow()
    account = User(
        username=username,
        email=email,
        user_type=user_type,
        timezone=settings.default_timezone,
        is_active=False,
        erased_at=now,
        profile=Profile(),
    )
    session.add(account)
    await session.flush()
    return account


async def scrub_bookings(session: AsyncSession, booking_ids: list[UUID]) -> None:
    """What a booking's student wrote goes: topic, reasons, written feedback (a rating stays, unsigned)."""
    if not booking_ids:
        return
    await session.execute(update(Booking).where(Booking.id.in_(booking_ids)).values(topic="", cancel_reason=""))
    await session.execute(
        update(ConsultationNote)
        .where(ConsultationNote.booking_id.in_(booking_ids))
        .values(student_feedback="", feedback_signed=False, professor_notes="")
    )


class Erasure:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    async def erase(self, user_id: UUID, *, actor: UUID | None, ip: str = "") -> ErasureReport:
        """Erase the account `user_id`, by itself (actor == user_id) or by an administrator (actor None: the CLI)."""
        user = await self.session.get(User, user_id)
        if user is None or user.is_erased:
            raise NotFound(_("No such account."))
        if user.is_professor and (slots := await upcoming_slot_count(self.session, user.id)):
            raise ConflictError(
                _(
                    "This professor still has %(count)s upcoming slot(s). Cancel them or hand them over to a "
                    "colleague first; then the account can be deleted.",
                    count=slots,
                )
            )
        cancelled = await self._cancel_upcoming(user)
        given_up = await self._leave_waitlists(user)
        await CalendarConnection(self.session, self.settings).disconnect(user.id)  # revoked at Google
        pseudonymised = await self._pseudonymise_history(user)
        deleted = await self._delete_personal_rows(user)
        await self._scrub_account(user)
        report = ErasureReport(cancelled, given_up, pseudonymised, deleted)
        # The log names the account only by its (now pseudonymous) id; the person's own address is not kept.
        await AuditService(self.session).record(
            actor, AuditAction.ERASED, user.id, asdict(report), "" if actor == user.id else ip
        )
        return report

    async def _cancel_upcoming(self, user: User) -> int:
        ids = list(
            await self.session.scalars(
                select(Booking.id).where(
                    Booking.student_id == user.id, Booking.status.in_(ACTIVE), Booking.end_time > utcnow()
                )
            )
        )
        bookings = BookingService(session=self.session)
        for booking_id in ids:
            await bookings.cancel(user, booking_id, _(CANCEL_REASON), closing_account=True)
        return len(ids)

    async def _leave_waitlists(self, user: User) -> int:
        entries = list(
            await self.session.scalars(
                select(WaitlistEntry).where(
                    WaitlistEntry.student_id == user.id,
                    WaitlistEntry.status.in_((WaitlistStatus.WAITING.value, WaitlistStatus.OFFERED.value)),
                )
            )
        )
        waitlist = WaitlistService(session=self.session)
        for entry in entries:
            if entry.status == WaitlistStatus.OFFERED.value:
                await waitlist.decline(user, entry.id)  # the held place passes on
            else:
                entry.status = WaitlistStatus.LEFT.value
        return len(entries)

    async def _pseudonymise_history(self, user: User) -> int:
        """Bookings stay (for the professors' statistics) under the pseudonymous id, without what the person wrote;
        a professor's own notes on their past consultations go too."""
        own = list(await self.session.scalars(select(Booking.id).where(Booking.student_id == user.id)))
        await scrub_bookings(self.session, own)
        on_my_slots = select(Booking.id).join(ConsultationSlot).where(ConsultationSlot.professor_id == user.id)
        await self.session.execute(
            update(ConsultationNote).where(ConsultationNote.booking_id.in_(on_my_slots)).values(professor_notes="")
        )
        return len(own)

    async def _delete_personal_rows(self, user: User) -> int:
        session = self.session
        subjects = select(LtiIdentity.subject).where(LtiIdentity.user_id == user.id)
        await session.execute(
            delete(LtiRosterMember).where(
                or_(LtiRosterMember.subject.in_(subjects), func.lower(LtiRosterMember.email) == user.email.lower())
            )
        )
        for model in (
            ApiToken,
            DataExport,
            CalendarEvent,
            LtiIdentity,
            LtiLaunchToken,
            LtiDeepLinkRequest,
            CourseMember,
        ):
            await session.execute(delete(model).where(model.user_id == user.id))  # type: ignore[attr-defined]
        notifications = await session.execute(
            delete(Notification).where(Notification.user_id == user.id).returning(Notification.id)
        )
        # Web sessions hold the account's id in their data (JSON bytes): every one of them ends.
        await session.execute(
            delete(UserSession).where(func.strpos(func.convert_from(UserSession.data, "UTF8"), str(user.id)) > 0)
        )
        keys = [f"account:{user.id}", f"account:{user.username}", f"account:{user.email}"]
        await session.execute(
            delete(AuthFailure).where(
                or_(
                    AuthFailure.key.in_(keys),
                    *(AuthFailure.key.startswith(f"pair:{key.removeprefix('account:')}:") for key in keys),
                )
            )
        )
        return len(notifications.all())

    async def _scrub_account(self, user: User) -> None:
        profile = user.profile
        picture = profile.profile_picture
        if picture and picture.startswith("/media/"):
            after_commit(self.session, delete_files, self.settings.upload_dir / Path(picture).name)
        username, email = pseudonym()
        user.username, user.email = username, email
        user.first_name = user.last_name = user.phone_number = ""
        user.password_hash = user.google_sub = None
        user.email_verified_at = None
        user.is_active = user.is_admin = False
        user.session_epoch += 1
        user.timezone = self.settings.default_timezone
        user.erased_at = utcnow()
        profile.department = profile.bio = profile.calendar_sync_error = ""
        profile.profile_picture = profile.google_calendar_token = None
        profile.calendar_sync_enabled = False
        profile.ics_feed_token = new_feed_token()  # the old calendar link stops working
        await self.session.flush()
