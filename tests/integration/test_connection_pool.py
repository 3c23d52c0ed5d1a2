"""A burst of signed-in requests larger than the app's connection pool is served, one pooled connection each."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import free_port, start_server, wait_until_up
from tests.helpers import make_slot, make_user, web_login

pytestmark = pytest.mark.slow
BROWSERS = 8


async def test_a_burst_of_signed_in_page_loads_larger_than_the_pool_is_all_served(database_url: str) -> None:
    # Two connections for eight simultaneous page loads: a request that held one connection while asking for
    # another (to store the web session) would deadlock the pool until its 30 s timeout and answer 500.
    port = free_port()
    server = start_server(database_url, port, DATABASE_POOL_SIZE="2", DATABASE_MAX_OVERFLOW="0")
    base = f"http://127.0.0.1:{port}"
    browsers = [httpx.AsyncClient(base_url=base, timeout=60) for _ in range(BROWSERS)]
    try:
        wait_until_up(base, server)
        professor = await make_user("professor")
        slot = await make_slot(professor)
        for browser in browsers:
            student = await make_user()
            assert (await web_login(browser, student.username)).status_code == 303

        answers = await asyncio.gather(*(browser.get(f"/professors/{professor.id}") for browser in browsers))

        assert [answer.status_code for answer in answers] == [200] * BROWSERS
        assert all(f'id="slot-{slot.id}"' in answer.text for answer in answers)
    finally:
        for browser in browsers:
            await browser.aclose()
        server.terminate()
        server.wait(timeout=30)
