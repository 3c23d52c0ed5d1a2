"""What the pages say when something is refused, missing or previewed (the experience review's findings): a way on
from a full slot, a signed-out visitor told why they must sign in, a 404 in words, the generator's preview listing
every time and every clash, a new slot with no location guessed, and the professor's heat map."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.helpers import book, csrf_headers, in_hours, make_slot, make_user, web_login

HTMX = {"HX-Request": "true"}


async def test_a_full_slot_offers_the_next_free_time_of_the_same_professor(client: Any) -> None:
    professor = await make_user("professor")
    full = await make_slot(professor, capacity=1)
    later = await make_slot(professor, start=in_hours(72))
    await book(await make_user(), full)
    await web_login(client, (await make_user()).username)
    response = await client.post(f"/slots/{full.id}/book", data={"topic": ""}, headers={**csrf_headers(client), **HTMX})
    assert response.status_code == 409
    assert f'hx-get="/slots/{later.id}/book"' in response.text
    assert "Next free: " in response.text


async def test_a_signed_out_visitor_is_told_why_they_must_sign_in(client: Any) -> None:
    response = await client.get("/login", params={"next": "/bookings"})
    assert response.status_code == 200
    assert "Please sign in to see that page; you will go on to it after signing in." in response.text


async def test_an_unknown_page_says_not_found_in_words(client: Any) -> None:
    response = await client.get("/no-such-page")
    assert response.status_code == 404
    assert "<h1>Not found</h1>" in response.text
    assert "Not Found" not in response.text


async def test_the_generator_preview_lists_each_time_and_each_clash_before_anything_is_made(
    client: Any, database_url: str
) -> None:
    professor = await make_user("professor", timezone="Europe/Berlin")
    zone = ZoneInfo("Europe/Berlin")
    day = (datetime.now(UTC) + timedelta(days=3)).astimezone(zone).date()  # within the dashboard's 7 days
    existing = await make_slot(professor, start=datetime.combine(day, time(10, 30), zone).astimezone(UTC))
    await web_login(client, professor.username)
    form = {
        "start_date": str(day),
        "end_date": str(day),
        "weekdays": [str(day.weekday())],
        "day_start": "10:00",
        "day_end": "11:30",
        "duration_minutes": "30",
        "buffer_minutes": "0",
        "capacity": "1",
    }
    preview = await client.post("/dashboard/slots/preview", data=form, headers={**csrf_headers(client), **HTMX})
    assert preview.status_code == 200
    assert "Preview: 2 slots would be created" in preview.text
    assert preview.text.count('<li><span class="nowrap">') == 2  # 10:00 and 11:00, each by date and time
    assert "10:00–10:30" in preview.text
    assert "11:00–11:30" in preview.text
    assert '<li class="skipped">' in preview.text
    assert "overlaps 10:30–11:00" in preview.text
    slots = await client.get("/dashboard/slots-table", headers=HTMX)
    assert slots.text.count('class="slot-row"') == 1  # nothing made but the one that was there
    assert str(existing.id) in slots.text


async def test_a_new_slot_has_no_location_guessed_from_the_department(client: Any) -> None:
    professor = await make_user("professor", department="Mathematics")
    await web_login(client, professor.username)
    dashboard = await client.get("/dashboard")
    assert dashboard.status_code == 200
    assert 'value="Mathematics"' not in dashboard.text


async def test_the_statistics_show_when_students_come_as_a_weekday_by_hour_map(client: Any) -> None:
    professor = await make_user("professor", auto_confirm=True)
    await book(await make_user(), await make_slot(professor))
    await web_login(client, professor.username)
    stats = await client.get("/dashboard/stats")
    assert stats.status_code == 200
    assert '<table class="heatmap">' in stats.text
