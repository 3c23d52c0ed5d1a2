"""Web pages for booking: the professor directory, the week grid and its booking dialog, "My bookings", the
waitlist buttons of the grid and the accept link sent by e-mail."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User
from app.domain.accounts.services import UserService
from app.domain.consultations.bookings import BookingService
from app.domain.consultations.deps import providers
from app.domain.consultations.forms import AcceptForm, FeedbackForm, ReasonForm, TopicForm
from app.domain.consultations.grid import build_cells
from app.domain.consultations.notes import NoteService
from app.domain.consultations.rules import FEEDBACK_EDIT_WINDOW
from app.domain.consultations.slots import SlotService
from app.domain.consultations.states import state_of
from app.domain.consultations.views import cell_html, slot_cell, slot_cell_html, week_grid, week_page_context
from app.domain.consultations.waitlist import WaitlistService
from app.lib.errors import ConflictError, FieldErrors, NotFound
from app.lib.forms import read_form
from app.lib.guards import requires_student, requires_user
from app.lib.i18n import gettext as _
from app.lib.rendering import flash, form_errors, fragments, redirect, render, render_html, toast_html
from app.lib.unit_of_work import savepoint

FEEDBACK_FIELDS = ("rating", "student_feedback")
# What the consultations' templates read.
TEMPLATE_GLOBALS = {
    "feedback_window": FEEDBACK_EDIT_WINDOW,
    "state_of": state_of,
    "slot_cell": slot_cell,
    "week_grid": week_grid,
}


class BookingPages(Controller):
    dependencies = providers("users", "slots", "bookings", "notes")
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
        db_session: NamedDependency[AsyncSession],
        week: FromQuery[date | None] = None,
        tz: FromQuery[str | None] = None,
    ) -> Response[Any]:
        context = await week_page_context(db_session, professor_id, request.user, week, tz)
        return render(request, "pages/professor.html", context, block="week")

    @get("/slots/{slot_id:uuid}/book", guards=[requires_student])
    async def booking_dialog(
        self, request: Request[Any, Any, Any], slot_id: FromPath[UUID], slots: NamedDependency[SlotService]
    ) -> Response[Any]:
        slot = await slots.get_one_or_none(id=slot_id)
        if slot is None:
            raise NotFound(_("Slot not found."))
        (cell,) = await build_cells(slots.repository.session, [slot], request.user)
        return render(request, "components/booking_dialog.html", {"cell": cell, "error": None, "errors": {}})

    @post("/slots/{slot_id:uuid}/book", guards=[requires_student], status_code=200)
    async def book(
        self,
        request: Request[Any, Any, Any],
        slot_id: FromPath[UUID],
        slots: NamedDependency[SlotService],
        bookings: NamedDependency[BookingService],
    ) -> Response[Any]:
        form = await read_form(request, TopicForm)
        try:
            async with savepoint(bookings.repository.session):  # a refusal is undone, and the page goes on to show it
                booking = await bookings.book_slot(request.user, slot_id, form.topic)
        except (ConflictError, FieldErrors) as exc:
            # The reason shows in place, in the dialog, with what was typed and what to do next (the waitlist, the
            # professor's next free slot); the cell refreshes (it may have just filled up).
            slot = await slots.get_one_or_none(id=slot_id)
            if slot is None:
                raise NotFound(_("Slot not found.")) from exc
            (cell,) = await build_cells(slots.repository.session, [slot], request.user)
            context = {
                "cell": cell,
                "topic": form.topic,
                "error": exc.message if isinstance(exc, ConflictError) else None,
                "errors": exc.errors if isinstance(exc, FieldErrors) else {},
                "next_free": await slots.next_free(slot, request.user) if isinstance(exc, ConflictError) else None,
            }
            return fragments(
                render_html(request, "components/booking_dialog.html", context),
                cell_html(request, cell, oob=True),
                status_code=exc.status_code,
            )
        message = _("Booked.") if booking.status == "confirmed" else _("Requested: the professor will confirm it.")
        return fragments(
            await slot_cell_html(request, slots.repository.session, slot_id, oob=True),
            toast_html(request, message, "success"),
            headers={"HX-Trigger": "booking-made"},
        )

    @get("/bookings", name="my_bookings")
    async def my_bookings(
        self,
        request: Request[Any, Any, Any],
        bookings: NamedDependency[BookingService],
        notes: NamedDependency[NoteService],
        tab: FromQuery[str] = "upcoming",
    ) -> Response[Any]:
        tab = "past" if tab == "past" else "upcoming"
        rows = await bookings.list_for(request.user, upcoming=tab == "upcoming", limit=200)
        context = {"bookings": rows, "total": len(rows), "tab": tab, "notes": await notes.notes_for(b.id for b in rows)}
        return render(request, "pages/bookings.html", context, block="panel")

    @post("/bookings/{booking_id:uuid}/cancel", status_code=200)
    async def cancel(
        self, request: Request[Any, Any, Any], booking_id: FromPath[UUID], bookings: NamedDependency[BookingService]
    ) -> Response[Any]:
        form = await read_form(request, ReasonForm)
        booking = await bookings.cancel(request.user, booking_id, form.reason)
        return fragments(
            render_html(request, "components/booking_row.html", {"booking": booking}),
            toast_html(request, _("Booking cancelled."), "success"),
        )

    @post("/bookings/{booking_id:uuid}/feedback", guards=[requires_student], status_code=200)
    async def feedback(
        self, request: Request[Any, Any, Any], booking_id: FromPath[UUID], notes: NamedDependency[NoteService]
    ) -> Response[Any]:
        try:
            form = await read_form(request, FeedbackForm)
            changes = {
                "student_feedback": form.student_feedback,
                "feedback_signed": form.feedback_signed,
                "rating": form.rating,
            }
            view = await notes.save(request.user, booking_id, changes)
        except FieldErrors as exc:
            return form_errors(request, FEEDBACK_FIELDS, exc.errors, prefix=f"fb-{booking_id}")
        return fragments(
            render_html(request, "components/booking_row.html", {"booking": view.booking, "note": view.note}),
            toast_html(request, _("Thank you for your feedback."), "success"),
        )


class WaitlistPages(Controller):
    include_in_schema = False
    guards = [requires_student]
    dependencies = providers("waitlist")

    async def _cell(
        self, request: Request[User, Any, Any], waitlist: WaitlistService, slot_id: UUID, message: str
    ) -> Response[Any]:
        cell = await slot_cell_html(request, waitlist.repository.session, slot_id, oob=False)
        return fragments(cell, toast_html(request, message, "success"))

    @get("/waitlist", name="my_waitlist")
    async def mine(self, request: Request[User, Any, Any], waitlist: NamedDependency[WaitlistService]) -> Response[Any]:
        """The student's waitlist places: their position, and the places held for them."""
        entries = await waitlist.entries_of(request.user)
        rows = [(entry, await waitlist.position(entry)) for entry in entries]
        return render(request, "pages/waitlist.html", {"rows": rows})

    @post("/waitlist/{entry_id:uuid}/pass", status_code=200)
    async def pass_on(
        self, request: Request[User, Any, Any], entry_id: FromPath[UUID], waitlist: NamedDependency[WaitlistService]
    ) -> Response[Any]:
        """Let a held place go to the next student."""
        await waitlist.decline(request.user, entry_id)
        flash(request, _("The place goes to the next student on the waitlist."), "success")
        return redirect(request, "/waitlist")

    @post("/waitlist/{entry_id:uuid}/leave", status_code=200)
    async def leave_entry(
        self, request: Request[User, Any, Any], entry_id: FromPath[UUID], waitlist: NamedDependency[WaitlistService]
    ) -> Response[Any]:
        await waitlist.leave_entry(request.user, entry_id)
        flash(request, _("You left the waitlist."), "success")
        return redirect(request, "/waitlist")

    @post("/slots/{slot_id:uuid}/waitlist", status_code=200)
    async def join(
        self, request: Request[User, Any, Any], slot_id: FromPath[UUID], waitlist: NamedDependency[WaitlistService]
    ) -> Response[Any]:
        entry = await waitlist.join_slot(request.user, slot_id)
        position = await waitlist.position(entry)
        return await self._cell(
            request, waitlist, slot_id, _("You are number %(position)s on the waitlist.", position=position)
        )

    @post("/slots/{slot_id:uuid}/waitlist/leave", status_code=200)
    async def leave(
        self, request: Request[User, Any, Any], slot_id: FromPath[UUID], waitlist: NamedDependency[WaitlistService]
    ) -> Response[Any]:
        await waitlist.leave(request.user, slot_id)
        return await self._cell(request, waitlist, slot_id, _("You left the waitlist."))

    @post("/slots/{slot_id:uuid}/waitlist/accept", status_code=200)
    async def accept_in_grid(
        self, request: Request[User, Any, Any], slot_id: FromPath[UUID], waitlist: NamedDependency[WaitlistService]
    ) -> Response[Any]:
        entry = await waitlist.get_one_or_none(offered_slot_id=slot_id, student_id=request.user.id, status="offered")
        if entry is None:
            raise ConflictError(_("There is no open offer for you on this slot."))
        await waitlist.accept(request.user, entry.id)
        return await self._cell(request, waitlist, slot_id, _("It's yours: booked."))

    @get("/waitlist/{entry_id:uuid}/accept")
    async def accept_page(
        self,
        request: Request[User, Any, Any],
        entry_id: FromPath[UUID],
        waitlist: NamedDependency[WaitlistService],
        t: FromQuery[str] = "",
    ) -> Response[Any]:
        """The e-mailed link: a page with one button (a GET must not book)."""
        entry = await waitlist.get_one_or_none(id=entry_id, student_id=request.user.id)
        problem = None
        if entry is None or entry.offered_slot is None:
            problem = _("This offer does not exist, or it is not yours.")
        elif entry.status != "offered":
            problem = _("This offer is no longer open (it was used, declined or has expired).")
        elif entry.offer_nonce != t:
            problem = _("This link is not valid (it may have been used already).")
        context = {"entry": entry, "token": t, "problem": problem}
        return render(request, "pages/waitlist_accept.html", context, status_code=200 if problem is None else 409)

    @post("/waitlist/{entry_id:uuid}/accept", status_code=200)
    async def accept_link(
        self, request: Request[User, Any, Any], entry_id: FromPath[UUID], waitlist: NamedDependency[WaitlistService]
    ) -> Response[Any]:
        form = await read_form(request, AcceptForm)
        try:
            booking = await waitlist.accept(request.user, entry_id, nonce=form.t)
        except (ConflictError, NotFound) as exc:
            context = {"entry": None, "token": "", "problem": exc.message}
            return render(request, "pages/waitlist_accept.html", context, status_code=exc.status_code)
        return render(request, "pages/waitlist_accept.html", {"entry": None, "booking": booking, "problem": None})
