"""Time zones like Calendly: the browser's zone is used from registration on, and the grid can show another."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.e2e.conftest import live, signed_in_context
from tests.helpers import PASSWORD, make_slot, make_user

pytestmark = [pytest.mark.browser, pytest.mark.slow]
NEW_YORK = "America/New_York"


def next_week_at(hour: int, zone: str = "Europe/Berlin") -> datetime:
    """Wednesday of next week at `hour` on the wall clocks of `zone`. Other zones' readings of it are worked out for
    that day (`wall`), so the same case holds in summer and winter time and between the two."""
    today = datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
    wednesday = today + timedelta(days=7 - today.weekday() + 2)
    return datetime.combine(wednesday, time(hour), ZoneInfo(zone)).astimezone(UTC)


def wall(instant: datetime, zone: str, minutes: int = 0) -> str:
    return f"{(instant + timedelta(minutes=minutes)).astimezone(ZoneInfo(zone)):%H:%M}"


def saved_zone(database_url: str, username: str) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT timezone FROM user_account WHERE username = %s", (username,)).fetchone()
    assert row is not None
    return str(row[0])


async def test_a_new_york_browser_registers_in_new_york_time_and_sees_the_grid_in_it(
    browser: Any, live_server: str, database_url: str
) -> None:
    professor = await make_user("professor", timezone="Europe/Berlin")
    slot = await make_slot(professor, next_week_at(15))  # 15:00 in Berlin: 09:00 in New York (10:00 some weeks)
    context = await browser.new_context(base_url=live_server, timezone_id="America/New_York")
    page = await context.new_page()
    await page.goto("/register")
    assert await page.get_by_label("Time zone").input_value() == "America/New_York"
    await page.get_by_label("Username").fill("newyorker")
    await page.get_by_label("Email").fill("newyorker@uni.example")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.locator("#main").get_by_role("button", name="Create account").click()
    await page.wait_for_url("**/professors")
    assert saved_zone(database_url, "newyorker") == "America/New_York"

    await page.goto(f"/professors/{professor.id}?week={slot.start_time.date().isoformat()}")
    await live(page)
    cell = page.locator(f"#slot-{slot.id}")
    start = slot.start_time
    assert (
        await cell.locator(".slot-time").inner_text()
    ).strip() == f"{wall(start, NEW_YORK)}–{wall(start, NEW_YORK, 30)}"
    assert "15:00 in Berlin" in await cell.inner_text()
    assert "Times in America/New_York" in await page.locator(".zone-line").inner_text()
    await context.close()


async def test_switching_the_grid_to_another_zone_re_renders_it(browser: Any, live_server: str) -> None:
    professor = await make_user("professor", timezone="Europe/Berlin")
    student = await make_user(timezone="Europe/Berlin")
    slot = await make_slot(professor, next_week_at(10))  # 10:00 in Berlin: 18:00 in Tokyo (17:00 in summer)
    context = await signed_in_context(browser, live_server, student.username, PASSWORD)
    page = await context.new_page()
    await page.goto(f"/professors/{professor.id}?week={slot.start_time.date().isoformat()}")
    await live(page)
    assert (await page.locator(f"#slot-{slot.id} .slot-time").inner_text()).strip() == "10:00–10:30"

    await page.locator(".zone-line summary").click()
    await page.get_by_label("Show times in").select_option("Asia/Tokyo")
    await page.locator(".zone-line").get_by_role("button", name="Show").click()
    await page.locator(".zone-line", has_text="Times in Asia/Tokyo").wait_for()
    tokyo = f"{wall(slot.start_time, 'Asia/Tokyo')}–{wall(slot.start_time, 'Asia/Tokyo', 30)}"
    assert (await page.locator(f"#slot-{slot.id} .slot-time").inner_text()).strip() == tokyo
    assert "tz=Asia%2FTokyo" in page.url or "tz=Asia/Tokyo" in page.url
    await context.close()


async def test_a_person_whose_device_is_elsewhere_is_offered_its_zone_and_can_switch(
    browser: Any, live_server: str, database_url: str
) -> None:
    student = await make_user(timezone="Europe/London")
    context = await browser.new_context(base_url=live_server, timezone_id="America/Chicago")
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_label("Username or email").fill(student.username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(lambda url: "/login" not in url)
    offer = page.locator("[data-zone-offer]")
    await offer.wait_for()
    assert "This device is set to America/Chicago" in await offer.inner_text()
    await offer.get_by_role("button", name="Show times in America/Chicago").click()
    await page.locator(".flash", has_text="Times are now shown in America/Chicago.").wait_for()
    assert saved_zone(database_url, student.username) == "America/Chicago"
    assert not await page.locator("[data-zone-offer]").is_visible()
    await context.close()
