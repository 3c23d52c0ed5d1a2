"""A professor's slots: publish one, generate many from a rule, change, cancel; ended slots complete."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import ModelDictT, SQLAlchemyAsyncRepositoryService, is_dict
from sqlalchemy import BindParameter, ColumnElement, RowMapping, Select, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.accounts.models import User
from app.domain.accounts.verification import publishing_problem
from app.domain.consultations.capacity import booked_places, places_of, places_on, refresh_slot_status
from app.domain.consultations.courses import CourseService, open_to
from app.domain.consultations.events import NotificationKind, booking_changed
from app.domain.consultations.models import (
    ACTIVE,
    Booking,
    BookingStatus,
    ConsultationSlot,
    Course,
    SlotStatus,
    slot_course,
)
from app.domain.consultations.rules import (
    TEXT_FIELDS,
    BulkResult,
    SlotRule,
    capacity_problem,
    overlaps,
    text_problems,
    time_problems,
)
from app.domain.consultations.waitlist import place_freed
from app.domain.notifications.services import NotificationService
from app.lib.clock import utcnow
from app.lib.database import run_core
from app.lib.errors import INTEGRITY_ERRORS, ConflictError, FieldErrors, Forbidden, NotFound
from app.lib.formatting import describe_time
from app.lib.i18n import gettext as _
from app.lib.live import announce
from app.lib.unit_of_work import savepoint


def slot_filters(
    professor_id: UUID | BindParameter[Any] | None = None,
    start: datetime | BindParameter[Any] | None = None,
    end: datetime | BindParameter[Any] | None = None,
    status: str | BindParameter[Any] | None = None,
) -> list[ColumnElement[bool]]:
    """Slots of a professor that overlap [start, end), in a status (each a value, or a parameter of a statement that
    is built once: `listing_query`)."""
    filters: list[ColumnElement[bool]] = []
    if professor_id is not None:
        filters.append(ConsultationSlot.professor_id == professor_id)
    if start is not None:
        filters.append(ConsultationSlot.end_time > start)
    if end is not None:
        filters.append(ConsultationSlot.start_time < end)
    if status is not None:
        filters.append(ConsultationSlot.status == status)
    return filters


class SlotRow(NamedTuple):
    """A slot's columns, every one but the ORM's insert sentinel (a test holds them to the model's). Lists and the
    week grid read these, not slot objects: loading 25 objects was a fifth of a grid page's CPU, and a result row's
    attributes are looked up by key, ten times slower than a tuple's. Hashable as it is: every column is in a grid
    cell's appearance (grid.SlotCell)."""

    id: UUID
    professor_id: UUID
    start_time: datetime
    end_time: datetime
    capacity: int
    location: str
    meeting_url: str
    title: str
    notes: str
    status: str
    series_id: UUID | None
    created_at: datetime
    updated_at: datetime


SLOT_FIELDS = SlotRow._fields
SLOT_COLUMNS = [getattr(ConsultationSlot, key).label(key) for key in SLOT_FIELDS]


@lru_cache(maxsize=16)
def listing_query(filtered_by: tuple[str, ...]) -> Select[Any]:
    """The slot list filtered by the named `slot_filters` arguments, built once per combination and run with their
    values and `limit` and `offset` as parameters. Rows of the slot's columns, `booked_count` (active bookings),
    `course_ids` (the courses it is reserved for, by title) and `total` (all that match: a window count)."""
    course_ids = (
        select(func.array_agg(aggregate_order_by(Course.id, Course.title)))
        .select_from(slot_course.join(Course, Course.id == slot_course.c.course_id))
        .where(slot_course.c.slot_id == ConsultationSlot.id)
    )
    return (
        select(
            *SLOT_COLUMNS,
            booked_places(ConsultationSlot.id).label("booked_count"),
            course_ids.scalar_subquery().label("course_ids"),
            func.count().over().label("total"),
        )
        .where(*slot_filters(**{name: bindparam(name) for name in filtered_by}))
        .order_by(ConsultationSlot.start_time)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


def require_may_publish(professor: User) -> None:
    """A professor whose role came with an address not yet proven does not publish (see accounts/verification)."""
    if problem := publishing_problem(professor, get_settings()):
        raise Forbidden(problem)


class SlotService(SQLAlchemyAsyncRepositoryService[ConsultationSlot]):
    class Repository(SQLAlchemyAsyncRepository[ConsultationSlot]):
        model_type = ConsultationSlot

    repository_type = Repository

    async def to_model_on_create(self, data: ModelDictT[ConsultationSlot]) -> ModelDictT[ConsultationSlot]:
        if is_dict(data):
            data = {**data, "status": SlotStatus.AVAILABLE.value}
        return data

    # -- reading -------------------------------------------------------------------------------------

    async def find_slots(
        self, filters: Sequence[ColumnElement[bool]], *, limit: int = 100, offset: int = 0
    ) -> list[ConsultationSlot]:
        query = select(ConsultationSlot).where(*filters).order_by(ConsultationSlot.start_time)
        return list((await self.repository.session.scalars(query.limit(limit).offset(offset))).unique().all())

    async def list_page(
        self,
        *,
        professor_id: UUID | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[Sequence[RowMapping], int]:
        """A page of the slots that match, as `listing_query`'s rows (columns, not loaded objects: a list is read and
        shown, never changed), and the number of all that match, in one query (a page past the end counts
        separately)."""
        values = {"professor_id": professor_id, "start": start, "end": end, "status": status}
        given = {name: value for name, value in values.items() if value is not None}
        query = listing_query(tuple(given))
        rows = (await run_core(self.repository.session, query, {**given, "limit": limit, "offset": offset})).mappings()
        page = rows.all()
        if not page:
            return [], await self.count_slots(slot_filters(professor_id, start, end, status)) if offset else 0
        return page, int(page[0]["total"])

    async def count_slots(self, filters: Sequence[ColumnElement[bool]]) -> int:
        query = select(func.count()).select_from(ConsultationSlot).where(*filters)
        return int(await self.repository.session.scalar(query) or 0)

    async def get_owned(self, professor_id: UUID, slot_id: UUID, *, lock: bool = False) -> ConsultationSlot:
        """The professor's own slot, or NotFound (someone else's slot reads as missing)."""
        query = select(ConsultationSlot).where(
            ConsultationSlot.id == slot_id, ConsultationSlot.professor_id == professor_id
        )
        if lock:
            query = query.with_for_update(of=ConsultationSlot)
        slot: ConsultationSlot | None = (await self.repository.session.scalars(query)).unique().one_or_none()
        if slot is None:
            raise NotFound(_("Slot not found."))
        return slot

    async def find_clash(
        self, professor_id: UUID, start: datetime, end: datetime, exclude: UUID | None = None
    ) -> ConsultationSlot | None:
        query = select(ConsultationSlot).where(
            ConsultationSlot.professor_id == professor_id,
            ConsultationSlot.status != SlotStatus.CANCELLED.value,
            ConsultationSlot.start_time < end,
            ConsultationSlot.end_time > start,
        )
        if exclude is not None:
            query = query.where(ConsultationSlot.id != exclude)
        clash: ConsultationSlot | None = (await self.repository.session.scalars(query.limit(1))).unique().first()
        return clash

    async def next_free(self, after: ConsultationSlot, viewer: User) -> ConsultationSlot | None:
        """The professor's next slot after `after` with a free place the viewer could book (a way on from "full")."""
        notice = timedelta(hours=after.professor.profile.booking_notice_hours)
        query = (
            select(ConsultationSlot)
            .where(
                ConsultationSlot.professor_id == after.professor_id,
                ConsultationSlot.status == SlotStatus.AVAILABLE.value,
                ConsultationSlot.start_time > max(after.start_time, utcnow() + notice),
                open_to(viewer.id),
                ~ConsultationSlot.id.in_(
                    select(Booking.slot_id).where(Booking.student_id == viewer.id, Booking.status.in_(ACTIVE))
                ),
            )
            .order_by(ConsultationSlot.start_time)
            .limit(20)
        )
        candidates = list((await self.repository.session.scalars(query)).unique().all())
        places = await places_on(self.repository.session, [slot.id for slot in candidates])
        return next(
            (slot for slot in candidates if (places[slot.id].taken if slot.id in places else 0) < slot.capacity), None
        )

    async def active_bookings(self, slot_id: UUID) -> list[Booking]:
        query = select(Booking).where(Booking.slot_id == slot_id, Booking.status.in_(ACTIVE))
        return list((await self.repository.session.scalars(query)).unique().all())

    # -- writing -------------------------------------------------------------------------------------

    async def create_slot(self, professor: User, data: dict[str, Any]) -> ConsultationSlot:
        require_may_publish(professor)
        errors = time_problems(data.get("start_time"), data.get("end_time"), now=utcnow())
        errors |= text_problems(data)
        if problem := capacity_problem(data.get("capacity", 1)):
            errors["capacity"] = problem
        courses = await self._reservation(professor, data.get("course_ids", ()), errors)
        if errors:
            raise FieldErrors(errors)
        start, end = data["start_time"].astimezone(UTC), data["end_time"].astimezone(UTC)
        if clash := await self.find_clash(professor.id, start, end):
            raise ConflictError(clash_message(clash, professor.timezone))
        values = {name: data[name] for name in ("capacity", *TEXT_FIELDS) if name in data}
        try:
            async with savepoint(self.repository.session):
                slot = await self.create(
                    {**values, "professor_id": professor.id, "start_time": start, "end_time": end, "courses": courses}
                )
        except INTEGRITY_ERRORS as exc:  # a concurrent request took the time first
            raise ConflictError(_("This time overlaps another of your slots.")) from exc
        await announce(self.repository.session, "slots_added", professor.id, slot.id)
        return slot

    async def plan_slots(
        self,
        professor: User,
        rule: SlotRule,
        busy_periods: Sequence[tuple[datetime, datetime]] = (),
        *,
        keep_busy: bool = False,
    ) -> BulkResult:
        """What a rule would create: free times, and those skipped as past, clashing or busy in the calendar."""
        errors = rule.problems()
        courses = await self._reservation(professor, rule.course_ids, errors)
        if errors:
            raise FieldErrors(errors)
        now = utcnow()
        result = BulkResult(courses=courses)
        candidates = []
        for start, end in rule.local_times(professor.timezone):
            if start <= now:
                result.skipped_past.append(start)
            else:
                candidates.append((start, end))
        if not candidates:
            return result
        existing = await self.find_slots(slot_filters(professor.id, candidates[0][0], candidates[-1][1]), limit=100_000)
        existing = [slot for slot in existing if slot.status != SlotStatus.CANCELLED]
        for start, end in candidates:
            clash = next((slot for slot in existing if overlaps(start, end, slot.start_time, slot.end_time)), None)
            if clash is not None:
                result.clashes.append((start, end, clash))
            elif not keep_busy and any(overlaps(start, end, b_start, b_end) for b_start, b_end in busy_periods):
                result.busy.append((start, end))
            else:
                result.free.append((start, end))
        return result

    async def generate_slots(
        self,
        professor: User,
        rule: SlotRule,
        *,
        all_or_nothing: bool = False,
        busy_periods: Sequence[tuple[datetime, datetime]] = (),
        keep_busy: bool = False,
    ) -> BulkResult:
        require_may_publish(professor)
        result = await self.plan_slots(professor, rule, busy_periods, keep_busy=keep_busy)
        if all_or_nothing and result.clashes:
            first = result.clashes[0]
            raise ConflictError(
                _(
                    "%(count)s generated slot(s) overlap existing ones, the first on %(when)s; nothing was created.",
                    count=len(result.clashes),
                    when=describe_time(first[0], first[1], professor.timezone),
                )
            )
        if not result.free:
            return result
        series_id = uuid.uuid4()
        to_create = [
            ConsultationSlot(
                professor_id=professor.id,
                start_time=start,
                end_time=end,
                capacity=rule.capacity,
                location=rule.location,
                meeting_url=rule.meeting_url,
                title=rule.title,
                notes=rule.notes,
                status=SlotStatus.AVAILABLE.value,
                series_id=series_id,
                courses=list(result.courses),
            )
            for start, end in result.free
        ]
        try:
            async with savepoint(self.repository.session):
                result.created = list(await self.create_many(to_create))
        except INTEGRITY_ERRORS as exc:
            raise ConflictError(_("Another change overlapped these slots meanwhile; nothing was created.")) from exc
        await announce(self.repository.session, "slots_added", professor.id)
        return result

    async def update_slot(self, professor: User, slot_id: UUID, changes: dict[str, Any]) -> ConsultationSlot:
        slot = await self.get_owned(professor.id, slot_id, lock=True)
        if slot.status in (SlotStatus.CANCELLED, SlotStatus.COMPLETED) or slot.end_time <= utcnow():
            raise ConflictError(_("Only upcoming slots that are not cancelled can be changed."))
        errors = text_problems(changes)
        moved = "start_time" in changes or "end_time" in changes
        start = changes.get("start_time", slot.start_time)
        end = changes.get("end_time", slot.end_time)
        if moved:
            errors |= time_problems(start, end, now=utcnow())
        if "capacity" in changes and (problem := capacity_problem(changes["capacity"])):
            errors["capacity"] = problem
        courses = await self._reservation(professor, changes.get("course_ids", ()), errors)
        if errors:
            raise FieldErrors(errors)
        booked = (await places_of(self.repository.session, slot)).booked
        if changes.get("capacity", slot.capacity) < booked:
            raise ConflictError(_("%(booked)s students are booked; the capacity cannot go below that.", booked=booked))
        if moved:
            start, end = start.astimezone(UTC), end.astimezone(UTC)
            if clash := await self.find_clash(professor.id, start, end, exclude=slot.id):
                raise ConflictError(clash_message(clash, professor.timezone))
        try:
            async with savepoint(self.repository.session):
                if moved:
                    slot.start_time, slot.end_time = start, end
                for name in ("capacity", *TEXT_FIELDS):
                    if name in changes:
                        setattr(slot, name, changes[name])
                if "course_ids" in changes:  # students booked already keep their places
                    slot.courses = courses
                if changes.get("capacity", 0) > booked:  # more room: the waitlist moves up
                    await place_freed(self.repository.session, slot)
                await refresh_slot_status(self.repository.session, slot)
                if moved or any(name in changes for name in ("location", "meeting_url")):
                    await self._tell_booked_students_of_move(slot)
                await self.repository.session.flush()
        except INTEGRITY_ERRORS as exc:  # a booked student holds another booking at the new time
            raise ConflictError(_("A booked student has another consultation at the new time.")) from exc
        await announce(self.repository.session, "slot_changed", professor.id, slot.id)
        return slot

    async def _reservation(self, professor: User, course_ids: Iterable[UUID], errors: dict[str, str]) -> list[Course]:
        """The courses a slot is to be reserved for (the professor's own); a refusal joins `errors`."""
        try:
            return await CourseService(session=self.repository.session).reservable(professor, course_ids)
        except FieldErrors as exc:
            errors |= exc.errors
            return []

    async def _tell_booked_students_of_move(self, slot: ConsultationSlot) -> None:
        notifications = NotificationService(session=self.repository.session)
        for booking in await self.active_bookings(slot.id):
            booking.start_time, booking.end_time = slot.start_time, slot.end_time
            booking.sequence += 1
            await notifications.record(
                user_id=booking.student_id,
                booking_id=booking.id,
                kind=NotificationKind.BOOKING_MOVED,
                variant=str(booking.sequence),
            )
            booking_changed.send(self.repository.session, booking.id)

    async def cancel_slot(self, professor: User, slot_id: UUID, reason: str) -> ConsultationSlot:
        """Cancel the slot and every active booking on it; each booked student is told, with the reason."""
        slot = await self.get_owned(professor.id, slot_id, lock=True)
        if errors := text_problems({"reason": reason}):
            raise FieldErrors(errors)
        if slot.status == SlotStatus.CANCELLED:
            raise ConflictError(_("This slot is cancelled already."))
        if slot.status == SlotStatus.COMPLETED or slot.end_time <= utcnow():
            raise ConflictError(_("A slot that has ended cannot be cancelled."))
        active = await self.active_bookings(slot.id)
        if active and not reason.strip():
            raise FieldErrors.single("reason", _("Tell the booked students why you cancel."))
        notifications = NotificationService(session=self.repository.session)
        now = utcnow()
        for booking in active:
            booking.status = BookingStatus.CANCELLED.value
            booking.cancelled_by, booking.cancel_reason, booking.cancelled_at = professor.id, reason, now
            booking.sequence += 1
            await notifications.record(
                user_id=booking.student_id,
                booking_id=booking.id,
                kind=NotificationKind.SLOT_CANCELLED,
                context={"reason": reason},
            )
            booking_changed.send(self.repository.session, booking.id)
        slot.status = SlotStatus.CANCELLED.value
        await announce(self.repository.session, "slot_changed", professor.id, slot.id)
        return slot

    async def complete_ended_slots(self) -> int:
        """Slots whose end has passed become `completed` (cancelled ones stay cancelled)."""
        result = await self.repository.session.execute(
            update(ConsultationSlot)
            .where(
                ConsultationSlot.end_time <= utcnow(),
                ConsultationSlot.status.in_((SlotStatus.AVAILABLE.value, SlotStatus.BOOKED.value)),
            )
            .values(status=SlotStatus.COMPLETED.value)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def clash_message(clash: ConsultationSlot, timezone: str) -> str:
    return _(
        "This time overlaps your slot on %(when)s.", when=describe_time(clash.start_time, clash.end_time, timezone)
    )


async def upcoming_slot_count(session: AsyncSession, professor_id: UUID) -> int:
    """The professor's slots not cancelled and not over yet (before an account stops being a professor's, they are
    cancelled or handed over)."""
    count = await session.scalar(
        select(func.count())
        .select_from(ConsultationSlot)
        .where(
            ConsultationSlot.professor_id == professor_id,
            ConsultationSlot.status != SlotStatus.CANCELLED.value,
            ConsultationSlot.end_time > utcnow(),
        )
    )
    return int(count or 0)
