"""Accessibility in the real browser: axe-core finds no serious or critical problem on the main pages, and a
booking can be made with the keyboard alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import sign_in
from tests.helpers import PASSWORD, book, make_slot, make_user

pytestmark = [pytest.mark.browser, pytest.mark.slow]
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()  # axe-core 4.14.1 from npm
SEVERE = ("serious", "critical")


async def severe_violations(page: Any) -> list[dict[str, Any]]:
    # Evaluated through the DevTools protocol: the page's CSP (no inline scripts) stays as it is.
    await page.evaluate(AXE)
    violations: list[dict[str, Any]] = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, target: v.nodes[0].target}))"
    )
    return [v for v in violations if v["impact"] in SEVERE]


async def test_the_main_pages_have_no_serious_accessibility_problems(browser: Any, live_server: str) -> None:
    professor = await make_user("professor", first_name="Ada", last_name="Lovelace", department="Mathematics")
    student = await make_user()
    slot = await make_slot(professor, capacity=2)
    await book(student, await make_slot(professor, start=slot.start_time.replace(hour=(slot.start_time.hour + 2) % 24)))
    week = f"/professors/{professor.id}?week={slot.start_time.date().isoformat()}"
    found: dict[str, list[dict[str, Any]]] = {}

    anonymous = await (await browser.new_context(base_url=live_server)).new_page()
    for path in ("/login", "/register"):
        await anonymous.goto(path)
        found[path] = await severe_violations(anonymous)

    page = await sign_in(browser, live_server, student.username, PASSWORD)
    for path in ("/professors", week, "/bookings", "/settings", f"/embed/professors/{professor.id}"):
        await page.goto(path)
        found[path] = await severe_violations(page)
    await page.goto(week)
    await page.locator(f"#slot-{slot.id} button").click()
    await page.locator("dialog[open]").wait_for()
    found["booking dialog"] = await severe_violations(page)

    dashboard = await sign_in(browser, live_server, professor.username, PASSWORD)
    await dashboard.goto("/dashboard")
    await dashboard.locator("#stats-panel .stat-cards").wait_for()
    found["/dashboard"] = await severe_violations(dashboard)
    await dashboard.locator(f"#slot-row-{slot.id}").get_by_role("button", name="Edit").click()
    await dashboard.locator("form.inline-edit").wait_for()
    found["dashboard, inline edit open"] = await severe_violations(dashboard)

    assert {page: problems for page, problems in found.items() if problems} == {}
    for context in {anonymous.context, page.context, dashboard.context}:
        await context.close()


async def test_a_student_books_with_the_keyboard_alone(browser: Any, live_server: str) -> None:
    professor, student = await make_user("professor"), await make_user()
    slot = await make_slot(professor)
    page = await sign_in(browser, live_server, student.username, PASSWORD)
    await page.goto(f"/professors/{professor.id}?week={slot.start_time.date().isoformat()}")
    button = page.locator(f"#slot-{slot.id} button")
    for _ in range(40):  # Tab through the page until the slot has the focus
        await page.keyboard.press("Tab")
        if await button.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail("the slot button is not reachable with Tab")
    await page.keyboard.press("Enter")
    topic = page.get_by_label("What would you like to discuss?")
    await topic.wait_for()
    assert await topic.evaluate("el => el === document.activeElement")  # focus moved into the dialog
    await page.keyboard.type("Eigenvalues")
    await page.keyboard.press("Enter")
    cell = page.locator(f"#slot-{slot.id}.is-requested")
    await cell.wait_for()
    # After the dialog closes, focus returns to the booked slot rather than the top of the page, and stays there when
    # the live update of the same slot replaces the cell a moment later.
    focus_on_slot = f"() => document.getElementById('slot-{slot.id}').contains(document.activeElement)"
    await page.wait_for_function(focus_on_slot, timeout=2000)
    await page.wait_for_timeout(500)  # the slot's live update arrives within this
    assert await page.evaluate(focus_on_slot)
    await page.context.close()
