"""The slots and bookings JSON API (bearer tokens; someone else's object is a 404)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy import RowMapping

from app.config import get_settings
from app.domain.accounts.models import User
from app.domain.accounts.services import UserService
from app.domain.consultations.bookings import BookingService
from app.domain.consultations.capacity import places_on
from app.domain.consultations.deps import providers
from app.domain.consultations.models import Booking, BookingStatus, ConsultationSlot, SlotStatus, WaitlistEntry
from app.domain.consultations.notes import NoteService, NoteView
from app.domain.consultations.schemas import (
    BookingCancelIn,
    BookingIn,
    BookingOut,
    BookingPage,
    BulkSlotsIn,
    BulkSlotsOut,
    NoteIn,
    NoteOut,
    RescheduleIn,
    SlotCancelIn,
    SlotClash,
    SlotIn,
    SlotOut,
    SlotPage,
    SlotPatch,
    WaitlistOut,
    WaitlistPage,
    WindowIn,
)
from app.domain.consultations.slots import SlotService
from app.domain.consultations.views import professor_or_404
from app.domain.consultations.waitlist import WaitlistService
from app.domain.google.calendar_api import busy_between
from app.lib.errors import NotFound
from app.lib.guards import requires_professor, requires_student, requires_user
from app.lib.i18n import gettext as _

Limit = Annotated[int, QueryParameter(ge=1, le=500)]
# Bounded so no offset can overflow the database's integers.
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000)]
SlotStatusFilter = Annotated[SlotStatus | None, QueryParameter()]
BookingStatusFilter = Annotated[BookingStatus | None, QueryParameter()]


def slot_out(slot: ConsultationSlot, booked_count: int, course_ids: list[UUID] | None = None) -> SlotOut:
    return SlotOut(
        id=slot.id,
        professor_id=slot.professor_id,
        start_time=slot.start_time,
        end_time=slot.end_time,
        capacity=slot.capacity,
        status=slot.status,
        location=slot.location,
        meeting_url=slot.meeting_url,
        title=slot.title,
        notes=slot.notes,
        booked_count=booked_count,
        series_id=slot.series_id,
        course_ids=course_ids if course_ids is not None else [course.id for course in slot.courses],
    )


LISTED_FIELDS = [name for name in SlotOut.__struct_fields__ if name != "course_ids"]


def listed_out(row: RowMapping) -> SlotOut:
    """A row of SlotService.list_page."""
    return SlotOut(**{name: row[name] for name in LISTED_FIELDS}, course_ids=list(row["course_ids"] or ()))


def booking_out(booking: Booking) -> BookingOut:
    return BookingOut(
        id=booking.id,
        slot_id=booking.slot_id,
        student_id=booking.student_id,
        professor_id=booking.slot.professor_id,
        topic=booking.topic,
        status=booking.status,
        created_at=booking.created_at,
        start_time=booking.start_time,
        end_time=booking.end_time,
        cancelled_by=booking.cancelled_by,
        cancel_reason=booking.cancel_reason,
    )


def note_out(view: NoteView) -> NoteOut:
    note = view.note
    if view.viewer_is_professor:
        return NoteOut(
            booking_id=view.booking.id,
            professor_notes=note.professor_notes if note else "",
            student_feedback=None,
            rating=None,
            feedback_signed=None,
            editable_until=None,
        )
    return NoteOut(
        booking_id=view.booking.id,
        professor_notes=None,
        student_feedback=note.student_feedback if note else "",
        rating=note.rating if note else None,
        feedback_signed=note.feedback_signed if note else False,
        editable_until=view.editable_until,
    )


async def slots_out(slots: SlotService, rows: list[ConsultationSlot]) -> list[SlotOut]:
    places = await places_on(slots.repository.session, (slot.id for slot in rows))
    return [slot_out(slot, places[slot.id].booked if slot.id in places else 0) for slot in rows]


async def entry_out(waitlist: WaitlistService, entry: WaitlistEntry) -> WaitlistOut:
    return WaitlistOut(
        id=entry.id,
        slot_id=entry.slot_id,
        student_id=entry.student_id,
        professor_id=entry.professor_id,
        position=await waitlist.position(entry),
        status=entry.status,
        window_start=entry.window_start,
        window_end=entry.window_end,
        offered_slot_id=entry.offered_slot_id,
        hold_expires_at=entry.hold_expires_at,
    )


class SlotApi(Controller):
    path = "/api/v1/slots"
    tags = ["slots"]
    guards = [requires_user]
    dependencies = providers("slots", "bookings")

    @get("/", summary="List slots", description="Filter by professor, time window (overlapping) and status.")
    async def list_slots(
        self,
        slots: NamedDependency[SlotService],
        professor_id: FromQuery[UUID | None] = None,
        start: FromQuery[datetime | None] = None,
        end: FromQuery[datetime | None] = None,
        status: SlotStatusFilter = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> SlotPage:
        rows, total = await slots.list_page(
            professor_id=professor_id,
            start=start,
            end=end,
            status=status.value if status else None,
            limit=limit,
            offset=offset,
        )
        items = [listed_out(row) for row in rows]
        return SlotPage(items=items, total=total, limit=limit, offset=offset)

    @post("/", guards=[requires_professor], status_code=HTTP_201_CREATED, summary="Publish one slot")
    async def create_slot(
        self, request: Request[User, Any, Any], data: JSONBody[SlotIn], slots: NamedDependency[SlotService]
    ) -> SlotOut:
        values = {name: getattr(data, name) for name in data.__struct_fields__}
        return slot_out(await slots.create_slot(request.user, values), 0)

    @post(
        "/bulk", guards=[requires_professor], status_code=HTTP_201_CREATED, summary="Generate slots from a weekly rule"
    )
    async def generate(
        self, request: Request[User, Any, Any], data: JSONBody[BulkSlotsIn], slots: NamedDependency[SlotService]
    ) -> BulkSlotsOut:
        busy = await busy_between(
            slots.repository.session, get_settings(), request.user, data.start_date, data.end_date
        )
        result = await slots.generate_slots(
            request.user, data, all_or_nothing=data.all_or_nothing, busy_periods=busy, keep_busy=data.keep_busy
        )
        return BulkSlotsOut(
            items=[slot_out(slot, 0) for slot in result.created],
            total=len(result.created),
            clashes=[
                SlotClash(start_time=start, end_time=end, clashes_with=clash.id) for start, end, clash in result.clashes
            ],
            skipped_past=result.skipped_past,
            skipped_busy=[start for start, _ in result.busy],
        )

    @get("/{slot_id:uuid}", summary="One slot")
    async def get_slot(self, slot_id: FromPath[UUID], slots: NamedDependency[SlotService]) -> SlotOut:
        slot = await slots.get_one_or_none(id=slot_id)
        if slot is None:
            raise NotFound(_("Slot not found."))
        return (await slots_out(slots, [slot]))[0]

    @patch("/{slot_id:uuid}", guards=[requires_professor], summary="Change one of your slots")
    async def update_slot(
        self,
        request: Request[User, Any, Any],
        slot_id: FromPath[UUID],
        data: JSONBody[SlotPatch],
        slots: NamedDependency[SlotService],
    ) -> SlotOut:
        slot = await slots.update_slot(request.user, slot_id, data.changes())
        return (await slots_out(slots, [slot]))[0]

    @delete(
        "/{slot_id:uuid}",
        guards=[requires_professor],
        status_code=HTTP_200_OK,
        summary="Cancel one of your slots",
        description="Its active bookings are cancelled and the students told.",
    )
    async def cancel_slot(
        self,
        request: Request[User, Any, Any],
        slot_id: FromPath[UUID],
        slots: NamedDependency[SlotService],
        data: JSONBody[SlotCancelIn | None] = None,
    ) -> SlotOut:
        slot = await slots.cancel_slot(request.user, slot_id, data.reason if data else "")
        return slot_out(slot, 0)

    @post("/{slot_id:uuid}/bookings", guards=[requires_student], status_code=HTTP_201_CREATED, summary="Book a place")
    async def book(
        self,
        request: Request[User, Any, Any],
        slot_id: FromPath[UUID],
        bookings: NamedDependency[BookingService],
        data: JSONBody[BookingIn | None] = None,
    ) -> BookingOut:
        return booking_out(await bookings.book_slot(request.user, slot_id, data.topic if data else ""))


class BookingApi(Controller):
    path = "/api/v1/bookings"
    tags = ["bookings"]
    guards = [requires_user]
    dependencies = providers("bookings", "notes")

    @get("/", summary="Your bookings (student) or the bookings on your slots (professor)")
    async def list_bookings(
        self,
        request: Request[User, Any, Any],
        bookings: NamedDependency[BookingService],
        status: BookingStatusFilter = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> BookingPage:
        chosen = status.value if status else None
        rows = await bookings.list_for(request.user, status=chosen, limit=limit, offset=offset)
        total = await bookings.count_for(request.user, status=chosen)
        return BookingPage(items=[booking_out(b) for b in rows], total=total, limit=limit, offset=offset)

    @get("/{booking_id:uuid}", summary="One booking (its student or professor)")
    async def get_booking(
        self, request: Request[User, Any, Any], booking_id: FromPath[UUID], bookings: NamedDependency[BookingService]
    ) -> BookingOut:
        return booking_out(await bookings.get_visible(request.user, booking_id))

    @post(
        "/{booking_id:uuid}/confirm",
        guards=[requires_professor],
        status_code=HTTP_200_OK,
        summary="Confirm a pending booking",
    )
    async def confirm(
        self, request: Request[User, Any, Any], booking_id: FromPath[UUID], bookings: NamedDependency[BookingService]
    ) -> BookingOut:
        return booking_out(await bookings.confirm(request.user, booking_id))

    @post("/{booking_id:uuid}/cancel", status_code=HTTP_200_OK, summary="Cancel (student: own, before the deadline)")
    async def cancel(
        self,
        request: Request[User, Any, Any],
        booking_id: FromPath[UUID],
        bookings: NamedDependency[BookingService],
        data: JSONBody[BookingCancelIn | None] = None,
    ) -> BookingOut:
        return booking_out(await bookings.cancel(request.user, booking_id, data.reason if data else ""))

    @post(
        "/{booking_id:uuid}/decline",
        guards=[requires_professor],
        status_code=HTTP_200_OK,
        summary="Decline a pending request (with a reason for the student)",
    )
    async def decline(
        self,
        request: Request[User, Any, Any],
        booking_id: FromPath[UUID],
        bookings: NamedDependency[BookingService],
        data: JSONBody[BookingCancelIn | None] = None,
    ) -> BookingOut:
        return booking_out(await bookings.decline(request.user, booking_id, data.reason if data else ""))

    @post(
        "/{booking_id:uuid}/reschedule",
        guards=[requires_student],
        status_code=HTTP_201_CREATED,
        summary="Move your booking to another free slot of the same professor",
        description=(
            "One step: the current place is kept until the new one is taken, then the current booking is cancelled"
            " ('Moved to ...'). The new booking follows the professor's confirmation rule. 409 when the new slot is"
            " full, taken or too late, 403 when the professor does not let students move bookings."
        ),
    )
    async def reschedule(
        self,
        request: Request[User, Any, Any],
        booking_id: FromPath[UUID],
        data: JSONBody[RescheduleIn],
        bookings: NamedDependency[BookingService],
    ) -> BookingOut:
        return booking_out(await bookings.reschedule(request.user, booking_id, data.slot_id))

    @post("/{booking_id:uuid}/complete", guards=[requires_professor], status_code=HTTP_200_OK, summary="Mark completed")
    async def complete(
        self, request: Request[User, Any, Any], booking_id: FromPath[UUID], bookings: NamedDependency[BookingService]
    ) -> BookingOut:
        return booking_out(await bookings.mark_outcome(request.user, booking_id, BookingStatus.COMPLETED))

    @post("/{booking_id:uuid}/no-show", guards=[requires_professor], status_code=HTTP_200_OK, summary="Mark no-show")
    async def no_show(
        self, request: Request[User, Any, Any], booking_id: FromPath[UUID], bookings: NamedDependency[BookingService]
    ) -> BookingOut:
        return booking_out(await bookings.mark_outcome(request.user, booking_id, BookingStatus.NO_SHOW))

    @get("/{booking_id:uuid}/note", summary="The note on a booking, as this party may see it")
    async def get_note(
        self, request: Request[User, Any, Any], booking_id: FromPath[UUID], notes: NamedDependency[NoteService]
    ) -> NoteOut:
        return note_out(await notes.view(request.user, booking_id))

    @put(
        "/{booking_id:uuid}/note",
        summary="Write the note",
        description="Professor: private notes. Student: rating 1-5 and feedback once completed (7 days to edit).",
    )
    async def put_note(
        self,
        request: Request[User, Any, Any],
        booking_id: FromPath[UUID],
        data: JSONBody[NoteIn],
        notes: NamedDependency[NoteService],
    ) -> NoteOut:
        return note_out(await notes.save(request.user, booking_id, data.changes()))


class WaitlistApi(Controller):
    path = "/api/v1"
    tags = ["waitlist"]
    guards = [requires_student]
    dependencies = providers("waitlist", "users")

    @post("/slots/{slot_id:uuid}/waitlist", status_code=HTTP_201_CREATED, summary="Join a full slot's waitlist")
    async def join(
        self, request: Request[User, Any, Any], slot_id: FromPath[UUID], waitlist: NamedDependency[WaitlistService]
    ) -> WaitlistOut:
        return await entry_out(waitlist, await waitlist.join_slot(request.user, slot_id))

    @delete("/slots/{slot_id:uuid}/waitlist", status_code=HTTP_204_NO_CONTENT, summary="Leave a slot's waitlist")
    async def leave(
        self, request: Request[User, Any, Any], slot_id: FromPath[UUID], waitlist: NamedDependency[WaitlistService]
    ) -> None:
        await waitlist.leave(request.user, slot_id)

    @post(
        "/professors/{professor_id:uuid}/waitlist",
        status_code=HTTP_201_CREATED,
        summary="Wait for any free slot of a professor in a time window",
    )
    async def join_window(
        self,
        request: Request[User, Any, Any],
        professor_id: FromPath[UUID],
        data: JSONBody[WindowIn],
        waitlist: NamedDependency[WaitlistService],
        users: NamedDependency[UserService],
    ) -> WaitlistOut:
        professor = await professor_or_404(users, professor_id)
        return await entry_out(waitlist, await waitlist.join_window(request.user, professor, data.start, data.end))

    @get("/waitlist", summary="Your waitlist entries, with position and any offer's expiry")
    async def mine(self, request: Request[User, Any, Any], waitlist: NamedDependency[WaitlistService]) -> WaitlistPage:
        entries = await waitlist.entries_of(request.user)
        items = [await entry_out(waitlist, entry) for entry in entries]
        return WaitlistPage(items=items, total=len(items), limit=200, offset=0)

    @post("/waitlist/{entry_id:uuid}/accept", status_code=HTTP_201_CREATED, summary="Take an offered place")
    async def accept(
        self, request: Request[User, Any, Any], entry_id: FromPath[UUID], waitlist: NamedDependency[WaitlistService]
    ) -> BookingOut:
        return booking_out(await waitlist.accept(request.user, entry_id))

    @post("/waitlist/{entry_id:uuid}/decline", status_code=HTTP_200_OK, summary="Pass an offered place on")
    async def decline(
        self, request: Request[User, Any, Any], entry_id: FromPath[UUID], waitlist: NamedDependency[WaitlistService]
    ) -> WaitlistOut:
        return await entry_out(waitlist, await waitlist.decline(request.user, entry_id))
