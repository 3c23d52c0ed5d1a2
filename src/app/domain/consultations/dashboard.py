"""The professor's dashboard: the week at a glance, inline-editable slots, requests to answer, the generator."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from app.config import get_settings
from app.domain.accounts.models import User
from app.domain.consultations.bookings import BookingService
from app.domain.consultations.deps import providers
from app.domain.consultations.forms import ReasonForm, SlotForm, slot_form_errors
from app.domain.consultations.models import Booking, BookingStatus, ConsultationSlot
from app.domain.consultations.schemas import BulkSlotsIn
from app.domain.consultations.slots import SlotService
from app.domain.consultations.states import state_of
from app.domain.consultations.views import dashboard_overview, slot_rows_context
from app.domain.google.calendar_api import busy_between
from app.lib.errors import ConflictError, FieldErrors, NotFound
from app.lib.formatting import local_time
from app.lib.forms import decode_form, read_form
from app.lib.guards import requires_professor
from app.lib.i18n import gettext as _
from app.lib.rendering import form_errors, form_errors_html, fragments, render, render_html, toast_html

SLOT_FORM_FIELDS = tuple(SlotForm.__struct_fields__)
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
    "course_ids",
)
OUTCOMES = {"complete": BookingStatus.COMPLETED, "no-show": BookingStatus.NO_SHOW}


class DashboardPages(Controller):
    path = "/dashboard"
    guards = [requires_professor]
    include_in_schema = False
    dependencies = providers("slots", "bookings")

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
        try:
            form = await read_form(request, SlotForm)
            slot = await slots.create_slot(request.user, form.values(request.user.timezone))
        except FieldErrors as exc:
            return form_errors(request, SLOT_FORM_FIELDS, slot_form_errors(exc.errors), prefix="new-slot")
        when = local_time(slot.start_time, request.user.timezone, "day_time")
        return fragments(
            form_errors_html(request, SLOT_FORM_FIELDS, {}, prefix="new-slot"),
            toast_html(request, _("Slot published for %(when)s.", when=when), "success"),
            headers={"HX-Trigger": "slots-changed"},
        )

    @post("/slots/bulk", status_code=200)
    async def generate(self, request: Request[User, Any, Any], slots: NamedDependency[SlotService]) -> Response[Any]:
        return await self._bulk(request, slots, create=True)

    @post("/slots/preview", status_code=200)
    async def preview(self, request: Request[User, Any, Any], slots: NamedDependency[SlotService]) -> Response[Any]:
        """What the generator would make, with times busy in the professor's Google Calendar flagged."""
        return await self._bulk(request, slots, create=False)

    async def _bulk(self, request: Request[User, Any, Any], slots: SlotService, *, create: bool) -> Response[Any]:
        try:
            rule = await read_form(request, BulkSlotsIn)
            busy = await busy_between(
                slots.repository.session, get_settings(), request.user, rule.start_date, rule.end_date
            )
            if create:
                result = await slots.generate_slots(
                    request.user,
                    rule,
                    all_or_nothing=rule.all_or_nothing,
                    busy_periods=busy,
                    keep_busy=rule.keep_busy,
                )
            else:
                result = await slots.plan_slots(request.user, rule, busy, keep_busy=rule.keep_busy)
        except FieldErrors as exc:
            return form_errors(request, BULK_FORM_FIELDS, exc.errors, prefix="bulk")
        return fragments(
            form_errors_html(request, BULK_FORM_FIELDS, {}, prefix="bulk"),
            render_html(request, "components/bulk_result.html", {"result": result, "preview": not create}),
            headers={"HX-Trigger": "slots-changed"} if create else {},
        )

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
        rows, _total = await slot_rows_context(slots.repository.session, request.user, [slot])
        return render_html(request, "components/dashboard_slot_row.html", {**rows, "slot": slot, **extra})

    @get("/slots/{slot_id:uuid}/row")
    async def slot_row(
        self, request: Request[User, Any, Any], slot_id: FromPath[UUID], slots: NamedDependency[SlotService]
    ) -> Response[Any]:
        slot = await slots.get_owned(request.user.id, slot_id)
        return fragments(await self._row(request, slots, slot))

    @get("/slots/{slot_id:uuid}/edit")
    async def edit_row(
        self, request: Request[User, Any, Any], slot_id: FromPath[UUID], slots: NamedDependency[SlotService]
    ) -> Response[Any]:
        slot = await slots.get_owned(request.user.id, slot_id)
        return fragments(await self._row(request, slots, slot, editing=True))

    @post("/slots/{slot_id:uuid}", status_code=200)
    async def save_row(
        self, request: Request[User, Any, Any], slot_id: FromPath[UUID], slots: NamedDependency[SlotService]
    ) -> Response[Any]:
        submitted = await request.form()
        typed = {name: submitted.get(name, "") for name in SLOT_FORM_FIELDS}  # shown again if the change is refused
        slot = await slots.get_owned(request.user.id, slot_id)
        try:
            changes = decode_form(submitted, SlotForm).values(request.user.timezone)
            slot = await slots.update_slot(request.user, slot_id, changes)
        except (FieldErrors, ConflictError) as exc:
            errors = slot_form_errors(exc.errors) if isinstance(exc, FieldErrors) else {"start": exc.message}
            slot = await slots.get_owned(request.user.id, slot_id)  # as it is now (a refused change was undone)
            html = await self._row(request, slots, slot, editing=True, errors=errors, form=typed)
            return fragments(html, status_code=exc.status_code)
        return fragments(await self._row(request, slots, slot), toast_html(request, _("Slot saved."), "success"))

    @post("/slots/{slot_id:uuid}/cancel", status_code=200)
    async def cancel_slot(
        self, request: Request[User, Any, Any], slot_id: FromPath[UUID], slots: NamedDependency[SlotService]
    ) -> Response[Any]:
        form = await read_form(request, ReasonForm)
        try:
            slot = await slots.cancel_slot(request.user, slot_id, form.reason)
        except FieldErrors as exc:
            return form_errors(request, ("reason",), exc.errors, prefix=f"cancel-slot-{slot_id}")
        return fragments(
            await self._row(request, slots, slot),
            toast_html(request, _("Slot cancelled; booked students are told."), "success"),
        )

    def _booking_item(self, request: Request[User, Any, Any], booking: Booking, message: str) -> Response[Any]:
        return fragments(
            render_html(request, "components/dashboard_booking.html", {"booking": booking}),
            toast_html(request, message, "success"),
        )

    @post("/bookings/{booking_id:uuid}/confirm", status_code=200)
    async def confirm(
        self, request: Request[User, Any, Any], booking_id: FromPath[UUID], bookings: NamedDependency[BookingService]
    ) -> Response[Any]:
        booking = await bookings.confirm(request.user, booking_id)
        return self._booking_item(request, booking, _("Confirmed %(student)s.", student=booking.student.full_name))

    @post("/bookings/{booking_id:uuid}/cancel", status_code=200)
    async def cancel_booking(
        self, request: Request[User, Any, Any], booking_id: FromPath[UUID], bookings: NamedDependency[BookingService]
    ) -> Response[Any]:
        form = await read_form(request, ReasonForm)
        try:
            booking = await bookings.cancel(request.user, booking_id, form.reason)
        except FieldErrors as exc:
            return form_errors(request, ("reason",), exc.errors, prefix=f"cancel-{booking_id}")
        if booking.status == BookingStatus.DECLINED:
            told = _("Declined; %(student)s is told.", student=booking.student.full_name)
        else:
            told = _("Cancelled; %(student)s is told.", student=booking.student.full_name)
        return self._booking_item(request, booking, told)

    @post("/bookings/{booking_id:uuid}/{outcome:str}", status_code=200)
    async def mark(
        self,
        request: Request[User, Any, Any],
        booking_id: FromPath[UUID],
        outcome: FromPath[str],
        bookings: NamedDependency[BookingService],
    ) -> Response[Any]:
        if outcome not in OUTCOMES:
            raise NotFound(_("Unknown outcome."))
        booking = await bookings.mark_outcome(request.user, booking_id, OUTCOMES[outcome])
        return self._booking_item(request, booking, _("Marked: %(state)s.", state=state_of(booking.status).label))
