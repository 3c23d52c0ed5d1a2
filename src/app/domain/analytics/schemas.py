"""The statistics API body."""

from __future__ import annotations

from datetime import date

import msgspec


class WeekCount(msgspec.Struct):
    week: date
    bookings: int


class StatsOut(msgspec.Struct):
    start: date
    end: date
    total_bookings: int
    by_status: dict[str, int]
    slots_offered: int
    places_offered: int
    places_booked: int
    utilisation_percent: float | None
    no_show_rate_percent: float | None
    cancellation_rate_percent: float | None
    cancelled_by_student: int
    cancelled_by_professor: int
    rating_average: float | None
    rating_count: int
    median_lead_hours: float | None
    bookings_per_week: list[WeekCount]
    busiest_weekday: str | None
    busiest_hour: int | None
    waitlist_promotions: int
    waitlist_expired_holds: int
