"""Dashboard statistics, computed by PostgreSQL in one pass over the professor's bookings."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import text

from app.domain.accounts.models import User
from app.domain.consultations.models import Booking
from app.domain.consultations.rules import MIN_RATINGS_SHOWN
from app.lib.errors import FieldErrors
from app.lib.i18n import N_
from app.lib.i18n import gettext as _
from app.lib.spreadsheet import safe_cell

EXPORT_COLUMNS = (
    N_("booking_id"),
    N_("start"),
    N_("end"),
    N_("status"),
    N_("username"),
    N_("first_name"),
    N_("last_name"),
    N_("email"),
    N_("topic"),
    N_("booked_at"),
    N_("cancelled_at"),
    N_("cancelled_by"),
    N_("cancel_reason"),
    N_("location"),
)

MAX_STATS_RANGE = timedelta(days=2 * 366)

# One scan of the bookings in range (materialised once), several aggregates over it.
STATS_SQL = text(
    """
WITH b AS MATERIALIZED (
    SELECT bk.status, bk.cancelled_by, bk.student_id, bk.start_time, bk.created_at, note.rating,
           bk.start_time AT TIME ZONE :tz AS local_start
    FROM booking bk
    JOIN consultation_slot s ON s.id = bk.slot_id
    LEFT JOIN consultation_note note ON note.booking_id = bk.id
    WHERE s.professor_id = :professor_id AND s.start_time >= :start AND s.start_time < :end
),
totals AS (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE status = 'pending') AS pending,
           count(*) FILTER (WHERE status = 'confirmed') AS confirmed,
           count(*) FILTER (WHERE status = 'completed') AS completed,
           count(*) FILTER (WHERE status = 'no_show') AS no_show,
           count(*) FILTER (WHERE status = 'declined') AS declined,
           count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
           count(*) FILTER (WHERE status = 'cancelled' AND cancelled_by = student_id) AS cancelled_by_student,
           count(*) FILTER (WHERE status = 'cancelled' AND cancelled_by IS DISTINCT FROM student_id)
               AS cancelled_by_professor,
           avg(rating) AS rating_average,
           count(DISTINCT student_id) FILTER (WHERE rating IS NOT NULL) AS raters,
           count(rating) AS ratings,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM start_time - created_at))
               FILTER (WHERE status NOT IN ('cancelled', 'declined')) AS median_lead_seconds
    FROM b
),
held AS (
    SELECT * FROM b WHERE status NOT IN ('cancelled', 'declined')
),
weekly AS (
    SELECT date_trunc('week', local_start)::date AS week, count(*) AS bookings FROM held GROUP BY 1
),
busiest_day AS (
    SELECT extract(isodow FROM local_start)::int - 1 AS weekday, count(*) AS n
    FROM held GROUP BY 1 ORDER BY n DESC, weekday LIMIT 1
),
busiest_hour AS (
    SELECT extract(hour FROM local_start)::int AS hour, count(*) AS n
    FROM held GROUP BY 1 ORDER BY n DESC, hour LIMIT 1
),
heat AS (
    SELECT extract(isodow FROM local_start)::int - 1 AS weekday, extract(hour FROM local_start)::int AS hour,
           count(*) AS n
    FROM held GROUP BY 1, 2
),
waitlist AS (
    SELECT count(*) FILTER (WHERE w.status IN ('offered', 'accepted', 'expired')) AS promotions,
           count(*) FILTER (WHERE w.status = 'expired') AS expired_holds
    FROM waitlist_entry w
    JOIN consultation_slot ws ON ws.id = w.offered_slot_id
    WHERE ws.professor_id = :professor_id AND ws.start_time >= :start AND ws.start_time < :end
),
offered AS (
    SELECT count(*) AS slots, coalesce(sum(capacity), 0) AS places
    FROM consultation_slot
    WHERE professor_id = :professor_id AND status <> 'cancelled' AND start_time >= :start AND start_time < :end
)
SELECT totals.*, offered.slots, offered.places, waitlist.promotions, waitlist.expired_holds,
       (SELECT coalesce(json_agg(json_build_array(week, bookings) ORDER BY week), '[]') FROM weekly) AS weekly,
       (SELECT coalesce(json_agg(json_build_array(weekday, hour, n)), '[]') FROM heat) AS heat,
       (SELECT weekday FROM busiest_day) AS busiest_weekday,
       (SELECT hour FROM busiest_hour) AS busiest_hour
FROM totals, offered, waitlist
"""
)

EXPORT_SQL = text(
    """
SELECT bk.id, s.start_time, s.end_time, bk.status, u.username, u.first_name, u.last_name, u.email, bk.topic,
       bk.created_at, bk.cancelled_at, CASE WHEN bk.cancelled_by IS NULL THEN ''
            WHEN bk.cancelled_by = bk.student_id THEN 'student' ELSE 'professor' END AS cancelled_by,
       bk.cancel_reason, s.location
FROM booking bk
JOIN consultation_slot s ON s.id = bk.slot_id
JOIN user_account u ON u.id = bk.student_id
WHERE s.professor_id = :professor_id AND s.start_time >= :start AND s.start_time < :end
ORDER BY s.start_time, u.last_name
"""
)


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date  # inclusive

    @classmethod
    def parse(cls, start: date | None, end: date | None, today: date) -> DateRange:
        """Default: the last 90 days and the next 30. Refused: end before start, or more than two years."""
        start = start or today - timedelta(days=90)
        end = end or today + timedelta(days=30)
        if end < start:
            raise FieldErrors.single("end", _("The end must not be before the start."))
        if end - start > MAX_STATS_RANGE:
            raise FieldErrors.single("end", _("Choose a range of at most two years."))
        return cls(start, end)

    def bounds(self, timezone: str) -> tuple[datetime, datetime]:
        zone = ZoneInfo(timezone)
        lower = datetime.combine(self.start, time(0), tzinfo=zone).astimezone(UTC)
        upper = datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
        return lower, upper


@dataclass(frozen=True)
class Stats:
    range: DateRange
    by_status: dict[str, int]
    total: int
    slots_offered: int
    places_offered: int
    places_booked: int
    cancelled_by_student: int
    cancelled_by_professor: int
    rating_average: float | None
    rating_count: int
    median_lead_hours: float | None
    weekly: list[tuple[date, int]] = field(default_factory=list)
    busiest_day: int | None = None  # 0 = Monday
    busiest_hour: int | None = None
    waitlist_promotions: int = 0
    waitlist_expired_holds: int = 0
    heat: dict[tuple[int, int], int] = field(default_factory=dict)  # (weekday 0-6, local hour) -> bookings

    @property
    def utilisation(self) -> float | None:
        return round(100 * self.places_booked / self.places_offered, 1) if self.places_offered else None

    @property
    def no_show_rate(self) -> float | None:
        held = self.by_status["completed"] + self.by_status["no_show"]
        return round(100 * self.by_status["no_show"] / held, 1) if held else None

    @property
    def cancellation_rate(self) -> float | None:
        return round(100 * self.by_status["cancelled"] / self.total, 1) if self.total else None

    @property
    def weeks(self) -> list[tuple[date, int]]:
        """Every week of the range (Mondays), with its bookings: a week without any shows as 0."""
        counts = dict(self.weekly)
        first = self.range.start - timedelta(days=self.range.start.weekday())
        return [
            (first + timedelta(weeks=n), counts.get(first + timedelta(weeks=n), 0))
            for n in range((self.range.end - first).days // 7 + 1)
        ]

    @property
    def heat_max(self) -> int:
        return max(self.heat.values(), default=0)

    @property
    def weekly_max(self) -> int:
        return max((count for _, count in self.weekly), default=0)


class StatsService(SQLAlchemyAsyncRepositoryService[Booking]):
    class Repository(SQLAlchemyAsyncRepository[Booking]):
        model_type = Booking

    repository_type = Repository

    def _params(self, professor: User, period: DateRange) -> dict[str, Any]:
        start, end = period.bounds(professor.timezone)
        return {"professor_id": professor.id, "start": start, "end": end, "tz": professor.timezone}

    async def for_professor(self, professor: User, period: DateRange) -> Stats:
        row = (await self.repository.session.execute(STATS_SQL, self._params(professor, period))).mappings().one()
        statuses = ("pending", "confirmed", "declined", "completed", "no_show", "cancelled")
        by_status = {name: int(row[name]) for name in statuses}
        shown = row["raters"] >= MIN_RATINGS_SHOWN
        return Stats(
            range=period,
            by_status=by_status,
            total=int(row["total"]),
            slots_offered=int(row["slots"]),
            places_offered=int(row["places"]),
            places_booked=int(row["total"]) - by_status["cancelled"] - by_status["declined"],
            cancelled_by_student=int(row["cancelled_by_student"]),
            cancelled_by_professor=int(row["cancelled_by_professor"]),
            rating_average=round(float(row["rating_average"]), 2) if shown else None,
            rating_count=int(row["ratings"]) if shown else 0,
            median_lead_hours=(
                round(float(row["median_lead_seconds"]) / 3600, 1) if row["median_lead_seconds"] is not None else None
            ),
            weekly=[(date.fromisoformat(week), int(count)) for week, count in _json(row["weekly"])],
            heat={(int(day), int(hour)): int(count) for day, hour, count in _json(row["heat"])},
            busiest_day=row["busiest_weekday"],
            busiest_hour=row["busiest_hour"],
            waitlist_promotions=int(row["promotions"]),
            waitlist_expired_holds=int(row["expired_holds"]),
        )

    async def export_csv(self, professor: User, period: DateRange) -> str:
        rows = (await self.repository.session.execute(EXPORT_SQL, self._params(professor, period))).all()
        zone = ZoneInfo(professor.timezone)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        # The header in the professor's language (the English one is the columns' names, as scripts read them).
        writer.writerow(_(column) for column in EXPORT_COLUMNS)
        for row in rows:
            # Every cell through safe_cell: names, e-mail addresses and usernames are typed by people too.
            writer.writerow(
                safe_cell(value)
                for value in (
                    row.id,
                    row.start_time.astimezone(zone).isoformat(),
                    row.end_time.astimezone(zone).isoformat(),
                    row.status,
                    row.username,
                    row.first_name,
                    row.last_name,
                    row.email,
                    row.topic,
                    row.created_at.astimezone(zone).isoformat(),
                    row.cancelled_at.astimezone(zone).isoformat() if row.cancelled_at else "",
                    row.cancelled_by,
                    row.cancel_reason,
                    row.location,
                )
            )
        return buffer.getvalue()


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
