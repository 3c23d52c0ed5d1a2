"""Slots through the API: one at a time, generated from a weekly rule, changed and listed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
import pytest

from app.lib.clock import fixed_clock
from app.lib.formatting import describe_time
from tests.helpers import api_token, in_hours, make_slot, make_user

BERLIN = "Europe/Berlin"


async def headers_for(client: Any, user: Any) -> dict[str, str]:
    return await api_token(client, user.username)


def slot_rows(database_url: str, professor: Any) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM consultation_slot WHERE professor_id = %s", (professor.id,)).fetchone()
    assert row is not None
    return int(row[0])


def slot_times(database_url: str, slot_id: Any) -> tuple[datetime, datetime]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT start_time, end_time FROM consultation_slot WHERE id = %s", (slot_id,)).fetchone()
    assert row is not None
    return row[0], row[1]


def utc_text(moment: datetime) -> str:
    """How the API writes a timestamp: UTC, whole seconds, a trailing Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parsed(text: str) -> datetime:
    return datetime.fromisoformat(text)


def slot_json(start: datetime, minutes: int = 30, **fields: Any) -> dict[str, Any]:
    return {"start_time": start.isoformat(), "end_time": (start + timedelta(minutes=minutes)).isoformat(), **fields}


def next_weekday(weekday: int, *, after_days: int = 3) -> date:
    """The first date with this weekday (0 = Monday) at least `after_days` from today."""
    day = date.today() + timedelta(days=after_days)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def local(day: date, hour: int, minute: int = 0, zone: str = BERLIN) -> datetime:
    return datetime.combine(day, time(hour, minute), ZoneInfo(zone))


def span(start: datetime, end: datetime, zone: str = BERLIN) -> str:
    """A slot's time as the API's messages name it, local to the professor."""
    return describe_time(start, end, zone)


def next_clock_change(zone: str, *, back: bool, after: date) -> date:
    """The first day from `after` on which the zone's clocks go back (or forward), e.g. 2027-10-31 in Berlin."""
    tz = ZoneInfo(zone)
    day = after
    while True:
        before = datetime.combine(day, time(0), tz).utcoffset()
        after = datetime.combine(day + timedelta(days=1), time(0), tz).utcoffset()
        assert before is not None
        assert after is not None
        if after != before and (after < before) == back:
            return day
        day += timedelta(days=1)


def rule(start_date: date, end_date: date, weekdays: list[int], **fields: Any) -> dict[str, Any]:
    return {
        "start_date": start_date.isoformat(),
        "end_date": end_date.isoformat(),
        "weekdays": weekdays,
        "day_start": "10:00",
        "day_end": "10:30",
        "duration_minutes": 30,
        **fields,
    }


def field_error(name: str, message: str) -> dict[str, Any]:
    return {
        "status_code": 422,
        "code": "invalid_fields",
        "detail": f"{name}: {message}",
        "extra": [{"key": name, "message": message}],
    }


# -- one slot ------------------------------------------------------------------------------------------


async def test_professor_publishes_a_slot_and_gets_its_fields_back(client: Any) -> None:
    professor = await make_user("professor")
    start = in_hours(48)
    fields = {
        "capacity": 3,
        "location": "Room 2.14",
        "meeting_url": "https://meet.example/office-hours",
        "title": "Thesis questions",
        "notes": "Bring your draft.",
    }
    response = await client.post(
        "/api/v1/slots", json=slot_json(start, 45, **fields), headers=await headers_for(client, professor)
    )
    assert response.status_code == 201
    body = response.json()
    assert body == {
        "id": body["id"],
        "professor_id": str(professor.id),
        "start_time": utc_text(start),
        "end_time": utc_text(start + timedelta(minutes=45)),
        "status": "available",
        "booked_count": 0,
        "series_id": None,
        "course_ids": [],
        **fields,
    }
    assert UUID(body["id"])


async def test_a_slot_ending_before_it_starts_is_refused_naming_end_time(client: Any, database_url: str) -> None:
    professor = await make_user("professor")
    start = in_hours(48)
    response = await client.post(
        "/api/v1/slots", json=slot_json(start, -30), headers=await headers_for(client, professor)
    )
    assert response.status_code == 422
    assert response.json() == field_error("end_time", "The end must be after the start.")
    assert slot_rows(database_url, professor) == 0


async def test_a_slot_in_the_past_is_refused_naming_start_time(client: Any, database_url: str) -> None:
    professor = await make_user("professor")
    response = await client.post(
        "/api/v1/slots", json=slot_json(in_hours(-2)), headers=await headers_for(client, professor)
    )
    assert response.status_code == 422
    assert response.json() == field_error("start_time", "The slot must start in the future.")
    assert slot_rows(database_url, professor) == 0


async def test_a_slot_with_capacity_zero_is_refused_naming_capacity(client: Any, database_url: str) -> None:
    professor = await make_user("professor")
    response = await client.post(
        "/api/v1/slots", json=slot_json(in_hours(48), capacity=0), headers=await headers_for(client, professor)
    )
    assert response.status_code == 422
    assert response.json() == field_error("capacity", "Capacity must be a whole number from 1 to 500.")
    assert slot_rows(database_url, professor) == 0


async def test_a_timestamp_without_an_offset_is_refused_naming_start_time(client: Any, database_url: str) -> None:
    professor = await make_user("professor")
    start = in_hours(48)
    payload = slot_json(start) | {"start_time": start.replace(tzinfo=None).isoformat()}
    response = await client.post("/api/v1/slots", json=payload, headers=await headers_for(client, professor))
    assert response.status_code == 422
    assert response.json() == field_error(
        "start_time", "Give a timestamp with a UTC offset, e.g. 2026-12-01T10:00:00+01:00."
    )
    assert slot_rows(database_url, professor) == 0


async def test_an_overlapping_slot_is_a_conflict_naming_the_clashing_time(client: Any, database_url: str) -> None:
    professor = await make_user("professor", timezone=BERLIN)
    monday = next_weekday(0)
    await make_slot(professor, start=local(monday, 10))
    response = await client.post(
        "/api/v1/slots", json=slot_json(local(monday, 10, 15)), headers=await headers_for(client, professor)
    )
    assert response.status_code == 409
    assert response.json() == {
        "status_code": 409,
        "code": "conflict",
        "detail": f"This time overlaps your slot on {span(local(monday, 10), local(monday, 10, 30))}.",
    }
    assert slot_rows(database_url, professor) == 1


# -- generated from a weekly rule --------------------------------------------------------------------------


async def test_four_weeks_of_monday_and_wednesday_slots_are_generated(client: Any, database_url: str) -> None:
    professor = await make_user("professor", timezone=BERLIN)
    monday = next_weekday(0)
    payload = rule(
        monday, monday + timedelta(days=27), [0, 2], day_end="12:00", buffer_minutes=10, location="Room 2.14"
    )
    response = await client.post("/api/v1/slots/bulk", json=payload, headers=await headers_for(client, professor))
    assert response.status_code == 201
    body = response.json()
    assert (body["total"], len(body["items"]), body["clashes"], body["skipped_past"]) == (24, 24, [], [])
    starts = [parsed(item["start_time"]).astimezone(ZoneInfo(BERLIN)) for item in body["items"]]
    assert sorted({(s.weekday(), f"{s:%H:%M}") for s in starts}) == [
        (0, "10:00"),
        (0, "10:40"),
        (0, "11:20"),
        (2, "10:00"),
        (2, "10:40"),
        (2, "11:20"),
    ]
    assert len({item["series_id"] for item in body["items"]}) == 1
    assert {(item["location"], item["status"], item["booked_count"]) for item in body["items"]} == {
        ("Room 2.14", "available", 0)
    }
    assert slot_rows(database_url, professor) == 24


async def test_generated_slots_follow_each_professors_own_time_zone(client: Any) -> None:
    day = next_weekday(2)
    starts = {}
    for zone in ("Asia/Tokyo", "America/New_York"):
        professor = await make_user("professor", timezone=zone)
        response = await client.post(
            "/api/v1/slots/bulk", json=rule(day, day, [2]), headers=await headers_for(client, professor)
        )
        assert response.status_code == 201
        starts[zone] = [parsed(item["start_time"]) for item in response.json()["items"]]
    assert starts == {
        "Asia/Tokyo": [local(day, 10, zone="Asia/Tokyo")],
        "America/New_York": [local(day, 10, zone="America/New_York")],
    }


# "Now" is fixed a month before a known change, so the weeks on both sides are ahead on every day of the year.
AUTUMN_2027 = datetime(2027, 10, 1, 12, 0, tzinfo=UTC)
SPRING_2027 = datetime(2027, 2, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "back", "now", "change", "utc_hours_before", "utc_hours_after"),
    [
        pytest.param(BERLIN, True, AUTUMN_2027, date(2027, 10, 31), 8, 9, id="Europe/Berlin-summer-time-ends"),
        pytest.param(
            "America/New_York", True, AUTUMN_2027, date(2027, 11, 7), 14, 15, id="America/New_York-daylight-time-ends"
        ),
        pytest.param(BERLIN, False, SPRING_2027, date(2027, 3, 28), 9, 8, id="Europe/Berlin-summer-time-starts"),
    ],
)
async def test_weekly_slots_keep_their_local_time_across_a_clock_change(
    client: Any, zone: str, back: bool, now: datetime, change: date, utc_hours_before: int, utc_hours_after: int
) -> None:
    assert next_clock_change(zone, back=back, after=now.date()) == change
    professor = await make_user("professor", timezone=zone)
    payload = rule(change - timedelta(days=14), change + timedelta(days=14), [change.weekday()])
    with fixed_clock(now):  # the token too is issued and checked on that day
        headers = await headers_for(client, professor)
        response = await client.post("/api/v1/slots/bulk", json=payload, headers=headers)
    assert response.status_code == 201
    starts = [parsed(item["start_time"]) for item in response.json()["items"]]
    walls = [start.astimezone(ZoneInfo(zone)) for start in starts]
    assert [wall.date() for wall in walls] == [change + timedelta(days=7 * week) for week in range(-2, 3)]
    assert {(wall.hour, wall.minute) for wall in walls} == {(10, 0)}
    assert [start.astimezone(UTC).hour for start in starts] == [utc_hours_before] * 2 + [utc_hours_after] * 3


async def test_a_date_range_of_a_year_and_a_day_is_refused_naming_end_date(client: Any, database_url: str) -> None:
    professor = await make_user("professor")
    first = date.today() + timedelta(days=7)
    payload = rule(first, first + timedelta(days=366), [0, 1, 2, 3, 4])
    response = await client.post("/api/v1/slots/bulk", json=payload, headers=await headers_for(client, professor))
    assert response.status_code == 422
    assert response.json() == field_error("end_date", "Generate at most one year of slots at once.")
    assert slot_rows(database_url, professor) == 0


async def test_a_date_range_of_365_days_is_accepted(client: Any, database_url: str) -> None:
    professor = await make_user("professor")
    first = date.today() + timedelta(days=7)
    payload = rule(first, first + timedelta(days=365), [first.weekday()])
    response = await client.post("/api/v1/slots/bulk", json=payload, headers=await headers_for(client, professor))
    assert response.status_code == 201
    assert response.json()["total"] == 53
    assert slot_rows(database_url, professor) == 53


@pytest.mark.parametrize("weekdays", [[7], [-1], [0, 9]], ids=["seven", "minus-one", "one-of-two"])
async def test_a_weekday_outside_0_to_6_is_refused_naming_weekdays(
    client: Any, database_url: str, weekdays: list[int]
) -> None:
    professor = await make_user("professor")
    first = date.today() + timedelta(days=7)
    payload = rule(first, first + timedelta(days=13), weekdays)
    response = await client.post("/api/v1/slots/bulk", json=payload, headers=await headers_for(client, professor))
    assert response.status_code == 422
    assert response.json() == field_error("weekdays", "Weekdays are numbers from 0 (Monday) to 6 (Sunday).")
    assert slot_rows(database_url, professor) == 0


async def test_a_slot_length_that_does_not_fit_the_daily_window_is_refused_naming_duration_minutes(
    client: Any, database_url: str
) -> None:
    professor = await make_user("professor")
    first = date.today() + timedelta(days=7)
    payload = rule(first, first + timedelta(days=13), [0, 2], day_end="10:30", duration_minutes=45)
    response = await client.post("/api/v1/slots/bulk", json=payload, headers=await headers_for(client, professor))
    assert response.status_code == 422
    assert response.json() == field_error("duration_minutes", "The slot length does not fit in the daily window.")
    assert slot_rows(database_url, professor) == 0


async def test_generation_reports_clashes_and_creates_the_rest(client: Any, database_url: str) -> None:
    professor = await make_user("professor", timezone=BERLIN)
    monday = next_weekday(0)
    existing = await make_slot(professor, start=local(monday, 10))
    payload = rule(monday, monday + timedelta(days=7), [0], day_end="11:00")
    response = await client.post("/api/v1/slots/bulk", json=payload, headers=await headers_for(client, professor))
    assert response.status_code == 201
    body = response.json()
    assert body["clashes"] == [
        {
            "start_time": utc_text(local(monday, 10)),
            "end_time": utc_text(local(monday, 10, 30)),
            "clashes_with": str(existing.id),
        }
    ]
    assert [parsed(item["start_time"]) for item in body["items"]] == [
        local(monday, 10, 30),
        local(monday + timedelta(days=7), 10),
        local(monday + timedelta(days=7), 10, 30),
    ]
    assert body["total"] == 3
    assert slot_rows(database_url, professor) == 4


async def test_all_or_nothing_generation_with_a_clash_is_a_conflict_and_creates_nothing(
    client: Any, database_url: str
) -> None:
    professor = await make_user("professor", timezone=BERLIN)
    monday = next_weekday(0)
    await make_slot(professor, start=local(monday + timedelta(days=7), 10, 30))
    payload = rule(monday, monday + timedelta(days=7), [0], day_end="11:00", all_or_nothing=True)
    response = await client.post("/api/v1/slots/bulk", json=payload, headers=await headers_for(client, professor))
    assert response.status_code == 409
    clash = span(local(monday + timedelta(days=7), 10, 30), local(monday + timedelta(days=7), 11))
    assert response.json() == {
        "status_code": 409,
        "code": "conflict",
        "detail": f"1 generated slot(s) overlap existing ones, the first on {clash}; nothing was created.",
    }
    assert slot_rows(database_url, professor) == 1


# -- changing and listing ----------------------------------------------------------------------------------


async def test_owner_changes_the_location_and_capacity_of_a_slot(client: Any) -> None:
    professor = await make_user("professor")
    slot = await make_slot(professor, location="Room 1", capacity=1)
    response = await client.patch(
        f"/api/v1/slots/{slot.id}",
        json={"location": "Room 2.14", "capacity": 4},
        headers=await headers_for(client, professor),
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["location"], body["capacity"], body["status"], body["start_time"]) == (
        str(slot.id),
        "Room 2.14",
        4,
        "available",
        utc_text(slot.start_time),
    )


async def test_moving_a_slot_onto_another_of_the_owners_slots_is_a_conflict(client: Any, database_url: str) -> None:
    professor = await make_user("professor", timezone=BERLIN)
    monday = next_weekday(0)
    await make_slot(professor, start=local(monday, 10))
    moving = await make_slot(professor, start=local(monday, 14))
    response = await client.patch(
        f"/api/v1/slots/{moving.id}",
        json=slot_json(local(monday, 10, 15)),
        headers=await headers_for(client, professor),
    )
    assert response.status_code == 409
    assert response.json() == {
        "status_code": 409,
        "code": "conflict",
        "detail": f"This time overlaps your slot on {span(local(monday, 10), local(monday, 10, 30))}.",
    }
    assert slot_times(database_url, moving.id) == (local(monday, 14), local(monday, 14, 30))


async def test_slots_are_listed_by_professor_and_status(client: Any) -> None:
    professor, other = await make_user("professor"), await make_user("professor")
    open_slot = await make_slot(professor, start=in_hours(48))
    cancelled = await make_slot(professor, start=in_hours(50))
    await make_slot(other, start=in_hours(48))
    headers = await headers_for(client, professor)
    assert (await client.delete(f"/api/v1/slots/{cancelled.id}", headers=headers)).status_code == 200
    viewer = await headers_for(client, await make_user())
    response = await client.get(
        "/api/v1/slots", params={"professor_id": str(professor.id), "status": "available"}, headers=viewer
    )
    assert response.status_code == 200
    body = response.json()
    assert ([item["id"] for item in body["items"]], body["total"], body["limit"], body["offset"]) == (
        [str(open_slot.id)],
        1,
        100,
        0,
    )


async def test_slot_list_pages_with_limit_and_offset_and_counts_every_match(client: Any) -> None:
    professor = await make_user("professor")
    slots = [await make_slot(professor, start=in_hours(48 + hours)) for hours in (0, 2, 4)]
    response = await client.get(
        "/api/v1/slots",
        params={"professor_id": str(professor.id), "limit": 1, "offset": 1},
        headers=await headers_for(client, professor),
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"items", "total", "limit", "offset"}
    assert ([item["id"] for item in body["items"]], body["total"], body["limit"], body["offset"]) == (
        [str(slots[1].id)],
        3,
        1,
        1,
    )
