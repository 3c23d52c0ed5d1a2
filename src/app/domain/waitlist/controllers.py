"""The waitlist over HTTP: JSON API, grid buttons, and the accept link sent by e-mail."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from advanced_alchemy.extensions.litestar.providers import create_service_provider
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from app.domain.accounts.deps import provide_users
from app.domain.accounts.models import User
from app.domain.accounts.services import UserService
from app.domain.consultations.api import booking_out
from app.domain.consultations.controllers import professor_or_404, slot_cell_html
from app.domain.consultations.schemas import BookingOut
from app.domain.consultations.services import SlotService
from app.domain.waitlist.models import WaitlistEntry
from app.domain.waitlist.schemas import WaitlistOut, WaitlistPage, WindowIn
from app.domain.waitlist.services import WaitlistService
from app.lib.auth import requires_student
from app.lib.errors import ConflictError, NotFound
from app.lib.rendering import render, toast_html

provide_waitlist = create_service_provider(WaitlistService)
DEPENDENCIES = {"waitlist": Provide(provide_waitlist), "users": Provide(provide_users)}


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


class WaitlistApi(Controller):
    path = "/api/v1"
    tags = ["waitlist"]
    guards = [requires_student]
    dependencies = DEPENDENCIES

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


class WaitlistPages(Controller):
    include_in_schema = False
    guards = [requires_student]
    dependencies = DEPENDENCIES

    async def _cell(
        self, request: Request[User, Any, Any], waitlist: WaitlistService, slot_id: UUID, message: str
    ) -> Response[Any]:
        slots = SlotService(session=waitlist.repository.session)
        html = await slot_cell_html(request, slots, slot_id, oob=False) + toast_html(request, message, "success")
        return Response(html, media_type="text/html")

    @post("/slots/{slot_id:uuid}/waitlist", status_code=200)
    async def join(
        self, request: Request[User, Any, Any], slot_id: FromPath[UUID], waitlist: NamedDependency[WaitlistService]
    ) -> Response[Any]:
        entry = await waitlist.join_slot(request.user, slot_id)
        position = await waitlist.position(entry)
        return await self._cell(request, waitlist, slot_id, f"You are number {position} on the waitlist.")

    @post("/slots/{slot_id:uuid}/waitlist/leave", status_code=200)
    async def leave(
        self, request: Request[User, Any, Any], slot_id: FromPath[UUID], waitlist: NamedDependency[WaitlistService]
    ) -> Response[Any]:
        await waitlist.leave(request.user, slot_id)
        return await self._cell(request, waitlist, slot_id, "You left the waitlist.")

    @post("/slots/{slot_id:uuid}/waitlist/accept", status_code=200)
    async def accept_in_grid(
        self, request: Request[User, Any, Any], slot_id: FromPath[UUID], waitlist: NamedDependency[WaitlistService]
    ) -> Response[Any]:
        entry = await waitlist.get_one_or_none(offered_slot_id=slot_id, student_id=request.user.id, status="offered")
        if entry is None:
            raise ConflictError("There is no open offer for you on this slot.")
        await waitlist.accept(request.user, entry.id)
        return await self._cell(request, waitlist, slot_id, "It's yours: booked.")

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
            problem = "This offer does not exist, or it is not yours."
        elif entry.status != "offered":
            problem = "This offer is no longer open (it was used, declined or has expired)."
        elif entry.offer_nonce != t:
            problem = "This link is not valid (it may have been used already)."
        context = {"entry": entry, "token": t, "problem": problem}
        return render(request, "pages/waitlist_accept.html", context, status_code=200 if problem is None else 409)

    @post("/waitlist/{entry_id:uuid}/accept", status_code=200)
    async def accept_link(
        self, request: Request[User, Any, Any], entry_id: FromPath[UUID], waitlist: NamedDependency[WaitlistService]
    ) -> Response[Any]:
        form = dict(await request.form())
        try:
            booking = await waitlist.accept(request.user, entry_id, nonce=str(form.get("t", "")))
        except (ConflictError, NotFound) as exc:
            context = {"entry": None, "token": "", "problem": exc.message}
            return render(request, "pages/waitlist_accept.html", context, status_code=exc.status_code)
        return render(request, "pages/waitlist_accept.html", {"entry": None, "booking": booking, "problem": None})
