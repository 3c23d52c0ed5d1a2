"""Notes on a booking: the professor's private notes; the student's rating and feedback once it is completed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import func, select

from app.domain.accounts.models import User
from app.domain.consultations.bookings import BookingService
from app.domain.consultations.models import Booking, BookingStatus, ConsultationNote, ConsultationSlot
from app.domain.consultations.rules import FEEDBACK_EDIT_WINDOW, MIN_RATINGS_SHOWN
from app.lib.clock import utcnow
from app.lib.errors import ConflictError, FieldErrors
from app.lib.i18n import gettext as _


def rating_columns(professor_id: Any) -> tuple[Any, Any]:
    """The professor's average rating and number of raters, as two scalar subqueries (`professor_id` may be a value
    or a column to correlate with, so the figures can ride along another query)."""

    def over_ratings(figure: Any) -> Any:
        return (
            select(figure)
            .select_from(ConsultationNote)
            .join(Booking, ConsultationNote.booking_id == Booking.id)
            .join(ConsultationSlot, Booking.slot_id == ConsultationSlot.id)
            .where(ConsultationSlot.professor_id == professor_id, ConsultationNote.rating.is_not(None))
            .scalar_subquery()
        )

    return over_ratings(func.avg(ConsultationNote.rating)), over_ratings(func.count(func.distinct(Booking.student_id)))


def shown_rating(average: Any, raters: int | None) -> tuple[float, int] | None:
    """The rating as shown: (average, raters), or None below MIN_RATINGS_SHOWN raters."""
    if not raters or raters < MIN_RATINGS_SHOWN:
        return None
    return round(float(average), 1), int(raters)


@dataclass(frozen=True)
class NoteView:
    """A booking's note as one party may see it: private notes for the professor, feedback for the student."""

    booking: Booking
    note: ConsultationNote | None
    viewer_is_professor: bool

    @property
    def editable_until(self) -> datetime | None:
        if self.note is None or self.note.rated_at is None:
            return None
        return self.note.rated_at + FEEDBACK_EDIT_WINDOW


class NoteService(SQLAlchemyAsyncRepositoryService[ConsultationNote]):
    class Repository(SQLAlchemyAsyncRepository[ConsultationNote]):
        model_type = ConsultationNote

    repository_type = Repository

    async def view(self, user: User, booking_id: UUID) -> NoteView:
        booking = await BookingService(session=self.repository.session).get_visible(user, booking_id)
        note = await self.get_one_or_none(booking_id=booking.id)
        return NoteView(booking=booking, note=note, viewer_is_professor=booking.slot.professor_id == user.id)

    async def save(self, user: User, booking_id: UUID, changes: dict[str, Any]) -> NoteView:
        """The professor writes private notes; the student rates and comments once the consultation is completed."""
        current = await self.view(user, booking_id)
        booking, note = current.booking, current.note
        allowed = (
            {"professor_notes"} if current.viewer_is_professor else {"student_feedback", "rating", "feedback_signed"}
        )
        errors = {name: _("This field is not yours to change.") for name in changes if name not in allowed}
        if len(str(changes.get("professor_notes", ""))) > 10_000:
            errors["professor_notes"] = _("Use at most 10000 characters.")
        if len(str(changes.get("student_feedback", ""))) > 5000:
            errors["student_feedback"] = _("Use at most 5000 characters.")
        rating = changes.get("rating")
        if "rating" in changes and (not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5):
            errors["rating"] = _("Rate from 1 to 5.")
        if errors:
            raise FieldErrors(errors)
        if not current.viewer_is_professor:
            if booking.status != BookingStatus.COMPLETED:
                raise ConflictError(_("You can leave feedback once the consultation is marked completed."))
            if note is not None and note.rated_at is not None and utcnow() > note.rated_at + FEEDBACK_EDIT_WINDOW:
                raise ConflictError(_("Feedback can be changed for 7 days after it was given."))
            if (note is None or note.rating is None) and changes.get("rating") is None:
                raise FieldErrors.single("rating", _("Rate from 1 to 5."))
        if note is None:
            note = ConsultationNote(booking_id=booking.id)
            self.repository.session.add(note)
        for name, value in changes.items():
            setattr(note, name, value)
        if not current.viewer_is_professor and note.rated_at is None:
            note.rated_at = utcnow()
        await self.repository.session.flush()
        return NoteView(booking=booking, note=note, viewer_is_professor=current.viewer_is_professor)

    async def notes_for(self, booking_ids: Iterable[UUID]) -> dict[UUID, ConsultationNote]:
        ids = list(booking_ids)
        if not ids:
            return {}
        rows = await self.repository.session.scalars(
            select(ConsultationNote).where(ConsultationNote.booking_id.in_(ids))
        )
        return {note.booking_id: note for note in rows.all()}

    async def rating_summary(self, professor_id: UUID) -> tuple[float, int] | None:
        """Average rating and count, only once MIN_RATINGS_SHOWN students rated (no single score singled out)."""
        average, raters = (await self.repository.session.execute(select(*rating_columns(professor_id)))).one()
        return shown_rating(average, raters)

    async def feedback_for(self, professor_id: UUID, limit: int = 50) -> list[tuple[ConsultationNote, Booking]]:
        """Feedback on the professor's consultations, newest first (the template hides unsigned names)."""
        query = (
            select(ConsultationNote, Booking)
            .join(Booking, ConsultationNote.booking_id == Booking.id)
            .join(ConsultationSlot, Booking.slot_id == ConsultationSlot.id)
            .where(ConsultationSlot.professor_id == professor_id, ConsultationNote.rating.is_not(None))
            .order_by(ConsultationNote.rated_at.desc())
            .limit(limit)
        )
        return [(note, booking) for note, booking in (await self.repository.session.execute(query)).unique().all()]
