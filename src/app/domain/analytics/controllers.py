"""Statistics: the dashboard panel (with a server-drawn SVG chart), the CSV export, and GET /api/v1/stats."""

from __future__ import annotations

from datetime import date
from typing import Any

from advanced_alchemy.extensions.litestar.providers import create_service_provider
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery

from app.domain.accounts.models import User
from app.domain.analytics.schemas import StatsOut, WeekCount
from app.domain.analytics.services import DateRange, Stats, StatsService
from app.domain.consultations.deps import provide_notes
from app.domain.consultations.notes import NoteService
from app.lib.clock import today_in
from app.lib.guards import requires_professor
from app.lib.rendering import render

provide_stats = create_service_provider(StatsService)
DEPENDENCIES = {"stats": Provide(provide_stats), "notes": Provide(provide_notes)}

# The API names days in English (machine-facing); pages name them in the reader's language.
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def stats_out(stats: Stats) -> StatsOut:
    return StatsOut(
        start=stats.range.start,
        end=stats.range.end,
        total_bookings=stats.total,
        by_status=stats.by_status,
        slots_offered=stats.slots_offered,
        places_offered=stats.places_offered,
        places_booked=stats.places_booked,
        utilisation_percent=stats.utilisation,
        no_show_rate_percent=stats.no_show_rate,
        cancellation_rate_percent=stats.cancellation_rate,
        cancelled_by_student=stats.cancelled_by_student,
        cancelled_by_professor=stats.cancelled_by_professor,
        rating_average=stats.rating_average,
        rating_count=stats.rating_count,
        median_lead_hours=stats.median_lead_hours,
        bookings_per_week=[WeekCount(week=week, bookings=count) for week, count in stats.weekly],
        busiest_weekday=WEEKDAYS[stats.busiest_day] if stats.busiest_day is not None else None,
        busiest_hour=stats.busiest_hour,
        waitlist_promotions=stats.waitlist_promotions,
        waitlist_expired_holds=stats.waitlist_expired_holds,
    )


class StatsApi(Controller):
    path = "/api/v1/stats"
    tags = ["stats"]
    guards = [requires_professor]
    dependencies = DEPENDENCIES

    @get("/", summary="Dashboard figures for a date range (default: 90 days back, 30 ahead; at most two years)")
    async def stats(
        self,
        request: Request[User, Any, Any],
        stats: NamedDependency[StatsService],
        start: FromQuery[date | None] = None,
        end: FromQuery[date | None] = None,
    ) -> StatsOut:
        period = DateRange.parse(start, end, today_in(request.user.timezone))
        return stats_out(await stats.for_professor(request.user, period))


class StatsPages(Controller):
    path = "/dashboard"
    guards = [requires_professor]
    include_in_schema = False
    dependencies = DEPENDENCIES

    @get("/stats")
    async def panel(
        self,
        request: Request[User, Any, Any],
        stats: NamedDependency[StatsService],
        notes: NamedDependency[NoteService],
        start: FromQuery[date | None] = None,
        end: FromQuery[date | None] = None,
    ) -> Response[Any]:
        period = DateRange.parse(start, end, today_in(request.user.timezone))
        figures = await stats.for_professor(request.user, period)
        feedback = await notes.feedback_for(request.user.id) if figures.rating_average is not None else []
        return render(request, "pages/stats.html", {"stats": figures, "feedback": feedback}, block="panel")

    @get("/export.csv")
    async def export(
        self,
        request: Request[User, Any, Any],
        stats: NamedDependency[StatsService],
        start: FromQuery[date | None] = None,
        end: FromQuery[date | None] = None,
    ) -> Response[str]:
        period = DateRange.parse(start, end, today_in(request.user.timezone))
        body = await stats.export_csv(request.user, period)
        filename = f"bookings-{period.start}-{period.end}.csv"
        return Response(
            body, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
        )
