"""GET /api/v1/stats and the CSV export, checked figure by figure against a term computed by hand.

The term belongs to a professor in America/New_York (EST, UTC-5 all of January 2025); the range asked for is
Mon 2025-01-06 .. Sun 2025-01-26 in that zone. Slots (local time) and their bookings, with the lead time
(hours between booking and start) and the rating:

    S0  Sun 05 Jan 23:30 cap 1  b0  ann  completed  rated 1       before the range (but 6 Jan in UTC)
    S1  Tue 07 Jan 19:00 cap 2  b1  ann  completed  30 h  rated 5  (Wed 00:00 UTC)
                                b2  ben  completed  48 h  rated 4
    S2  Tue 07 Jan 21:30 cap 1  b3  cem  no_show     2 h
    S3  Mon 13 Jan 10:00 cap 3  b4  dora completed  72 h  rated 2
                                b5  ann  cancelled by ann        100 h
                                b6  eve  declined by the professor  200 h
    S4  Wed 15 Jan 14:00 cap 1  b7  ben  confirmed  10 h
    S5  Wed 22 Jan 19:00 cap 1  b8  cem  pending     5 h
    S7  Thu 23 Jan 09:00 cap 2  (no bookings)
    S8  Fri 24 Jan 10:00 cap 4  slot cancelled: b10 fay cancelled by the professor 300 h
    S6  Sun 26 Jan 23:00 cap 1  b9  dora completed  26.5 h rated 4  (Mon 27 Jan in UTC)
    S9  Mon 27 Jan 00:30 cap 1  b11 ben  completed  rated 1       after the range

Another professor's slots in the same weeks, booked, rated 1 and cancelled, must not count.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from app.domain.accounts.models import User
from app.domain.consultations.models import Booking, ConsultationSlot
from app.services import provide_services
from tests.helpers import api_token, book, in_hours, make_slot, make_user, web_login

NEW_YORK = ZoneInfo("America/New_York")
TERM = {"start": "2025-01-06", "end": "2025-01-26"}


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A time on a day of January 2025 in New York."""
    return datetime(2025, 1, day, hour, minute, tzinfo=NEW_YORK)


def place_slot(database_url: str, slot_id: Any, start: datetime) -> None:
    """Move a slot (and its bookings) to `start`, as if it had been published a month before."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE consultation_slot SET created_at = %s - interval '30 days',"
            " end_time = %s + (end_time - start_time), start_time = %s WHERE id = %s",
            (start, start, start, slot_id),
        )
        conn.execute(
            "UPDATE booking b SET start_time = s.start_time, end_time = s.end_time FROM consultation_slot s"
            " WHERE b.slot_id = s.id AND s.id = %s",
            (slot_id,),
        )


def settle(database_url: str, booking_id: Any, lead_hours: float, status: str | None = None) -> None:
    """Say when the booking was made (`lead_hours` before its start) and, if given, how it ended."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE booking SET status = coalesce(%s, status),"
            " created_at = start_time - make_interval(secs => %s) WHERE id = %s",
            (status, lead_hours * 3600, booking_id),
        )


def rate(database_url: str, booking_id: Any, rating: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO consultation_note (id, booking_id, professor_notes, student_feedback, rating,"
            " feedback_signed, rated_at, created_at, updated_at)"
            " VALUES (gen_random_uuid(), %s, '', '', %s, false, now(), now(), now())",
            (booking_id, rating),
        )


async def cancel(user: User, booking: Booking, reason: str = "") -> None:
    async with provide_services() as services:
        await services.bookings.cancel(user, booking.id, reason)


async def confirm(professor: User, booking: Booking) -> None:
    async with provide_services() as services:
        await services.bookings.confirm(professor, booking.id)


async def cancel_slot(professor: User, slot: ConsultationSlot, reason: str) -> None:
    async with provide_services() as services:
        await services.slots.cancel_slot(professor, slot.id, reason)


async def future_slots(professor: User, capacities: list[int]) -> list[ConsultationSlot]:
    """Slots published the only way allowed, ahead of now; `place_slot` moves them to their day."""
    return [await make_slot(professor, start=in_hours(48 + 2 * i), capacity=c) for i, c in enumerate(capacities)]


def stats(client: Any, headers: dict[str, str], **params: str) -> Any:
    return client.get("/api/v1/stats", params=params, headers=headers)


@dataclass
class Term:
    professor: User
    students: dict[str, User]
    bookings: dict[str, Booking]


async def build_term(database_url: str) -> Term:
    professor = await make_user("professor", timezone="America/New_York", max_active_bookings_per_student=10)
    names = {"ann": "Adams", "ben": "Brown", "cem": "Clark", "dora": "Davis", "eve": "Evans", "fay": "Fox"}
    students = {name: await make_user(first_name=name.title(), last_name=last) for name, last in names.items()}
    ann, ben, cem, dora, eve, fay = students.values()
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9 = await future_slots(professor, [1, 2, 1, 3, 1, 1, 1, 2, 4, 1])
    bookings = {
        "b0": await book(ann, s0),
        "b1": await book(ann, s1),
        "b2": await book(ben, s1),
        "b3": await book(cem, s2),
        "b4": await book(dora, s3),
        "b5": await book(ann, s3),
        "b6": await book(eve, s3),
        "b7": await book(ben, s4),
        "b8": await book(cem, s5),
        "b9": await book(dora, s6),
        "b10": await book(fay, s8),
        "b11": await book(ben, s9),
    }
    await cancel(ann, bookings["b5"])
    await cancel(professor, bookings["b6"], "Double-booked")
    await cancel_slot(professor, s8, "Conference")
    await confirm(professor, bookings["b7"])
    for slot, start in (
        (s0, local(5, 23, 30)),
        (s1, local(7, 19)),
        (s2, local(7, 21, 30)),
        (s3, local(13, 10)),
        (s4, local(15, 14)),
        (s5, local(22, 19)),
        (s6, local(26, 23)),
        (s7, local(23, 9)),
        (s8, local(24, 10)),
        (s9, local(27, 0, 30)),
    ):
        place_slot(database_url, slot.id, start)
    for key, lead, status in (
        ("b0", 1, "completed"),
        ("b1", 30, "completed"),
        ("b2", 48, "completed"),
        ("b3", 2, "no_show"),
        ("b4", 72, "completed"),
        ("b5", 100, None),
        ("b6", 200, None),
        ("b7", 10, None),
        ("b8", 5, None),
        ("b9", 26.5, "completed"),
        ("b10", 300, None),
        ("b11", 1, "completed"),
    ):
        settle(database_url, bookings[key].id, lead, status)
    for key, rating in (("b0", 1), ("b1", 5), ("b2", 4), ("b4", 2), ("b9", 4), ("b11", 1)):
        rate(database_url, bookings[key].id, rating)
    await add_another_professors_term(database_url, students)
    return Term(professor, students, bookings)


async def add_another_professors_term(database_url: str, students: dict[str, User]) -> None:
    other = await make_user("professor", timezone="America/New_York")
    busy, empty = await future_slots(other, [3, 5])
    done = [await book(students[name], busy) for name in ("eve", "fay")]
    await cancel(students["cem"], await book(students["cem"], busy))
    place_slot(database_url, busy.id, local(14, 10))
    place_slot(database_url, empty.id, local(21, 10))
    for booking in done:
        settle(database_url, booking.id, 1000, "completed")
        rate(database_url, booking.id, 1)


async def test_every_figure_is_exact_on_a_crafted_term(client: Any, database_url: str) -> None:
    term = await build_term(database_url)
    response = await stats(client, await api_token(client, term.professor.username), **TERM)
    assert response.status_code == 200
    assert response.json() == {
        "start": "2025-01-06",
        "end": "2025-01-26",
        "total_bookings": 10,
        "by_status": {"pending": 1, "confirmed": 1, "declined": 1, "completed": 4, "no_show": 1, "cancelled": 2},
        "slots_offered": 7,  # S1..S7; the cancelled S8 offers nothing
        "places_offered": 11,  # 2 + 1 + 3 + 1 + 1 + 1 + 2
        "places_booked": 7,  # every booking in range that was not cancelled or declined
        "utilisation_percent": 63.6,  # 7 / 11
        "no_show_rate_percent": 20.0,  # 1 no-show of 5 consultations held
        "cancellation_rate_percent": 20.0,  # 2 of 10 (the declined request is no cancellation)
        "cancelled_by_student": 1,
        "cancelled_by_professor": 1,
        "rating_average": 3.75,  # (5 + 4 + 2 + 4) / 4, from 3 students
        "rating_count": 4,
        "median_lead_hours": 26.5,  # of 2, 5, 10, 26.5, 30, 48, 72 (cancelled bookings left out)
        "bookings_per_week": [  # Monday weeks in New York: b9 on Sunday night stays in the week of the 20th
            {"week": "2025-01-06", "bookings": 3},
            {"week": "2025-01-13", "bookings": 2},
            {"week": "2025-01-20", "bookings": 2},
        ],
        "busiest_weekday": "Tuesday",  # 3 on Tuesdays in New York (Wednesday in UTC; Monday if cancelled counted)
        "busiest_hour": 19,  # 3 at 19:00 New York time (00:00 UTC; 10:00 if cancelled counted)
        "waitlist_promotions": 0,
        "waitlist_expired_holds": 0,
    }


async def test_a_range_without_bookings_has_zeros_and_no_rates(client: Any) -> None:
    professor = await make_user("professor", timezone="America/New_York")
    response = await stats(client, await api_token(client, professor.username), start="2025-03-03", end="2025-03-09")
    assert response.status_code == 200
    assert response.json() == {
        "start": "2025-03-03",
        "end": "2025-03-09",
        "total_bookings": 0,
        "by_status": {"pending": 0, "confirmed": 0, "declined": 0, "completed": 0, "no_show": 0, "cancelled": 0},
        "slots_offered": 0,
        "places_offered": 0,
        "places_booked": 0,
        "utilisation_percent": None,
        "no_show_rate_percent": None,
        "cancellation_rate_percent": None,
        "cancelled_by_student": 0,
        "cancelled_by_professor": 0,
        "rating_average": None,
        "rating_count": 0,
        "median_lead_hours": None,
        "bookings_per_week": [],
        "busiest_weekday": None,
        "busiest_hour": None,
        "waitlist_promotions": 0,
        "waitlist_expired_holds": 0,
    }


async def rated_consultations(database_url: str, ratings: list[tuple[User, int]]) -> User:
    """A professor with one completed, rated consultation per (student, rating), all in the week of 6 Jan 2025."""
    professor = await make_user("professor", timezone="America/New_York", max_active_bookings_per_student=10)
    slots = await future_slots(professor, [1] * len(ratings))
    for hour, (slot, (student, rating)) in enumerate(zip(slots, ratings, strict=True), start=9):
        booking = await book(student, slot)
        place_slot(database_url, slot.id, local(8, hour))
        settle(database_url, booking.id, 24, "completed")
        rate(database_url, booking.id, rating)
    return professor


async def test_the_rating_stays_hidden_while_only_two_students_rated(client: Any, database_url: str) -> None:
    first, second = await make_user(), await make_user()
    professor = await rated_consultations(database_url, [(first, 5), (first, 4), (second, 3)])
    response = await stats(client, await api_token(client, professor.username), **TERM)
    assert response.status_code == 200
    body = response.json()
    assert (body["by_status"]["completed"], body["rating_average"], body["rating_count"]) == (3, None, 0)


async def test_the_rating_shows_once_three_students_rated(client: Any, database_url: str) -> None:
    first, second, third = await make_user(), await make_user(), await make_user()
    professor = await rated_consultations(database_url, [(first, 5), (second, 4), (third, 2)])
    response = await stats(client, await api_token(client, professor.username), **TERM)
    assert response.status_code == 200
    assert (response.json()["rating_average"], response.json()["rating_count"]) == (3.67, 3)


async def test_a_range_of_exactly_two_years_is_allowed(client: Any) -> None:
    professor = await make_user("professor")
    response = await stats(client, await api_token(client, professor.username), start="2024-01-01", end="2026-01-02")
    assert response.status_code == 200
    assert (response.json()["start"], response.json()["end"]) == ("2024-01-01", "2026-01-02")


async def test_a_range_over_two_years_is_refused_naming_end(client: Any) -> None:
    professor = await make_user("professor")
    response = await stats(client, await api_token(client, professor.username), start="2024-01-01", end="2026-01-03")
    assert response.status_code == 422
    assert response.json() == {
        "status_code": 422,
        "code": "invalid_fields",
        "detail": "end: Choose a range of at most two years.",
        "extra": [{"key": "end", "message": "Choose a range of at most two years."}],
    }


async def test_an_end_before_the_start_is_refused(client: Any) -> None:
    professor = await make_user("professor")
    response = await stats(client, await api_token(client, professor.username), start="2025-02-01", end="2025-01-31")
    assert response.status_code == 422
    assert response.json() == {
        "status_code": 422,
        "code": "invalid_fields",
        "detail": "end: The end must not be before the start.",
        "extra": [{"key": "end", "message": "The end must not be before the start."}],
    }


async def test_a_student_cannot_read_stats(client: Any) -> None:
    student = await make_user()
    response = await stats(client, await api_token(client, student.username), **TERM)
    assert response.status_code == 403
    assert response.json() == {"status_code": 403, "code": "forbidden", "detail": "Only professors can do this."}


def local_iso(value: datetime | None) -> str:
    return value.astimezone(NEW_YORK).isoformat() if value else ""


async def test_the_csv_export_has_a_header_and_one_line_per_booking_in_range(client: Any, database_url: str) -> None:
    term = await build_term(database_url)
    await web_login(client, term.professor.username)
    response = await client.get("/dashboard/export.csv", params=TERM)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "text/csv"
    assert response.headers["content-disposition"] == 'attachment; filename="bookings-2025-01-06-2025-01-26.csv"'
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT id, start_time, end_time, status, created_at, cancelled_at FROM booking").fetchall()
    stored = {row[0]: row[1:] for row in rows}
    expected = []
    # By start, then by the student's last name (S3: Adams, Davis, Evans); S8 on Friday, S6 on Sunday night.
    for key, student, cancelled_by, reason in (
        ("b1", "ann", "", ""),
        ("b2", "ben", "", ""),
        ("b3", "cem", "", ""),
        ("b5", "ann", "student", ""),
        ("b4", "dora", "", ""),
        ("b6", "eve", "professor", "Double-booked"),
        ("b7", "ben", "", ""),
        ("b8", "cem", "", ""),
        ("b10", "fay", "professor", "Conference"),
        ("b9", "dora", "", ""),
    ):
        booking_id, person = term.bookings[key].id, term.students[student]
        start, end, status, created_at, cancelled_at = stored[booking_id]
        expected.append(
            [
                str(booking_id),
                local_iso(start),
                local_iso(end),
                status,
                person.username,
                person.first_name,
                person.last_name,
                person.email,
                "",
                local_iso(created_at),
                local_iso(cancelled_at),
                cancelled_by,
                reason,
                "",
            ]
        )
    lines = list(csv.reader(io.StringIO(response.text)))
    assert lines[0] == [
        "booking_id",
        "start",
        "end",
        "status",
        "username",
        "first_name",
        "last_name",
        "email",
        "topic",
        "booked_at",
        "cancelled_at",
        "cancelled_by",
        "cancel_reason",
        "location",
    ]
    assert lines[1:] == expected
    assert [line[1] for line in lines[1:3]] == ["2025-01-07T19:00:00-05:00"] * 2
    assert lines[-1][1:4] == ["2025-01-26T23:00:00-05:00", "2025-01-26T23:30:00-05:00", "completed"]
    assert lines[1][9] == (local(7, 19) - timedelta(hours=30)).isoformat()


async def test_the_csv_export_refuses_a_range_over_two_years(client: Any) -> None:
    professor = await make_user("professor")
    await web_login(client, professor.username)
    response = await client.get("/dashboard/export.csv", params={"start": "2024-01-01", "end": "2026-01-03"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "Choose a range of at most two years." in response.text


def test_the_term_lies_inside_one_new_york_winter() -> None:
    """The figures above assume no clock change inside the term."""
    offsets = {local(day, 12).utcoffset() for day in range(5, 28)}
    assert offsets == {timedelta(hours=-5)}
    assert date(2025, 1, 6).weekday() == 0


async def test_the_stats_page_shows_the_figures_of_the_crafted_term(client: Any, database_url: str) -> None:
    term = await build_term(database_url)
    await web_login(client, term.professor.username)
    response = await client.get("/dashboard/stats", params=TERM, headers={"HX-Request": "true"})
    assert response.status_code == 200
    page = response.text
    # The same figures as the API's (test_every_figure_is_exact_on_a_crafted_term), as the professor reads them.
    for card in (
        '<h3>Bookings</h3><p class="stat">10</p>',
        "requested 1, confirmed 1, declined 1, completed 4, no-show 1, cancelled 2",
        '<h3>Utilisation</h3><p class="stat">63.6\u00a0%</p>',
        "7 of 11 places in 7 slots",
        '<h3>No-shows</h3><p class="stat">20.0\u00a0%</p>',
        '<h3>Cancellations</h3><p class="stat">20.0\u00a0%</p>',
        "1 by students, 1 by you",
        '<h3>Rating</h3><p class="stat">★ 3.8</p>',  # 3.75, one decimal
        "4 ratings",
        '<h3>Booked ahead</h3><p class="stat">26.5 h</p>',
        '<h3>Busiest</h3><p class="stat">Tuesday</p>',
        "most bookings at 19:00",
        "Week of 6 Jan: 3. Week of 13 Jan: 2. Week of 20 Jan: 2.",
    ):
        assert card in page, card


def test_the_default_range_is_ninety_days_back_and_thirty_ahead() -> None:
    from app.domain.analytics.services import DateRange

    period = DateRange.parse(None, None, today=date(2035, 3, 1))
    assert (period.start, period.end) == (date(2034, 12, 1), date(2035, 3, 31))


async def test_the_stats_without_a_range_cover_the_default_range_around_the_professors_today(client: Any) -> None:
    from app.lib.clock import today_in

    professor = await make_user("professor", timezone="Pacific/Kiritimati")  # UTC+14: "today" is often not UTC's
    headers = await api_token(client, professor.username)
    before = today_in("Pacific/Kiritimati")
    body = (await stats(client, headers)).json()
    after = today_in("Pacific/Kiritimati")  # the same day, unless the request straddled local midnight
    assert (body["start"], body["end"]) in [
        (str(today - timedelta(days=90)), str(today + timedelta(days=30))) for today in (before, after)
    ]


async def test_a_clock_change_inside_the_range_keeps_local_hours_weeks_and_day_bounds(client: Any) -> None:
    """New York moves to summer time on 2035-03-11: 10:00 is 15:00 UTC before and 14:00 UTC after."""
    professor = await make_user("professor", timezone="America/New_York", max_active_bookings_per_student=10)
    student = await make_user()
    for start in (
        datetime(2035, 3, 5, 0, 30, tzinfo=NEW_YORK),  # the first minutes of the range (05:30 UTC)
        datetime(2035, 3, 8, 10, 0, tzinfo=NEW_YORK),  # EST
        datetime(2035, 3, 13, 10, 0, tzinfo=NEW_YORK),  # EDT
        datetime(2035, 3, 15, 10, 0, tzinfo=NEW_YORK),  # EDT
        datetime(2035, 3, 18, 23, 30, tzinfo=NEW_YORK),  # the last minutes of the range (03:30 UTC on the 19th)
        datetime(2035, 3, 19, 0, 30, tzinfo=NEW_YORK),  # just after the range
    ):
        await book(student, await make_slot(professor, start=start))
    response = await stats(client, await api_token(client, professor.username), start="2035-03-05", end="2035-03-18")
    body = response.json()
    assert body["total_bookings"] == 5
    assert body["busiest_hour"] == 10  # the same wall-clock hour on both sides of the change
    assert body["bookings_per_week"] == [{"week": "2035-03-05", "bookings": 2}, {"week": "2035-03-12", "bookings": 3}]
