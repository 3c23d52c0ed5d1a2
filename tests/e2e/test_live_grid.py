"""Two students and their professor, each in their own browser: a booking shows up everywhere at once
(live events on PostgreSQL and on Redis)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import sign_in
from tests.helpers import PASSWORD, make_slot, make_user

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def test_a_booking_appears_live_in_the_other_grid_and_on_the_dashboard(browser: Any, served: str) -> None:
    professor = await make_user("professor", first_name="Ada", last_name="Lovelace")
    first, second = await make_user(first_name="Mia"), await make_user(first_name="Noah")
    slot = await make_slot(professor, capacity=1, location="Room 1")
    week = f"/professors/{professor.id}?week={slot.start_time.date().isoformat()}"

    booker = await sign_in(browser, served, first.username, PASSWORD)
    watcher = await sign_in(browser, served, second.username, PASSWORD)
    dashboard = await sign_in(browser, served, professor.username, PASSWORD)
    await dashboard.goto("/dashboard")
    for page in (booker, watcher):
        await page.goto(week)
        await page.locator(f"#slot-{slot.id}.is-free").wait_for()
    # Wait until every page's stream is connected before the booking.
    for page in (booker, watcher, dashboard):
        await page.locator("body[data-live='on']").wait_for()

    await booker.locator(f"#slot-{slot.id} button").click()
    await booker.get_by_label("What would you like to discuss?").fill("Analytical engines")
    await booker.get_by_role("button", name="Request this slot").click()
    await booker.locator(f"#slot-{slot.id}.is-requested").wait_for()

    # The other student's cell turns full without a reload...
    await watcher.locator(f"#slot-{slot.id}.is-full").wait_for(timeout=5000)
    assert "Full" in await watcher.locator(f"#slot-{slot.id}").inner_text()
    # ...and the professor sees the request and a toast.
    await dashboard.locator("#pending .who", has_text=first.full_name).wait_for(timeout=5000)
    await dashboard.locator("#toasts").get_by_text(f"New booking: {first.full_name}").wait_for(timeout=5000)
    for page in (booker, watcher, dashboard):
        await page.context.close()
