"""What the consultations pages show, assembled once for the site's pages, the embedded views and live updates."""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID

from litestar import Request
from markupsafe import Markup
from sqlalchemy import bindparam, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.accounts.models import Profile, User, UserType, person_name
from app.domain.accounts.services import TIMEZONES, UserService
from app.domain.accounts.verification import publishing_problem
from app.domain.consultations.bookings import BookingService
from app.domain.consultations.capacity import places_on
from app.domain.consultations.courses import CourseService
from app.domain.consultations.grid import (
    SlotCell,
    SlotGrid,
    WeekProfessor,
    assemble_week,
    build_cells,
    week_frame,
    week_query,
)
from app.domain.consultations.models import Booking, BookingStatus, ConsultationSlot, SlotStatus
from app.domain.consultations.notes import rating_columns, shown_rating
from app.domain.consultations.slots import SlotService, slot_filters
from app.domain.consultations.waitlist import WaitlistService
from app.lib.clock import today_in, utcnow
from app.lib.database import run_core
from app.lib.errors import NotFound
from app.lib.i18n import gettext as _
from app.lib.rendering import RenderingMemo


async def professor_or_404(users: UserService, professor_id: UUID) -> User:
    professor = await users.get_one_or_none(id=professor_id, is_active=True)
    if professor is None or not professor.is_professor:
        raise NotFound(_("Professor not found."))
    return professor


@lru_cache(maxsize=1)
def professor_query() -> Any:
    """An active professor's columns for their week's page, with their rating's figures (built once, run with the
    id)."""
    average, raters = rating_columns(User.id)
    return (
        select(
            User.id,
            User.first_name,
            User.last_name,
            User.username,
            User.erased_at,
            User.timezone,
            func.coalesce(Profile.department, "").label("department"),
            func.coalesce(Profile.bio, "").label("bio"),
            average.label("average"),
            raters.label("raters"),
        )
        .outerjoin(Profile, Profile.user_id == User.id)
        .where(
            User.id == bindparam("professor"),
            User.is_active.is_(True),
            User.user_type == UserType.PROFESSOR.value,
        )
    )


@lru_cache(maxsize=2)
def professor_week_query(student: bool) -> Any:
    """The professor (`professor_query`) beside each of their slots of the week (`week_query`), or beside none when
    the week has no slot: a week page's one question (built once per kind of viewer)."""
    # OFFSET 0 keeps PostgreSQL from pulling the professor's row into the join, which would work out their rating
    # once per slot (ten times the cost of the two questions asked apart).
    professor = professor_query().offset(0).subquery("professor")
    week = week_query(student).subquery("week")
    return select(professor, week).select_from(professor.outerjoin(week, true())).order_by(week.c.start_time)


PROFESSOR_WIDTH = len(professor_query().selected_columns)


async def week_page_context(
    session: AsyncSession,
    professor_id: UUID,
    viewer: User,
    week: date | None,
    timezone: str | None = None,
) -> dict[str, Any]:
    """A professor's week grid as `viewer` sees it (the site's page and the embedded one alike), times in the
    viewer's zone or in `timezone` when they switched to another one for this view; an active professor, else
    NotFound."""
    frame = week_frame(viewer, week, timezone if timezone in TIMEZONES else None)
    parameters = {**frame.parameters, "professor": professor_id}
    rows = (await run_core(session, professor_week_query(frame.student), parameters)).all()
    if not rows:
        raise NotFound(_("Professor not found."))
    row = rows[0]
    name = person_name(row.first_name, row.last_name, row.username, erased=row.erased_at is not None, professor=True)
    professor = WeekProfessor(
        id=row.id,
        full_name=name,
        department=row.department,
        bio=row.bio,
        timezone=row.timezone,
        first_name=row.first_name,
        username=row.username,
    )
    week_rows = [row[PROFESSOR_WIDTH:] for row in rows if row[PROFESSOR_WIDTH] is not None]
    grid = assemble_week(frame, professor, week_rows)
    return {"grid": grid, "professor": professor, "rating": shown_rating(row.average, row.raters)}


async def slot_cell_html(
    request: Request[Any, Any, Any], session: AsyncSession, slot_id: UUID, *, oob: bool, timezone: str | None = None
) -> str:
    """The grid cell of one slot as the viewer sees it now (out-of-band when it rides along another swap)."""
    slot = await SlotService(session=session).get_one_or_none(id=slot_id)
    if slot is None:
        raise NotFound(_("Slot not found."))
    (cell,) = await build_cells(session, [slot], request.user, timezone if timezone in TIMEZONES else None)
    return cell_html(request, cell, oob=oob)


CELL_RENDERINGS = RenderingMemo("components/slot_cell.html")
# A week's rendering is some 50 KB (most of it the zone picker): 128 of them at most per process.
WEEK_RENDERINGS = RenderingMemo("components/week_grid.html", size=128)


def cell_html(request: Request[Any, Any, Any], cell: SlotCell, *, oob: bool) -> Markup:
    """A grid cell's HTML. The grid's 25 cells were most of a page's CPU, and students see the same cells: cells
    that look alike to the same kind of viewer share one rendering (the template reads the user only for that)."""
    user = request.scope.get("user")
    key = (cell.appearance, oob, bool(user and user.is_student))
    return CELL_RENDERINGS.render(request, {"cell": cell, "oob": oob}, key)


def slot_cell(request: Request[Any, Any, Any], cell: SlotCell) -> Markup:
    """`{{ slot_cell(request, cell) }}` in a week grid. (The request is passed, not taken from the template's
    context: a function that takes the context gets a copy of it made at each call inside a loop.)"""
    return cell_html(request, cell, oob=False)


def week_grid(request: Request[Any, Any, Any], grid: SlotGrid) -> Markup:
    """`{{ week_grid(request, grid) }}`: a week's HTML. After its cells, the rest of the week (headings, the week and
    zone links, the zone picker) was a quarter of the page's CPU: weeks that look alike share one rendering."""
    return WEEK_RENDERINGS.render(request, {"grid": grid}, grid.appearance)


async def slot_rows_context(
    session: AsyncSession, professor: User, slot_list: list[ConsultationSlot]
) -> tuple[dict[str, Any], list[Booking]]:
    """What dashboard slot rows show: places booked, the bookings under each row, waitlist lengths.

    Also returns the professor's upcoming active bookings (the pending list is made from them).
    """
    ids = [slot.id for slot in slot_list]
    active = await BookingService(session=session).list_for(professor, upcoming=True, limit=500)
    by_slot: dict[UUID, list[Booking]] = {}
    for booking in active:
        by_slot.setdefault(booking.slot_id, []).append(booking)
    places = await places_on(session, ids)
    context = {
        "counts": {slot_id: place.booked for slot_id, place in places.items()},
        "bookings_by_slot": by_slot,
        "waiting": await WaitlistService(session=session).lengths(ids),
        "courses": await CourseService(session=session).taught_by(professor),
        "errors": {},
    }
    return context, active


async def dashboard_overview(professor: User, slots: SlotService, bookings: BookingService) -> dict[str, Any]:
    """The dashboard: the coming week's slots and bookings, requests to answer, consultations to mark."""
    now = utcnow()
    week = await slots.find_slots(slot_filters(professor.id, now, now + timedelta(days=8)), limit=500)
    week = [slot for slot in week if slot.status != SlotStatus.CANCELLED]
    rows, active = await slot_rows_context(slots.repository.session, professor, week)
    to_mark = await bookings.list_for(professor, status=BookingStatus.CONFIRMED.value, upcoming=None, limit=200)
    today = today_in(professor.timezone)
    return {
        **rows,
        "week_slots": week,
        "pending": [b for b in active if b.status == BookingStatus.PENDING],
        "to_mark": [b for b in to_mark if b.start_time <= now],
        "today": today,
        "default_end": today + timedelta(days=28),
        "publishing_problem": publishing_problem(professor, get_settings()),
    }
