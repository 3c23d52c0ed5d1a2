"""Browser fixtures: Debian's chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from tests.conftest import TABLES

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def sign_in(browser: Any, base_url: str, username: str, password: str) -> Any:
    """A fresh browser context (its own cookies) signed in through the login form."""
    context = await browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_label("Username or email").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(lambda url: "/login" not in url)
    return page


async def new_context(browser: Any, base_url: str, *, width: int = 1280, height: int = 900) -> Any:
    """A fresh browser context (its own cookies) with a viewport of `width` x `height` CSS pixels.

    Not a mobile emulation: with `is_mobile` Chromium would zoom a page that is too wide out to fit it, so
    `window.innerWidth` would grow with the page and sideways scrolling could not be seen.
    """
    return await browser.new_context(base_url=base_url, viewport={"width": width, "height": height})


async def signed_in_context(
    browser: Any, base_url: str, username: str, password: str, *, width: int = 1280, height: int = 900
) -> Any:
    """A browser context of the given viewport, signed in through the real /login page (that page closed again)."""
    context = await new_context(browser, base_url, width=width, height=height)
    page = await context.new_page()
    await page.goto("/login")
    await page.get_by_label("Username or email").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(lambda url: "/login" not in url)
    await page.close()
    return context


async def settled(page: Any) -> None:
    """Wait until htmx has no request in flight and no swap still settling."""
    await page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


async def live(page: Any) -> None:
    """On a page with a live stream, wait until it is connected ("● Live"): the status text changes, and a stream
    that opens late re-fetches what is on screen."""
    if await page.locator("[sse-connect]").count():
        await page.locator("body[data-live='on']").wait_for()
    await settled(page)


def empty_tables(database_url: str) -> None:
    """What the per-test `clean_tables` does, for a module that builds its data once and empties it at its end."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        conn.execute(f"TRUNCATE {', '.join(t for t in TABLES if t in existing)} CASCADE")
