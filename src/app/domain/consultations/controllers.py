"""Web pages for booking: the professor directory, the week grid and its booking dialog, "My bookings"."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery

from app.domain.accounts.deps import provide_users
from app.domain.accounts.models import User
from app.domain.accounts.services import UserService
from app.domain.consultations.deps import provide_bookings, provide_slots
from app.domain.consultations.grid import build_cells, build_week, monday_of, today_in
from app.domain.consultations.services import BookingService, NoteService, SlotService
from app.domain.notifications.services import delivery_state, messages_for_booking
from app.lib.auth import requires_student, requires_user
from app.lib.errors import ConflictError, FieldErrors, NotFound
from app.lib.rendering import form_errors, render, render_html, toast_html

FEEDBACK_FIELDS = ("rating", "student_feedback")
DEPENDENCIES = {
    "users": Provide(provide_users),
    "slots": Provide(provide_slots),
    "bookings": Provide(provide_bookings),
}


async def professor_or_404(users: UserService, professor_id: UUID) -> User:
    professor = await users.get_one_or_none(id=professor_id, is_active=True)
    if professor is None or not professor.is_professor:
        raise NotFound("Professor not found.")
    return professor


async def week_page_context(
    users: UserService, slots: SlotService, professor_id: UUID, viewer: User, week: date | None
) -> dict[str, Any]:
    """A professor's week grid as `viewer` sees it (the site's page and the embedded one alike)."""
    professor = await professor_or_404(users, professor_id)
    grid = await build_week(slots, professor, viewer, monday_of(week or today_in(viewer.timezone)))
    rating = await NoteService(session=slots.repository.session).rating_summary(professor.id)
    return {
        "grid": grid,
        "professor": professor,
        "this_week": monday_of(today_in(viewer.timezone)),
        "rating": rating,
    }


async def slot_cell_html(request: Request[Any, Any, Any], slots: SlotService, slot_id: UUID, *, oob: bool) -> str:
    """The grid cell of one slot as the viewer sees it now (out-of-band when it rides along another swap)."""
    slot = await slots.get(slot_id)
    (cell,) = await build_cells(slots, [slot], request.user)
    return render_html(request, "components/slot_cell.html", {"cell": cell, "oob": oob})


class BookingPages(Controller):
    dependencies = DEPENDENCIES
    include_in_schema = False
    guards = [requires_user]

    @get("/professors", name="professors")
    async def directory(
        self, request: Request[Any, Any, Any], users: NamedDependency[UserService], q: FromQuery[str] = ""
    ) -> Response[Any]:
        professors, total = await users.search_professors(q, limit=100)
        context = {"professors": professors, "total": total, "q": q}
        return render(request, "pages/professors.html", context, block="results")

    @get("/professors/{professor_id:uuid}", name="professor")
    async def week(
        self,
        request: Request[Any, Any, Any],
        professor_id: FromPath[UUID],
        users: NamedDependency[UserService],
        slots: NamedDependency[SlotService],
        week: FromQuery[date | None] = None,
    ) -> Response[Any]:
        context = await week_page_context(users, slots, professor_id, request.user, week)
        return render(request, "pages/professor.html", context, block="week")

    @get("/slots/{slot_id:uuid}/book", guards=[requires_student])
    async def booking_dialog(
        self, request: Request[Any, Any, Any], slot_id: FromPath[UUID], slots: NamedDependency[SlotService]
    ) -> Response[Any]:
        slot = await slots.get_one_or_none(id=slot_id)
        if slot is None:
            raise NotFound("Slot not found.")
        (cell,) = await build_cells(slots, [slot], request.user)
        return render(request, "components/booking_dialog.html", {"cell": cell, "error": None})

    @post("/slots/{slot_id:uuid}/book", guards=[requires_student], status_code=200)
    async def book(
        self,
        request: Request[Any, Any, Any],
        slot_id: FromPath[UUID],
        slots: NamedDependency[SlotService],
        bookings: NamedDependency[BookingService],
    ) -> Response[Any]:
        form = dict(await request.form())
        try:
            booking = await bookings.book_slot(request.user, slot_id, form.get("topic", ""))
        except (ConflictError, FieldErrors) as exc:
            # The reason shows in place, in the dialog; the cell refreshes (it may have just filled up).
            slot = await slots.get_one_or_none(id=slot_id)
            if slot is None:
                raise NotFound("Slot not found.") from exc
            (cell,) = await build_cells(slots, [slot], request.user)
            html = render_html(request, "components/booking_dialog.html", {"cell": cell, "error": exc.message})
            html += render_html(request, "components/slot_cell.html", {"cell": cell, "oob": True})
            return Response(html, status_code=exc.status_code, media_type="text/html")
        message = "Booked." if booking.status == "confirmed" else "Requested: the professor will confirm it."
        html = await slot_cell_html(request, slots, slot_id, oob=True) + toast_html(request, message, "success")
        return Response(html, media_type="text/html", headers={"HX-Trigger": "booking-made"})

    @get("/bookings", name="my_bookings")
    async def my_bookings(
        self,
        request: Request[Any, Any, Any],
        bookings: NamedDependency[BookingService],
        tab: FromQuery[str] = "upcoming",
    ) -> Response[Any]:
        tab = "past" if tab == "past" else "upcoming"
        rows, total = await bookings.list_for(request.user, upcoming=tab == "upcoming", limit=200)
        notes = await NoteService(session=bookings.repository.session).notes_for(b.id for b in rows)
        context = {"bookings": rows, "total": total, "tab": tab, "notes": notes}
        return render(request, "pages/bookings.html", context, block="panel")

    @get("/bookings/{booking_id:uuid}", name="booking")
    async def booking_detail(
        self, request: Request[Any, Any, Any], booking_id: FromPath[UUID], bookings: NamedDependency[BookingService]
    ) -> Response[Any]:
        """One booking for either party, with the messages about it and how their delivery went."""
        booking = await bookings.get_visible(request.user, booking_id)
        messages = await messages_for_booking(bookings.repository.session, booking.id)
        context = {"booking": booking, "messages": messages, "state": delivery_state}
        return render(request, "pages/booking.html", context)

    @post("/bookings/{booking_id:uuid}/cancel", status_code=200)
    async def cancel(
        self, request: Request[Any, Any, Any], booking_id: FromPath[UUID], bookings: NamedDependency[BookingService]
    ) -> Response[Any]:
        form = dict(await request.form())
        booking = await bookings.cancel(request.user, booking_id, form.get("reason", ""))
        html = render_html(request, "components/booking_row.html", {"booking": booking})
        html += toast_html(request, "Booking cancelled.", "success")
        return Response(html, media_type="text/html")

    @post("/bookings/{booking_id:uuid}/feedback", guards=[requires_student], status_code=200)
    async def feedback(
        self, request: Request[Any, Any, Any], booking_id: FromPath[UUID], bookings: NamedDependency[BookingService]
    ) -> Response[Any]:
        form = dict(await request.form())
        notes = NoteService(session=bookings.repository.session)
        changes: dict[str, Any] = {
            "student_feedback": str(form.get("student_feedback", "")).strip(),
            "feedback_signed": form.get("feedback_signed") == "on",
        }
        try:
            changes["rating"] = int(form.get("rating", ""))
        except ValueError:
            changes["rating"] = None
        try:
            view = await notes.save(request.user, booking_id, changes)
        except FieldErrors as exc:
            return form_errors(request, FEEDBACK_FIELDS, exc.errors, prefix=f"fb-{booking_id}")
        html = render_html(request, "components/booking_row.html", {"booking": view.booking, "note": view.note})
        return Response(html + toast_html(request, "Thank you for your feedback.", "success"), media_type="text/html")
