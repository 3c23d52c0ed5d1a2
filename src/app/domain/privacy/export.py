""" "Download my data" (GDPR Art. 15/20): a queue job builds a ZIP of everything the person gave or was sent here.

The ZIP holds JSON files (account, profile, bookings, waitlist entries, the notes and ratings the person wrote,
their slots when they are a professor, the notifications sent to them) and `bookings.ics`. It is kept in the
database until its link expires (EXPORT_LINK_HOURS); the link is signed and names the person, so it is no use to
anyone else.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from icalendar import Calendar, Event
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import User
from app.domain.audit.services import AuditAction, AuditService
from app.domain.consultations.ics import booking_uid
from app.domain.consultations.models import Booking, ConsultationNote, ConsultationSlot, WaitlistEntry
from app.domain.notifications.models import Notification
from app.domain.privacy.models import DataExport, ExportStatus
from app.lib.clock import utcnow
from app.lib.errors import NotFound
from app.lib.queue import get_queue
from app.lib.signing import sign, verified
from app.lib.unit_of_work import after_commit

EXPORT_TASK = "build_data_export"
EXPORT_PURPOSE = "data-export"
# A job that has not finished after this long is taken as lost: asking again starts a new one.
PENDING_GIVES_UP = timedelta(minutes=30)
USER_FIELDS = (
    "id",
    "username",
    "email",
    "user_type",
    "first_name",
    "last_name",
    "phone_number",
    "timezone",
    "locale",
    "is_admin",
    "is_active",
    "email_verified_at",
    "created_at",
    "updated_at",
)
PROFILE_FIELDS = (
    "department",
    "bio",
    "profile_picture",
    "calendar_sync_enabled",
    "auto_confirm",
    "booking_notice_hours",
    "cancellation_notice_hours",
    "max_active_bookings_per_student",
    "second_reminder_minutes",
    "waitlist_hold_minutes",
    "waitlist_auto_book",
    "students_may_reschedule",
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, (date, UUID)):
        return str(value)
    return value


def _fields(row: Any, names: Iterable[str]) -> dict[str, Any]:
    return {name: _plain(getattr(row, name)) for name in names}


def _json(data: Any) -> bytes:
    return json.dumps(data, indent=2, ensure_ascii=False, default=_plain).encode()


async def queue_exports(export_ids: list[UUID]) -> None:
    queue = await get_queue()
    for export_id in export_ids:
        await queue.enqueue(EXPORT_TASK, key=f"export:{export_id}", export_id=str(export_id), timeout=600, retries=2)


def download_path(export: DataExport, settings: Settings) -> str:
    """The signed link to the ZIP; it works for its owner only, until the export expires."""
    assert export.expires_at is not None
    token = sign(EXPORT_PURPOSE, {"user": str(export.user_id), "export": str(export.id)}, export.expires_at, settings)
    return f"/settings/data/download?t={token}"


class ExportService:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    async def current(self, user_id: UUID) -> DataExport | None:
        """The person's newest export that is being built or still downloadable."""
        now = utcnow()
        query = (
            select(DataExport)
            .where(
                DataExport.user_id == user_id,
                or_(
                    (DataExport.status == ExportStatus.PENDING.value)
                    & (DataExport.created_at > now - PENDING_GIVES_UP),
                    (DataExport.status == ExportStatus.READY.value) & (DataExport.expires_at > now),
                ),
            )
            .order_by(DataExport.created_at.desc())
            .limit(1)
        )
        export: DataExport | None = await self.session.scalar(query)
        return export

    async def request(self, user: User, ip: str = "") -> DataExport:
        """The export being built or ready; otherwise a new one, built by a queue job once this commits."""
        existing = await self.current(user.id)
        if existing is not None:
            return existing
        export = DataExport(user_id=user.id, status=ExportStatus.PENDING.value)
        self.session.add(export)
        await self.session.flush()
        await AuditService(self.session).record(user.id, AuditAction.EXPORTED, user.id, {"export": str(export.id)}, ip)
        after_commit(self.session, queue_exports, export.id)
        return export

    async def build(self, export_id: UUID) -> int:
        """Build the ZIP of a pending export (the queue job); returns its size in bytes (0: nothing to do)."""
        export = await self.session.get(DataExport, export_id, with_for_update=True)
        if export is None or export.status != ExportStatus.PENDING.value:
            return 0
        user = await self.session.get(User, export.user_id)
        if user is None or user.is_erased:
            return 0
        content = await self.archive(user)
        export.content, export.size = content, len(content)
        export.status, export.ready_at = ExportStatus.READY.value, utcnow()
        export.expires_at = utcnow() + timedelta(hours=self.settings.export_link_hours)
        return len(content)

    async def download(self, user_id: UUID, token: str) -> bytes:
        """The ZIP behind a signed link, for its owner; anything else (someone else's, expired, forged) is 404."""
        payload = verified(EXPORT_PURPOSE, token, utcnow(), self.settings)
        if payload is None or payload.get("user") != str(user_id):
            raise NotFound("No such export.")
        return await self.content(user_id, UUID(str(payload["export"])))

    async def content(self, user_id: UUID, export_id: UUID) -> bytes:
        query = select(DataExport.content).where(
            DataExport.id == export_id,
            DataExport.user_id == user_id,
            DataExport.status == ExportStatus.READY.value,
            DataExport.expires_at > utcnow(),
        )
        content: bytes | None = await self.session.scalar(query)
        if content is None:
            raise NotFound("No such export.")
        return content

    async def delete_expired(self) -> int:
        """Ready exports past their link's expiry, and builds given up on (the retention job)."""
        now = utcnow()
        result = await self.session.execute(
            delete(DataExport)
            .where(
                or_(
                    DataExport.expires_at <= now,
                    (DataExport.status != ExportStatus.READY.value) & (DataExport.created_at <= now - PENDING_GIVES_UP),
                )
            )
            .returning(DataExport.id)
        )
        return len(result.all())

    async def archive(self, user: User) -> bytes:
        bookings = list(
            (
                await self.session.scalars(
                    select(Booking)
                    .join(ConsultationSlot, Booking.slot_id == ConsultationSlot.id)
                    .where(or_(Booking.student_id == user.id, ConsultationSlot.professor_id == user.id))
                    .order_by(Booking.start_time)
                )
            )
            .unique()
            .all()
        )
        own = [b for b in bookings if b.student_id == user.id]
        notes = {
            note.booking_id: note
            for note in await self.session.scalars(
                select(ConsultationNote).where(ConsultationNote.booking_id.in_([b.id for b in bookings]))
            )
        }
        files: dict[str, bytes] = {
            "account.json": _json(_fields(user, USER_FIELDS)),
            "profile.json": _json(_fields(user.profile, PROFILE_FIELDS)),
            "bookings.json": _json([self._booking(b, user) for b in own]),
            "notes_and_ratings.json": _json(self._notes(bookings, notes, user)),
            "waitlist.json": _json(await self._waitlist(user)),
            "notifications.json": _json(await self._notifications(user)),
            "bookings.ics": self._calendar(bookings, user),
        }
        if user.is_professor:
            files["slots.json"] = _json(await self._slots(user))
            files["bookings_on_my_slots.json"] = _json(
                [self._booking(b, user) for b in bookings if b.slot.professor_id == user.id]
            )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in files.items():
                archive.writestr(name, data)
        return buffer.getvalue()

    @staticmethod
    def _booking(booking: Booking, user: User) -> dict[str, Any]:
        slot = booking.slot
        row = _fields(
            booking,
            (
                "id",
                "slot_id",
                "status",
                "topic",
                "start_time",
                "end_time",
                "cancel_reason",
                "cancelled_at",
                "created_at",
            ),
        )
        row["cancelled_by_me"] = booking.cancelled_by == user.id
        row["professor"] = slot.professor.full_name
        row["location"] = slot.location
        row["meeting_url"] = slot.meeting_url
        row["title"] = slot.title
        if slot.professor_id == user.id:
            row["student"] = booking.student.full_name
        return row

    @staticmethod
    def _notes(bookings: list[Booking], notes: dict[UUID, ConsultationNote], user: User) -> list[dict[str, Any]]:
        """What this person wrote: a student's feedback and rating, a professor's notes on their consultations."""
        written = []
        for booking in bookings:
            note = notes.get(booking.id)
            if note is None:
                continue
            if booking.student_id == user.id and (note.student_feedback or note.rating is not None):
                written.append(
                    {
                        "booking_id": str(booking.id),
                        "student_feedback": note.student_feedback,
                        "rating": note.rating,
                        "feedback_signed": note.feedback_signed,
                        "rated_at": _plain(note.rated_at),
                    }
                )
            elif booking.slot.professor_id == user.id and note.professor_notes:
                written.append({"booking_id": str(booking.id), "professor_notes": note.professor_notes})
        return written

    async def _waitlist(self, user: User) -> list[dict[str, Any]]:
        rows = await self.session.scalars(
            select(WaitlistEntry).where(WaitlistEntry.student_id == user.id).order_by(WaitlistEntry.created_at)
        )
        fields = ("id", "professor_id", "slot_id", "window_start", "window_end", "status", "hold_expires_at")
        return [_fields(row, (*fields, "created_at")) for row in rows.unique()]

    async def _notifications(self, user: User) -> list[dict[str, Any]]:
        rows = await self.session.scalars(
            select(Notification).where(Notification.user_id == user.id).order_by(Notification.created_at)
        )
        fields = ("id", "kind", "booking_id", "status", "attempts", "sent_at", "created_at", "context")
        return [_fields(row, fields) for row in rows]

    async def _slots(self, user: User) -> list[dict[str, Any]]:
        rows = await self.session.scalars(
            select(ConsultationSlot)
            .where(ConsultationSlot.professor_id == user.id)
            .order_by(ConsultationSlot.start_time)
        )
        fields = ("id", "start_time", "end_time", "capacity", "location", "meeting_url", "title", "notes", "status")
        return [_fields(row, fields) for row in rows.unique()]

    def _calendar(self, bookings: list[Booking], user: User) -> bytes:
        calendar = Calendar()
        calendar.add("prodid", "-//Office hours//data export//EN")
        calendar.add("version", "2.0")
        for booking in bookings:
            slot = booking.slot
            other = booking.student if slot.professor_id == user.id else slot.professor
            event = Event()
            event.add("uid", booking_uid(booking))
            event.add("dtstamp", booking.updated_at.astimezone(UTC))
            event.add("dtstart", booking.start_time)
            event.add("dtend", booking.end_time)
            event.add("summary", f"Consultation with {other.full_name}")
            event.add("status", "CANCELLED" if booking.status in ("cancelled", "declined") else "CONFIRMED")
            if slot.location or slot.meeting_url:
                event.add("location", slot.location or slot.meeting_url)
            if booking.topic:
                event.add("description", booking.topic)
            calendar.add_component(event)
        data: bytes = calendar.to_ical()
        return data
