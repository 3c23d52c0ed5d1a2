"""Managing one booking: its page (the student cancels or moves it; the professor keeps private notes), and the
signed links of booking e-mails (confirm, decline, cancel, move), which act only on a POST from the page they open.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from app.config import get_settings
from app.domain.accounts.models import User
from app.domain.consultations.bookings import BookingService
from app.domain.consultations.deps import providers
from app.domain.consultations.events import kind_label
from app.domain.consultations.forms import NotesForm, ReasonForm, RescheduleForm
from app.domain.consultations.links import (
    ActionLink,
    LinkAction,
    LinkExpired,
    LinkForAnotherAccount,
    LinkInvalid,
    LinkUsed,
    read,
    sign,
)
from app.domain.consultations.models import Booking, BookingStatus
from app.domain.consultations.notes import NoteService
from app.domain.notifications.services import NotificationService, delivery_label, delivery_state
from app.lib.errors import ConflictError, DomainError, FieldErrors, NotFound
from app.lib.formatting import describe_time
from app.lib.forms import read_form
from app.lib.guards import requires_professor, requires_student, requires_user
from app.lib.i18n import N_
from app.lib.i18n import gettext as _
from app.lib.rendering import flash, form_errors, form_errors_html, fragments, is_htmx, redirect, render, toast_html

NOTE_FIELDS = ("professor_notes",)
# What the page of a refused link is titled.
PROBLEM_TITLES: dict[type[DomainError], str] = {
    LinkForAnotherAccount: N_("This link is for another account"),
    LinkInvalid: N_("This link is not valid"),
    LinkUsed: N_("This link can't be used any more"),
    LinkExpired: N_("This link has expired"),
}


async def booking_page(
    request: Request[User, Any, Any],
    bookings: BookingService,
    notes: NoteService,
    booking: Booking,
    *,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response[Any]:
    """One booking for either party: its facts, what the viewer may do with it, and the messages about it."""
    user, values = request.user, values or {}
    context: dict[str, Any] = {
        "booking": booking,
        "messages": await NotificationService(session=bookings.repository.session).for_booking(booking.id),
        "state": delivery_state,
        "delivery_label": delivery_label,
        "kind_label": kind_label,
        "errors": errors or {},
        "selected": values.get("slot_id", ""),
        "choices": await bookings.student_choices(user, booking) if booking.student_id == user.id else None,
        "professor_notes": None,
    }
    if booking.slot.professor_id == user.id:
        view = await notes.view(user, booking.id)
        saved = view.note.professor_notes if view.note else ""
        context["professor_notes"] = values.get("professor_notes", saved)
    return render(request, "pages/booking.html", context, status_code=status_code)


def moved_message(booking: Booking, timezone: str) -> str:
    when = describe_time(booking.start_time, booking.end_time, timezone)
    if booking.status == BookingStatus.PENDING:
        return _("Moved to %(when)s. The professor will confirm the new time.", when=when)
    return _("Moved to %(when)s.", when=when)


class BookingManagePages(Controller):
    """The booking page and what the signed-in parties do on it."""

    include_in_schema = False
    guards = [requires_user]
    dependencies = providers("bookings", "notes")

    @get("/bookings/{booking_id:uuid}", name="booking")
    async def booking_detail(
        self,
        request: Request[User, Any, Any],
        booking_id: FromPath[UUID],
        bookings: NamedDependency[BookingService],
        notes: NamedDependency[NoteService],
    ) -> Response[Any]:
        booking = await bookings.get_visible(request.user, booking_id)
        return await booking_page(request, bookings, notes, booking)

    @post("/bookings/{booking_id:uuid}/cancellation", guards=[requires_student], status_code=200)
    async def cancel(
        self, request: Request[User, Any, Any], booking_id: FromPath[UUID], bookings: NamedDependency[BookingService]
    ) -> Response[Any]:
        """The student cancels from the booking page (a refusal is a toast, or the error page without htmx)."""
        form = await read_form(request, ReasonForm)
        await bookings.cancel(request.user, booking_id, form.reason)
        flash(request, _("Booking cancelled. The professor is told."), "success")
        return redirect(request, f"/bookings/{booking_id}")

    @post("/bookings/{booking_id:uuid}/reschedule", guards=[requires_student], status_code=200)
    async def reschedule(
        self,
        request: Request[User, Any, Any],
        booking_id: FromPath[UUID],
        bookings: NamedDependency[BookingService],
        notes: NamedDependency[NoteService],
    ) -> Response[Any]:
        form = RescheduleForm()
        try:
            form = await read_form(request, RescheduleForm)
            moved = await bookings.reschedule(request.user, booking_id, form.target())
        except (ConflictError, FieldErrors) as exc:
            # The page again, the reason beside the list of times, the chosen time still chosen.
            booking = await bookings.get_visible(request.user, booking_id)
            errors = exc.errors if isinstance(exc, FieldErrors) else {"slot_id": exc.message}
            return await booking_page(
                request,
                bookings,
                notes,
                booking,
                errors=errors,
                values={"slot_id": form.slot_id},
                status_code=exc.status_code,
            )
        flash(request, moved_message(moved, request.user.timezone), "success")
        return redirect(request, f"/bookings/{moved.id}")

    @post("/bookings/{booking_id:uuid}/notes", guards=[requires_professor], status_code=200)
    async def save_notes(
        self,
        request: Request[User, Any, Any],
        booking_id: FromPath[UUID],
        bookings: NamedDependency[BookingService],
        notes: NamedDependency[NoteService],
    ) -> Response[Any]:
        form = NotesForm()
        try:
            form = await read_form(request, NotesForm)
            await notes.save(request.user, booking_id, {"professor_notes": form.professor_notes})
        except FieldErrors as exc:
            if is_htmx(request):
                return form_errors(request, NOTE_FIELDS, exc.errors)
            booking = await bookings.get_visible(request.user, booking_id)
            values = {"professor_notes": form.professor_notes}
            return await booking_page(
                request, bookings, notes, booking, errors=exc.errors, values=values, status_code=422
            )
        if is_htmx(request):
            return fragments(
                form_errors_html(request, NOTE_FIELDS, {}), toast_html(request, _("Notes saved."), "success")
            )
        flash(request, _("Notes saved."), "success")
        return redirect(request, f"/bookings/{booking_id}")


class EmailActions(Controller):
    """The signed links of booking e-mails. A GET shows the booking and one button; only the POST acts.

    Signed out, the link is the authority; signed in as someone else, it is refused (and nothing is shown).
    """

    path = "/actions"
    include_in_schema = False
    dependencies = providers("bookings")

    @get("/{token:str}")
    async def show(
        self, request: Request[Any, Any, Any], token: FromPath[str], bookings: NamedDependency[BookingService]
    ) -> Response[Any]:
        try:
            link = read(token, get_settings().secret_key)
            actor, booking = await bookings.for_link(link, request.scope.get("user"))
        except DomainError as exc:
            return problem_page(request, exc)
        return await self._ask(request, bookings, link, token, actor, booking)

    @post("/{token:str}", status_code=200)
    async def act(
        self, request: Request[Any, Any, Any], token: FromPath[str], bookings: NamedDependency[BookingService]
    ) -> Response[Any]:
        try:
            link = read(token, get_settings().secret_key)
            actor, booking = await bookings.for_link(link, request.scope.get("user"))
        except DomainError as exc:
            return problem_page(request, exc)
        typed: dict[str, str] = {}
        try:
            done, message = await self._perform(request, bookings, link, actor, typed)
        except LinkUsed as exc:
            return problem_page(request, exc)
        except (FieldErrors, ConflictError) as exc:
            if isinstance(exc, ConflictError) and link.action != LinkAction.MANAGE:
                return problem_page(request, exc)
            # The page again, with what was typed or chosen, and the reason beside its field.
            errors = exc.errors if isinstance(exc, FieldErrors) else {"slot_id": exc.message}
            booking = await bookings.get_visible(actor, booking.id)
            return await self._ask(
                request, bookings, link, token, actor, booking, errors=errors, typed=typed, status_code=exc.status_code
            )
        except DomainError as exc:
            return problem_page(request, exc)
        context = {"outcome": message, "booking": done, "zone": actor.timezone, "actor": actor}
        return render(request, "pages/email_action.html", context)

    async def _perform(
        self,
        request: Request[Any, Any, Any],
        bookings: BookingService,
        link: ActionLink,
        actor: User,
        typed: dict[str, str],
    ) -> tuple[Booking, str]:
        """Do what the link is for, only on the version of the booking it was made for."""
        if link.action == LinkAction.CONFIRM:
            booking = await bookings.confirm(actor, link.booking_id, sequence=link.sequence)
            return booking, _("Confirmed. %(student)s is told.", student=booking.student.full_name)
        if link.action == LinkAction.MANAGE:
            choice = await read_form(request, RescheduleForm)
            typed["slot_id"] = choice.slot_id
            try:
                moved = await bookings.reschedule(actor, link.booking_id, choice.target(), sequence=link.sequence)
            except NotFound as exc:  # the link's booking was checked: it is the time chosen that is gone
                raise FieldErrors.single("slot_id", _("Choose one of the free times listed.")) from exc
            return moved, moved_message(moved, actor.timezone) + " A new e-mail tells you how to manage it."
        form = await read_form(request, ReasonForm)
        typed["reason"] = form.reason
        if link.action == LinkAction.DECLINE:
            booking = await bookings.decline(actor, link.booking_id, form.reason, sequence=link.sequence)
            return booking, _("Declined. %(student)s is told, with your reason.", student=booking.student.full_name)
        booking = await bookings.cancel(actor, link.booking_id, form.reason, sequence=link.sequence)
        return booking, _("Cancelled. %(professor)s is told.", professor=booking.slot.professor.full_name)

    async def _ask(
        self,
        request: Request[Any, Any, Any],
        bookings: BookingService,
        link: ActionLink,
        token: str,
        actor: User,
        booking: Booking,
        *,
        errors: Mapping[str, str] | None = None,
        typed: Mapping[str, str] | None = None,
        status_code: int = 200,
    ) -> Response[Any]:
        context: dict[str, Any] = {
            "action": link.action.value,
            "token": token,
            "booking": booking,
            "actor": actor,
            "zone": actor.timezone,
            "errors": errors or {},
            "typed": typed or {},
            "choices": None,
            "cancel_url": None,
        }
        if link.action == LinkAction.MANAGE:
            context["choices"] = await bookings.student_choices(actor, booking)
            # Cancelling is a page (and a button) of its own, for the same person, version and time.
            cancel = ActionLink(LinkAction.CANCEL, booking.id, actor.id, booking.sequence, link.expires_at)
            context["cancel_url"] = f"/actions/{sign(cancel, get_settings().secret_key)}"
        return render(request, "pages/email_action.html", context, status_code=status_code)


def problem_page(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    """Why a link does nothing (invalid, for another account, expired, used): nothing about the booking is shown."""
    title = _(PROBLEM_TITLES.get(type(exc), N_("This can't be done")))
    context = {"problem": exc.message, "problem_title": title, "status_code": exc.status_code}
    return render(request, "pages/email_action.html", context, status_code=exc.status_code)
