"""Requests hold at most one pooled connection, and none while they wait: small pools serve large bursts."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest

from tests.conftest import free_port, start_server, wait_until_up
from tests.helpers import PASSWORD, make_slot, make_user, web_login

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


async def test_a_slowed_down_sign_in_holds_no_connection_while_it_waits(database_url: str) -> None:
    # One connection in all. Nine recent failures from this client on this account slow the next attempt down by
    # 4 s; meanwhile the database must stay free for everyone else.
    port = free_port()
    server = start_server(database_url, port, DATABASE_POOL_SIZE="1", DATABASE_MAX_OVERFLOW="0")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, server)
        user = await make_user()
        with psycopg.connect(database_url) as conn:
            conn.execute(
                "INSERT INTO auth_failure (id, key, created_at, updated_at)"
                " SELECT gen_random_uuid(), %s, now(), now() FROM generate_series(1, 9)",
                (f"pair:{user.id}:127.0.0.1",),
            )
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            slow = asyncio.create_task(
                client.post("/api/v1/auth/token", json={"username": user.username, "password": PASSWORD})
            )
            await asyncio.sleep(1)
            health = await client.get("/health")
            assert health.status_code == 200
            assert not slow.done()  # answered while the sign-in was still waiting out its delay
            assert (await slow).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
