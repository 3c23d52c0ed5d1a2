"""The professor's dashboard: the week at a glance, inline-editable slots, requests to answer, the generator."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.accounts.models import User
from app.domain.calendar.services import busy_between
from app.domain.consultations.deps import provide_bookings, provide_slots
from app.domain.consultations.models import Booking, BookingStatus, ConsultationSlot, SlotStatus
from app.domain.consultations.services import BookingService, SlotRule, SlotService, utcnow
from app.lib.auth import requires_professor
from app.lib.errors import ConflictError, FieldErrors, NotFound
from app.lib.rendering import form_errors, render, render_html, toast_html

SLOT_FORM_FIELDS = ("date", "start", "end", "capacity", "location", "meeting_url", "title", "notes")
BULK_FORM_FIELDS = (
    "start_date",
    "end_date",
    "weekdays",
    "day_start",
    "day_end",
    "duration_minutes",
    "buffer_minutes",
    "capacity",
    "location",
    "meeting_url",
)
OUTCOMES = {"complete": BookingStatus.COMPLETED, "no-show": BookingStatus.NO_SHOW}
HTML = "text/html"


def parse_local(day: str, clock: str, timezone: str, field: str) -> datetime:
    """A date and HH:MM from a form, in the professor's zone, as an aware datetime."""
    try:
        return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=ZoneInfo(timezone))
    except ValueError as exc:
        raise FieldErrors.single(field, "Enter a valid date and time.") from exc


def parse_int(form: dict[str, Any], field: str, default: int | None = None) -> int:
    raw = str(form.get(field, "")).strip()
    if not raw and default is not None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise FieldErrors.single(field, "Enter a whole number.") from exc


def slot_form_values(form: dict[str, Any], timezone: str) -> dict[str, Any]:
    """Form strings to the slot service's values; a field that does not parse is a FieldErrors."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {
        name: str(form.get(name, "")).strip() for name in ("location", "meeting_url", "title", "notes")
    }
    try:
        values["start_time"] = parse_local(form.get("date", ""), form.get("start", ""), timezone, "start")
        values["end_time"] = parse_local(form.get("date", ""), form.get("end", ""), timezone, "end")
    except FieldErrors as exc:
        errors |= exc.errors
    try:
        values["capacity"] = parse_int(form, "capacity", 1)
    except FieldErrors as exc:
        errors |= exc.errors
    if errors:
        raise FieldErrors(errors)
    return values


def slot_form_errors(errors: dict[str, str]) -> dict[str, str]:
    """Service field names to this form's field names."""
    names = {"start_time": "start", "end_time": "end"}
    return {names.get(name, name): message for name, message in errors.items()}


def bulk_rule(form: Any) -> SlotRule:
    errors: dict[str, str] = {}
    numbers: dict[str, int] = {}
    for field, default in (("duration_minutes", None), ("buffer_minutes", 0), ("capacity", 1)):
        try:
            numbers[field] = parse_int(form, field, default)
        except FieldErrors as exc:
            errors |= exc.errors
    dates: dict[str, date] = {}
    for field in ("start_date", "end_date"):
        try:
            dates[field] = date.fromisoformat(str(form.get(field, "")))
        except ValueError:
            errors[field] = "Enter a valid date."
    try:
        weekdays = [int(day) for day in form.getall("weekdays", [])]
    except ValueError:
        errors["weekdays"] = "Weekdays are numbers from 0 (Monday) to 6 (Sunday)."
    if errors:
        raise FieldErrors(errors)
    return SlotRule(
        start_date=dates["start_date"],
        end_date=dates["end_date"],
        weekdays=weekdays,
        day_start=str(form.get("day_start", "")),
        day_end=str(form.get("day_end", "")),
        duration_minutes=numbers["duration_minutes"],
        buffer_minutes=numbers["buffer_minutes"],
        capacity=numbers["capacity"],
        location=str(form.get("location", "")).strip(),
        meeting_url=str(form.get("meeting_url", "")).strip(),
    )


async def slot_rows_context(
    session: AsyncSession, professor: User, slot_list: list[ConsultationSlot]
) -> tuple[dict[str, Any], list[Booking]]:
    """What dashboard slot rows show: places taken, the bookings under each row, waitlist lengths.

    Also returns the professor's upcoming active bookings (the pending list is made from them).
    """
    from app.domain.waitlist.services import WaitlistService

    ids = [slot.id for slot in slot_list]
    active, _ = await BookingService(session=session).list_for(professor, upcoming=True, limit=500)
    by_slot: dict[UUID, list[Booking]] = {}
    for booking in active:
        by_slot.setdefault(booking.slot_id, []).append(booking)
    context = {
        "counts": await SlotService(session=session).booked_counts(ids),
        "bookings_by_slot": by_slot,
        "waiting": await WaitlistService(session=session).lengths(ids),
        "errors": {},
    }
    return context, active


async def dashboard_overview(professor: User, slots: SlotService, bookings: BookingService) -> dict[str, Any]:
    """The dashboard: the coming week's slots and bookings, requests to answer, consultations to mark."""
    now = utcnow()
    week, _ = await slots.list_slots(professor_id=professor.id, start=now, end=now + timedelta(days=8), limit=500)
    week = [slot for slot in week if slot.status != SlotStatus.CANCELLED]
    rows, active = await slot_rows_context(slots.repository.session, professor, week)
    to_mark, _ = await bookings.list_for(professor, status=BookingStatus.CONFIRMED.value, upcoming=None, limit=200)
    today = now.astimezone(ZoneInfo(professor.timezone)).date()
    return {
        **rows,
        "week_slots": week,
        "pending": [b for b in active if b.status == BookingStatus.PENDING],
        "to_mark": [b for b in to_mark if b.start_time <= now],
        "today": today,
        "default_end": today + timedelta(days=28),
    }


class DashboardPages(Controller):
    path = "/dashboard"
    guards = [requires_professor]
    include_in_schema = False
    dependencies = {"slots": Provide(provide_slots), "bookings": Provide(provide_bookings)}

    @get("/", name="dashboard")
    async def dashboard(
        self,
        request: Request[User, Any, Any],
        slots: NamedDependency[SlotService],
        bookings: NamedDependency[BookingService],
    ) -> Response[Any]:
        context = await dashboard_overview(request.user, slots, bookings)
        return render(request, "pages/dashboard.html", context, block="overview")

    @post("/slots", status_code=200)
    async def create_slot(self, request: Request[User, Any, Any], slots: NamedDependency[SlotService]) -> Response[Any]:
        form = dict(await request.form())
        try:
            slot = await slots.create_slot(request.user, slot_form_values(form, request.user.timezone))
        except FieldErrors as exc:
            return form_errors(request, SLOT_FORM_FIELDS, slot_form_errors(exc.errors), prefix="new-slot")
        when = slot.start_time.astimezone(ZoneInfo(request.user.timezone))
        html = render_html(
            request, "components/form_errors.html", {"fields": SLOT_FORM_FIELDS, "errors": {}, "prefix": "new-slot"}
        )
        html += toast_html(request, f"Slot published for {when:%a %d %b, %H:%M}.", "success")
        return Response(html, media_type=HTML, headers={"HX-Trigger": "slots-changed"})

    @post("/slots/bulk", status_code=200)
    async def generate(self, request: Request[User, Any, Any], slots: NamedDependency[SlotService]) -> Response[Any]:
        return await self._bulk(request, slots, create=True)

    @post("/slots/preview", status_code=200)
    async def preview(self, request: Request[User, Any, Any], slots: NamedDependency[SlotService]) -> Response[Any]:
        """What the generator would make, with times busy in the professor's Google Calendar flagged."""
        return await self._bulk(request, slots, create=False)

    async def _bulk(self, request: Request[User, Any, Any], slots: SlotService, *, create: bool) -> Response[Any]:
        form = await request.form()
        keep_busy = form.get("keep_busy") == "on"
        try:
            rule = bulk_rule(form)
            busy = await busy_between(
                slots.repository.session, get_settings(), request.user, rule.start_date, rule.end_date
            )
            if create:
                result = await slots.generate_slots(
                    request.user,
                    rule,
                    all_or_nothing=form.get("all_or_nothing") == "on",
                    busy_periods=busy,
                    keep_busy=keep_busy,
                )
            else:
                result = await slots.plan_slots(request.user, rule, busy, keep_busy=keep_busy)
        except FieldErrors as exc:
            return form_errors(request, BULK_FORM_FIELDS, exc.errors, prefix="bulk")
        html = render_html(
            request, "components/form_errors.html", {"fields": BULK_FORM_FIELDS, "errors": {}, "prefix": "bulk"}
        )
        html += render_html(request, "components/bulk_result.html", {"result": result, "preview": not create})
        return Response(html, media_type=HTML, headers={"HX-Trigger": "slots-changed"} if create else {})

    @get("/slots-table")
    async def slots_table(
        self,
        request: Request[User, Any, Any],
        slots: NamedDependency[SlotService],
        bookings: NamedDependency[BookingService],
    ) -> Response[Any]:
        context = await dashboard_overview(request.user, slots, bookings)
        return render(request, "pages/dashboard.html", context, block="slots_table")

    async def _row(
        self, request: Request[User, Any, Any], slots: SlotService, slot: ConsultationSlot, **extra: Any
    ) -> str:
        rows, _ = await slot_rows_context(slots.repository.session, request.user, [slot])
        return render_html(request, "components/dashboard_slot_row.html", {**rows, "slot": slot, **extra})

    @get("/slots/{slot_id:uuid}/row")
    async def slot_row(
        self, request: Request[User, Any, Any], slot_id: FromPath[UUID], slots: NamedDependency[SlotService]
    ) -> Response[Any]:
        slot = await slots.get_owned(request.user.id, slot_id)
        return Response(await self._row(request, slots, slot), media_type=HTML)

    @get("/slots/{slot_id:uuid}/edit")
    async def edit_row(
        self, request: Request[User, Any, Any], slot_id: FromPath[UUID], slots: NamedDependency[SlotService]
    ) -> Response[Any]:
        slot = await slots.get_owned(request.user.id, slot_id)
        return Response(await self._row(request, slots, slot, editing=True), media_type=HTML)

    @post("/slots/{slot_id:uuid}", status_code=200)
    async def save_row(
        self, request: Request[User, Any, Any], slot_id: FromPath[UUID], slots: NamedDependency[SlotService]
    ) -> Response[Any]:
        form = dict(await request.form())
        slot = await slots.get_owned(request.user.id, slot_id)
        try:
            changes = slot_form_values(form, request.user.timezone)
            slot = await slots.update_slot(request.user, slot_id, changes)
        except (FieldErrors, ConflictError) as exc:
            errors = slot_form_errors(exc.errors) if isinstance(exc, FieldErrors) else {"start": exc.message}
            slot = await slots.get_owned(request.user.id, slot_id)
            html = await self._row(request, slots, slot, editing=True, errors=errors, form=form)
            return Response(html, status_code=exc.status_code, media_type=HTML)
        html = await self._row(request, slots, slot) + toast_html(request, "Slot saved.", "success")
        return Response(html, media_type=HTML)

    @post("/slots/{slot_id:uuid}/cancel", status_code=200)
    async def cancel_slot(
        self, request: Request[User, Any, Any], slot_id: FromPath[UUID], slots: NamedDependency[SlotService]
    ) -> Response[Any]:
        form = dict(await request.form())
        slot = await slots.cancel_slot(request.user, slot_id, str(form.get("reason", "")).strip())
        html = await self._row(request, slots, slot) + toast_html(
            request, "Slot cancelled; booked students are told.", "success"
        )
        return Response(html, media_type=HTML)

    async def _booking_item(self, request: Request[User, Any, Any], booking: Booking, message: str) -> Response[Any]:
        html = render_html(request, "components/dashboard_booking.html", {"booking": booking})
        return Response(html + toast_html(request, message, "success"), media_type=HTML)

    @post("/bookings/{booking_id:uuid}/confirm", status_code=200)
    async def confirm(
        self, request: Request[User, Any, Any], booking_id: FromPath[UUID], bookings: NamedDependency[BookingService]
    ) -> Response[Any]:
        booking = await bookings.confirm(request.user, booking_id)
        return await self._booking_item(request, booking, f"Confirmed {booking.student.full_name}.")

    @post("/bookings/{booking_id:uuid}/cancel", status_code=200)
    async def cancel_booking(
        self, request: Request[User, Any, Any], booking_id: FromPath[UUID], bookings: NamedDependency[BookingService]
    ) -> Response[Any]:
        form = dict(await request.form())
        try:
            booking = await bookings.cancel(request.user, booking_id, str(form.get("reason", "")))
        except FieldErrors as exc:
            return form_errors(request, ("reason",), exc.errors, prefix=f"cancel-{booking_id}")
        return await self._booking_item(request, booking, f"Cancelled; {booking.student.full_name} is told.")

    @post("/bookings/{booking_id:uuid}/{outcome:str}", status_code=200)
    async def mark(
        self,
        request: Request[User, Any, Any],
        booking_id: FromPath[UUID],
        outcome: FromPath[str],
        bookings: NamedDependency[BookingService],
    ) -> Response[Any]:
        if outcome not in OUTCOMES:
            raise NotFound("Unknown outcome.")
        booking = await bookings.mark_outcome(request.user, booking_id, OUTCOMES[outcome])
        return await self._booking_item(request, booking, f"Marked {booking.status.replace('_', ' ')}.")
