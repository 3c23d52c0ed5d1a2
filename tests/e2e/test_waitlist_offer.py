"""A waiting student sees the "it's yours" offer appear live in the grid and accepts it (PostgreSQL and Redis)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import sign_in
from tests.helpers import PASSWORD, book, make_slot, make_user

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def test_a_waiting_student_gets_the_offer_live_and_accepts_it(browser: Any, served: str) -> None:
    professor = await make_user("professor")
    holder, waiter = await make_user(), await make_user()
    slot = await make_slot(professor, capacity=1)
    booking = await book(holder, slot)

    page = await sign_in(browser, served, waiter.username, PASSWORD)
    await page.goto(f"/professors/{professor.id}?week={slot.start_time.date().isoformat()}")
    cell = page.locator(f"#slot-{slot.id}")
    await cell.get_by_role("button", name="Join the waitlist").click()
    await page.locator(f"#slot-{slot.id}").get_by_role("button", name="Leave the waitlist").wait_for()
    await page.locator("body[data-live='on']").wait_for()

    async with httpx.AsyncClient(base_url=served) as api:
        token = (await api.post("/api/v1/auth/token", json={"username": holder.username, "password": PASSWORD})).json()
        cancelled = await api.post(
            f"/api/v1/bookings/{booking.id}/cancel", headers={"Authorization": f"Bearer {token['token']}"}
        )
    assert cancelled.status_code == 200

    accept = page.locator(f"#slot-{slot.id}").get_by_role("button", name="It's yours: accept")
    await accept.wait_for(timeout=5000)
    await accept.click()
    await page.locator(f"#slot-{slot.id}.is-requested").wait_for(timeout=5000)
    assert "Requested: waiting for the professor's answer" in await page.locator(f"#slot-{slot.id}").inner_text()
    await page.context.close()
