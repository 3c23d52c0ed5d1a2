"""German words are longer: the main pages, read in German on a phone (390 px), still do not scroll sideways.

The data is test_every_page.py's world, its people switched to German; anonymous pages are asked for by a browser
whose language is German. With SCREENSHOTS_DIR set, each page is also saved there as a PNG to look at.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.e2e.conftest import empty_tables, signed_in_context
from tests.e2e.test_every_page import (
    STICKING_OUT,
    Opener,
    World,
    booking_dialog,
    build_world,
    dashboard,
    describe,
    grid,
    plain,
    stats,
)
from tests.helpers import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTH, HEIGHT = 390, 844
PAGES: list[tuple[str, str, Opener]] = [
    ("anonymous", "login", plain("/login")),
    ("anonymous", "register", plain("/register")),
    ("student", "grid", grid),
    ("student", "booking-dialog", booking_dialog),
    ("student", "bookings", plain("/bookings")),
    ("student", "waitlist", plain("/waitlist")),
    ("student", "settings", plain("/settings")),
    ("professor", "dashboard", dashboard),
    ("professor", "stats", stats),
    ("professor", "booking", plain(lambda world: f"/bookings/{world.requested_booking}")),
    ("admin", "admin-notifications", plain("/admin/notifications?status=all")),
]


@pytest.fixture(autouse=True)
def clean_tables() -> None:
    """The data is built once for the module and emptied at its end."""


@pytest.fixture(scope="module")
async def world(live_server: str, database_url: str) -> AsyncIterator[World]:
    built = await build_world(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE user_account SET locale = 'de'")
    yield built
    empty_tables(database_url)


@pytest.fixture(scope="module")
async def contexts(browser: Any, live_server: str, world: World) -> AsyncIterator[dict[str, Any]]:
    size = {"width": WIDTH, "height": HEIGHT}
    made = {
        "anonymous": await browser.new_context(base_url=live_server, viewport=size, locale="de-DE"),
        **{
            role: await signed_in_context(browser, live_server, getattr(world, role).username, PASSWORD, **size)
            for role in ("student", "professor", "admin")
        },
    }
    yield made
    for context in made.values():
        await context.close()


@pytest.mark.parametrize(("role", "name", "opener"), PAGES, ids=[f"{role}-{name}" for role, name, _ in PAGES])
async def test_a_german_page_fits_a_phone(
    contexts: dict[str, Any], world: World, role: str, name: str, opener: Opener
) -> None:
    page = await contexts[role].new_page()
    try:
        await opener(page, world)
        assert await page.evaluate("document.documentElement.lang") == "de"
        if folder := os.environ.get("SCREENSHOTS_DIR"):
            await page.screenshot(path=str(Path(folder) / f"de-{role}-{name}-{WIDTH}.png"), full_page=True)
        layout = await page.evaluate(STICKING_OUT)
        sticking_out = [describe(element) for element in layout["found"] if element["outermost"]][:6]
        assert layout["scrollWidth"] <= layout["innerWidth"], sticking_out
    finally:
        await page.close()
