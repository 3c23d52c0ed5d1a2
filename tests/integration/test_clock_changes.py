"""Local times on a clock-change day: a time the clocks jump over names no instant, a time they show twice names two.

The decision (docs/architecture.md, "Clock changes"): a single slot typed on the dashboard (new or moved) with such a
time is refused, the field named; a weekly rule (web or API) skips the times that do not exist and takes the first of
a time shown twice. Dates are in 2035, valid whatever day the suite runs: in Europe/Berlin the clocks go forward
on 2035-03-25 at 02:00 and back on 2035-10-28 at 03:00.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from tests.helpers import api_token, csrf_headers, make_slot, make_user, web_login

HTMX = {"HX-Request": "true"}
ZONE = "Europe/Berlin"
SPRING, AUTUMN = "2035-03-25", "2035-10-28"
SKIPPED = "This time does not exist on that day in Europe/Berlin: the clocks go forward over it. Choose another time."
REPEATED = "This time occurs twice on that day in Europe/Berlin: the clocks go back over it. Choose another time."


def slot_times(database_url: str) -> list[tuple[datetime, datetime]]:
    with psycopg.connect(database_url) as conn:
        return [
            (start.astimezone(UTC), end.astimezone(UTC))
            for start, end in conn.execute("SELECT start_time, end_time FROM consultation_slot ORDER BY start_time")
        ]


def field_error(prefix: str, field: str, message: str) -> str:
    return f'id="{prefix}-{field}" class="field-error" hx-swap-oob="true"><span aria-hidden="true">⚠ </span>{message}'


async def professor_on_dashboard(client: Any) -> tuple[Any, dict[str, str]]:
    professor = await make_user("professor", timezone=ZONE)
    await web_login(client, professor.username)
    return professor, {**csrf_headers(client), **HTMX}


def one_slot(day: str, start: str, end: str) -> dict[str, str]:
    return {"date": day, "start": start, "end": end, "capacity": "1", "location": "B12"}


async def test_a_new_slot_at_a_time_the_clocks_skip_is_refused_naming_start(client: Any, database_url: str) -> None:
    _, headers = await professor_on_dashboard(client)
    response = await client.post("/dashboard/slots", data=one_slot(SPRING, "02:30", "03:30"), headers=headers)
    assert response.status_code == 422
    assert field_error("new-slot", "start", SKIPPED) in response.text
    assert slot_times(database_url) == []


async def test_a_new_slot_ending_at_a_time_the_clocks_show_twice_is_refused_naming_end(
    client: Any, database_url: str
) -> None:
    _, headers = await professor_on_dashboard(client)
    response = await client.post("/dashboard/slots", data=one_slot(AUTUMN, "01:30", "02:30"), headers=headers)
    assert response.status_code == 422
    assert field_error("new-slot", "end", REPEATED) in response.text
    assert slot_times(database_url) == []


async def test_a_new_slot_spanning_the_spring_change_lasts_the_real_hour_between_its_times(
    client: Any, database_url: str
) -> None:
    _, headers = await professor_on_dashboard(client)
    response = await client.post("/dashboard/slots", data=one_slot(SPRING, "01:30", "03:30"), headers=headers)
    assert response.status_code == 200
    # 01:30 CET is 00:30 UTC; 03:30 CEST is 01:30 UTC: one real hour.
    assert slot_times(database_url) == [
        (datetime(2035, 3, 25, 0, 30, tzinfo=UTC), datetime(2035, 3, 25, 1, 30, tzinfo=UTC))
    ]


async def test_moving_a_slot_to_a_time_the_clocks_skip_is_refused_and_keeps_it(client: Any, database_url: str) -> None:
    professor, headers = await professor_on_dashboard(client)
    slot = await make_slot(professor, start=datetime(2035, 3, 24, 9, 0, tzinfo=UTC), location="B12")
    form = {**one_slot(SPRING, "02:15", "02:45"), "meeting_url": "", "notes": "", "title": ""}
    response = await client.post(f"/dashboard/slots/{slot.id}", data=form, headers=headers)
    assert response.status_code == 422
    assert SKIPPED in response.text
    assert 'class="inline-edit"' in response.text
    assert slot_times(database_url) == [(slot.start_time, slot.end_time)]


async def weekly_rule(client: Any, day: str) -> Any:
    professor = await make_user("professor", timezone=ZONE)
    headers = await api_token(client, professor.username)
    weekday = datetime.fromisoformat(day).weekday()
    return await client.post(
        "/api/v1/slots/bulk",
        json={
            "start_date": day,
            "end_date": day,
            "weekdays": [weekday],
            "day_start": "01:00",
            "day_end": "04:00",
            "duration_minutes": 60,
            "buffer_minutes": 0,
            "capacity": 1,
        },
        headers=headers,
    )


async def test_a_weekly_rule_skips_the_hour_the_clocks_jump_over(client: Any, database_url: str) -> None:
    response = await weekly_rule(client, SPRING)
    assert response.status_code == 201, response.text
    # The wall clock shows no 02:00 to 02:59 that night, so neither the 02:00 slot nor the 01:00 one (it would end
    # at 02:00) is made; 03:00 CEST is.
    assert [item["start_time"] for item in response.json()["items"]] == ["2035-03-25T01:00:00Z"]
    assert len(slot_times(database_url)) == 1


async def test_a_weekly_rule_takes_the_first_of_an_hour_the_clocks_show_twice(client: Any, database_url: str) -> None:
    response = await weekly_rule(client, AUTUMN)
    assert response.status_code == 201, response.text
    # 01:00 CEST, 02:00 CEST (the first 02:00; the second is 01:00 UTC), 03:00 CET.
    assert [item["start_time"] for item in response.json()["items"]] == [
        "2035-10-27T23:00:00Z",
        "2035-10-28T00:00:00Z",
        "2035-10-28T02:00:00Z",
    ]
