"""Server-Sent Events: the live week grid and the live dashboard, fed by the professor's channel."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import anyio
from litestar import Controller, Request, get
from litestar.channels import ChannelsPlugin, Subscriber
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlalchemy import select

from app.domain.accounts.deps import provide_users
from app.domain.accounts.models import User
from app.domain.accounts.services import TIMEZONES, UserService
from app.domain.consultations.grid import SlotCell
from app.domain.consultations.models import (
    ACTIVE,
    Booking,
    BookingStatus,
    ConsultationSlot,
    WaitlistEntry,
    WaitlistStatus,
)
from app.domain.consultations.views import cell_html, professor_or_404, slot_rows_context
from app.lib.clock import utcnow
from app.lib.formatting import local_time
from app.lib.guards import requires_professor, requires_user
from app.lib.i18n import current_locale
from app.lib.i18n import gettext as _
from app.lib.live import LiveEvent, professor_channel
from app.lib.metrics import SSE_STREAMS
from app.lib.rendering import render_html
from app.lib.unit_of_work import unit_of_work

KEEPALIVE_SECONDS = 15
KEEPALIVE = b""
# New slots, or a gap in what we heard (the listener reconnected): the client re-fetches what it shows.
REFETCH_KINDS = ("slots_added", "resync")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass(frozen=True)
class SlotSnapshot:
    """A slot as it is after an event, shared by every stream of this process (one query per event, not per viewer)."""

    slot: ConsultationSlot
    booked: int  # bookings and held places
    students: dict[UUID, str]  # student -> status of their active booking
    booking: Booking | None
    offers: dict[UUID, datetime] = field(default_factory=dict)  # student -> hold end
    waiting: frozenset[UUID] = frozenset()
    rendered: dict[tuple[Any, ...], str] = field(default_factory=dict)

    def cell_html(self, request: Request[User, Any, Any], viewer: User, timezone: str) -> str:
        """The cell as this viewer sees it; viewers who see the same cell (in the same language) share one rendering."""
        mine, offer, waiting = self.students.get(viewer.id), self.offers.get(viewer.id), viewer.id in self.waiting
        key = (mine, offer, waiting, timezone, viewer.is_student, current_locale())
        if key not in self.rendered:
            cell = SlotCell(
                slot=self.slot,
                booked=self.booked,
                mine=mine,
                now=utcnow(),
                timezone=timezone,
                professor_timezone=self.slot.professor.timezone,
                offer_until=offer,
                waiting=waiting,
            )
            self.rendered[key] = cell_html(request, cell, oob=False)
        return self.rendered[key]


class SnapshotCache:
    """Per-process memo of the latest events' snapshots: 200 open grids cost one database round trip."""

    def __init__(self, size: int = 256) -> None:
        self._tasks: OrderedDict[str, asyncio.Task[SlotSnapshot | None]] = OrderedDict()
        self._size = size

    async def get(self, event: LiveEvent) -> SlotSnapshot | None:
        task = self._tasks.get(event.event_id)
        if task is None:
            task = asyncio.ensure_future(self._load(event))
            self._tasks[event.event_id] = task
            while len(self._tasks) > self._size:
                self._tasks.popitem(last=False)
        return await asyncio.shield(task)

    @staticmethod
    async def _load(event: LiveEvent) -> SlotSnapshot | None:
        if event.slot_id is None:
            return None
        async with unit_of_work() as unit:
            session = unit.session
            slot = await session.get(ConsultationSlot, UUID(event.slot_id))
            if slot is None:
                return None
            rows = await session.execute(
                select(Booking.student_id, Booking.status).where(Booking.slot_id == slot.id, Booking.status.in_(ACTIVE))
            )
            students = {student: status for student, status in rows.all()}
            booking = None
            if event.booking_id:
                booking = await session.get(Booking, UUID(event.booking_id))
            queue = (
                await session.execute(
                    select(WaitlistEntry.student_id, WaitlistEntry.status, WaitlistEntry.hold_expires_at).where(
                        (WaitlistEntry.slot_id == slot.id) | (WaitlistEntry.offered_slot_id == slot.id),
                        WaitlistEntry.status.in_((WaitlistStatus.WAITING.value, WaitlistStatus.OFFERED.value)),
                    )
                )
            ).all()
        now = utcnow()
        offers = {student: hold for student, status, hold in queue if status == "offered" and hold and hold > now}
        waiting = frozenset(student for student, status, _ in queue if status == "waiting")
        return SlotSnapshot(
            slot=slot,
            booked=len(students) + len(offers),
            students=students,
            booking=booking,
            offers=offers,
            waiting=waiting,
        )


snapshots = SnapshotCache()


async def events_of(
    channels: ChannelsPlugin, channel: str, *, resumed_after: str | None = None
) -> AsyncIterator[LiveEvent | None]:
    """The channel's events, with None first (subscribed: the client may rely on it) and every
    KEEPALIVE_SECONDS of silence. A client coming back (it sends the Last-Event-ID of the last event it saw) missed
    what happened meanwhile, which is not kept: it is told to re-fetch (a resync event) right after subscribing.

    The unsubscribe runs shielded: a client that disconnects cancels this generator, and a cancelled
    unsubscribe on the PostgreSQL backends leaves the channel deaf for every later subscriber.
    """
    subscriber: Subscriber = await channels.subscribe([channel])

    async def tick() -> None:
        # Keepalives ride the subscriber's own queue: no timer per event, nothing to cancel mid-read.
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            subscriber.put_nowait(KEEPALIVE)

    ticker = asyncio.create_task(tick())
    SSE_STREAMS.inc()
    try:
        yield None
        if resumed_after is not None:
            yield LiveEvent(kind="resync", professor_id=channel.removeprefix("professor_"), event_id=uuid4().hex)
        async for raw in subscriber.iter_events():
            yield None if raw == KEEPALIVE else LiveEvent.decode(raw)
    finally:
        SSE_STREAMS.dec()
        ticker.cancel()
        with anyio.CancelScope(shield=True):
            await channels.unsubscribe(subscriber)


def keepalive() -> ServerSentEventMessage:
    return ServerSentEventMessage(comment="keepalive", data=None)


def message(event: LiveEvent, name: str, data: str) -> ServerSentEventMessage:
    """An event of the stream, carrying the live event's id: a reconnecting client sends it back (Last-Event-ID)."""
    return ServerSentEventMessage(event=name, data=data, id=event.event_id)


def last_event_id(request: Request[Any, Any, Any]) -> str | None:
    return request.headers.get("last-event-id")


class LiveStreams(Controller):
    include_in_schema = False
    dependencies = {"users": Provide(provide_users)}

    @get("/professors/{professor_id:uuid}/events", guards=[requires_user])
    async def grid_events(
        self,
        request: Request[User, Any, Any],
        professor_id: FromPath[UUID],
        users: NamedDependency[UserService],
        channels: NamedDependency[ChannelsPlugin],
        tz: FromQuery[str | None] = None,
    ) -> ServerSentEvent:
        professor = await professor_or_404(users, professor_id)
        viewer = request.user
        zone = tz if tz in TIMEZONES else viewer.timezone  # the zone this grid shows (the viewer may switch it)
        told: set[tuple[UUID, datetime]] = set()  # offers this viewer was told about in a toast
        # The request's unit of work ends as the stream's response starts: a long stream holds no connection.

        async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
            channel = professor_channel(professor.id)
            async for event in events_of(channels, channel, resumed_after=last_event_id(request)):
                if event is None:
                    yield keepalive()
                elif event.kind in REFETCH_KINDS:
                    yield message(event, "week-changed", "refresh")
                elif (snapshot := await snapshots.get(event)) is not None:
                    yield message(event, f"slot-{snapshot.slot.id}", snapshot.cell_html(request, viewer, zone))
                    if (hold := snapshot.offers.get(viewer.id)) and (snapshot.slot.id, hold) not in told:
                        told.add((snapshot.slot.id, hold))
                        yield message(event, "toast", offer_toast(request, snapshot, hold, zone))

        return ServerSentEvent(stream(), headers=SSE_HEADERS)

    @get("/dashboard/events", guards=[requires_professor])
    async def dashboard_events(
        self, request: Request[User, Any, Any], channels: NamedDependency[ChannelsPlugin]
    ) -> ServerSentEvent:
        professor = request.user

        async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
            channel = professor_channel(professor.id)
            async for event in events_of(channels, channel, resumed_after=last_event_id(request)):
                if event is None:
                    yield keepalive()
                    continue
                if event.kind in REFETCH_KINDS:
                    yield message(event, "slots-changed", "refresh")
                    continue
                snapshot = await snapshots.get(event)
                if snapshot is None:
                    continue
                for name, html in await dashboard_fragments(request, professor, snapshot, event):
                    yield message(event, name, html)

        return ServerSentEvent(stream(), headers=SSE_HEADERS)


async def dashboard_fragments(
    request: Request[User, Any, Any], professor: User, snapshot: SlotSnapshot, event: LiveEvent
) -> list[tuple[str, str]]:
    """The changed slot row, the pending list, and a toast when a student booked or cancelled."""
    slot = snapshot.slot
    async with unit_of_work() as unit:
        rows, active = await slot_rows_context(unit.session, professor, [slot])
    pending = [b for b in active if b.status == BookingStatus.PENDING]
    fragments = [
        (f"slot-row-{slot.id}", render_html(request, "components/dashboard_slot_row.html", {**rows, "slot": slot})),
        ("pending", render_html(request, "components/pending_list.html", {"pending": pending})),
    ]
    booking = snapshot.booking
    if booking is not None and booking.student_id != professor.id:
        message = toast_message(event, booking, professor.timezone)
        if message:
            fragments.append(
                ("toast", render_html(request, "components/toast.html", {"message": message, "level": "info"}))
            )
    return fragments


def offer_toast(request: Request[User, Any, Any], snapshot: SlotSnapshot, hold: datetime, zone: str) -> str:
    when = local_time(snapshot.slot.start_time, zone, "day_time")
    message = _(
        "A place is free for you: %(when)s. It is held until %(until)s.",
        when=when,
        until=local_time(hold, zone, "time"),
    )
    return render_html(request, "components/toast.html", {"message": message, "level": "success"})


def toast_message(event: LiveEvent, booking: Booking, timezone: str) -> str | None:
    when = local_time(booking.start_time, timezone, "day_time")
    if event.kind == "booking_created":
        return _("New booking: %(student)s, %(when)s.", student=booking.student.full_name, when=when)
    if booking.status == BookingStatus.CANCELLED and booking.cancelled_by == booking.student_id:
        return _("%(student)s cancelled %(when)s.", student=booking.student.full_name, when=when)
    return None
