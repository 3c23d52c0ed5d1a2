"""Retention: one idempotent sweep (a daily cron job, and `app retention run`) that

- pseudonymises bookings that ended more than RETENTION_MONTHS ago, with their notes, and waitlist entries older
  than that: they move to a pseudonymous account of their own per person (so the professors' statistics still
  count distinct students) and lose what the student wrote (topic, reasons, feedback text; a rating stays);
- deletes sent, failed and skipped notifications older than NOTIFICATION_RETENTION_DAYS;
- purges expired web sessions, API tokens, LMS launch tokens, data exports and old sign-in failure records.

Running it twice changes nothing the second time; it reports what it did (a log line, the command's output, an
audit entry).
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Delete, delete, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import ApiToken, AuthFailure, User, UserSession, UserType
from app.domain.audit.services import AuditAction, AuditService
from app.domain.calendar.models import CalendarEvent
from app.domain.consultations.models import Booking, WaitlistEntry, WaitlistStatus
from app.domain.lti.models import LtiLaunchToken
from app.domain.notifications.models import Notification, NotificationStatus
from app.domain.privacy.erasure import new_pseudonymous_account, scrub_bookings
from app.domain.privacy.export import ExportService
from app.lib.clock import utcnow

logger = logging.getLogger(__name__)
CLOSED_WAITLIST = (WaitlistStatus.ACCEPTED.value, WaitlistStatus.EXPIRED.value, WaitlistStatus.LEFT.value)
DONE_NOTIFICATIONS = (NotificationStatus.SENT.value, NotificationStatus.FAILED.value, NotificationStatus.SKIPPED.value)
# Sign-in failures count for a quarter of an hour; a day later they only name who typed what.
AUTH_FAILURE_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class RetentionReport:
    bookings_pseudonymised: int = 0
    waitlist_entries_pseudonymised: int = 0
    notifications_deleted: int = 0
    sessions_deleted: int = 0
    tokens_deleted: int = 0
    launch_tokens_deleted: int = 0
    exports_deleted: int = 0
    sign_in_failures_deleted: int = 0

    @property
    def total(self) -> int:
        return sum(asdict(self).values())

    def summary(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in asdict(self).items())


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the month's last day when it has fewer days)."""
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


class Retention:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    async def run(self, *, ip: str = "job") -> RetentionReport:
        now = utcnow()
        bookings, entries = (0, 0)
        if self.settings.retention_months > 0:
            bookings, entries = await self._pseudonymise_before(months_before(now, self.settings.retention_months))
        report = RetentionReport(
            bookings_pseudonymised=bookings,
            waitlist_entries_pseudonymised=entries,
            notifications_deleted=await self._old_notifications(now),
            sessions_deleted=await self._count(delete(UserSession).where(UserSession.expires_at <= now)),
            tokens_deleted=await self._count(delete(ApiToken).where(ApiToken.expires_at <= now)),
            launch_tokens_deleted=await self._count(delete(LtiLaunchToken).where(LtiLaunchToken.expires_at <= now)),
            exports_deleted=await ExportService(self.session, self.settings).delete_expired(),
            sign_in_failures_deleted=await self._count(
                delete(AuthFailure).where(AuthFailure.created_at <= now - self._failures_kept())
            ),
        )
        if report.total:
            await AuditService(self.session).record(None, AuditAction.RETENTION_RUN, None, asdict(report), ip)
        logger.info("retention run: %s", report.summary())
        return report

    def _failures_kept(self) -> timedelta:
        return max(AUTH_FAILURE_KEPT, timedelta(seconds=self.settings.login_failure_window_seconds))

    async def _count(self, statement: Delete) -> int:
        rows: Sequence[Any] = (await self.session.execute(statement.returning(literal_column("1")))).all()
        return len(rows)

    async def _old_notifications(self, now: datetime) -> int:
        if self.settings.notification_retention_days <= 0:
            return 0
        cutoff = now - timedelta(days=self.settings.notification_retention_days)
        return await self._count(
            delete(Notification).where(Notification.status.in_(DONE_NOTIFICATIONS), Notification.created_at <= cutoff)
        )

    async def _pseudonymise_before(self, cutoff: datetime) -> tuple[int, int]:
        """Old bookings and closed waitlist entries of people not erased move to a pseudonymous account per person."""
        live_people = select(User.id).where(User.erased_at.is_(None))
        old_bookings = (
            await self.session.execute(
                select(Booking.id, Booking.student_id).where(
                    Booking.end_time < cutoff, Booking.student_id.in_(live_people)
                )
            )
        ).all()
        old_entries = (
            await self.session.execute(
                select(WaitlistEntry.id, WaitlistEntry.student_id).where(
                    WaitlistEntry.window_end < cutoff,
                    WaitlistEntry.status.in_(CLOSED_WAITLIST),
                    WaitlistEntry.student_id.in_(live_people),
                )
            )
        ).all()
        people = {row.student_id for row in old_bookings} | {row.student_id for row in old_entries}
        stand_ins: dict[UUID, UUID] = {}
        for person in people:
            stand_ins[person] = (await new_pseudonymous_account(self.session, UserType.STUDENT.value, self.settings)).id
        booking_ids = [row.id for row in old_bookings]
        await scrub_bookings(self.session, booking_ids)
        for person, stand_in in stand_ins.items():
            own = [row.id for row in old_bookings if row.student_id == person]
            if own:
                # What still links the person to these bookings goes: calendar mirrors and messages about them.
                await self.session.execute(
                    delete(CalendarEvent).where(CalendarEvent.booking_id.in_(own), CalendarEvent.user_id == person)
                )
                await self.session.execute(
                    delete(Notification).where(Notification.booking_id.in_(own), Notification.user_id == person)
                )
                await self.session.execute(
                    update(Booking)
                    .where(Booking.id.in_(own))
                    .values(student_id=stand_in)
                    .execution_options(synchronize_session=False)
                )
                await self.session.execute(
                    update(Booking)
                    .where(Booking.id.in_(own), Booking.cancelled_by == person)
                    .values(cancelled_by=stand_in)
                    .execution_options(synchronize_session=False)
                )
            entries = [row.id for row in old_entries if row.student_id == person]
            if entries:
                await self.session.execute(
                    update(WaitlistEntry)
                    .where(WaitlistEntry.id.in_(entries))
                    .values(student_id=stand_in)
                    .execution_options(synchronize_session=False)
                )
        return len(booking_ids), len(old_entries)
