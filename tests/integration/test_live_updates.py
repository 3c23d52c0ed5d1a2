"""Live updates over Server-Sent Events, read with plain HTTP streaming as a browser's EventSource would.

Each test runs on both backends of live events (`served`): PostgreSQL LISTEN/NOTIFY and Redis pub/sub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.conftest import free_port, start_server, wait_until_up
from tests.helpers import PASSWORD, make_slot, make_user

pytestmark = pytest.mark.slow


@asynccontextmanager
async def signed_in_client(base_url: str, username: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        await client.get("/login")
        response = await client.post(
            "/login",
            data={"username": username, "password": PASSWORD},
            headers={"x-csrftoken": client.cookies["csrftoken"]},
        )
        assert response.status_code == 303
        yield client


async def bearer(base_url: str, username: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=base_url) as client:
        token = (await client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})).json()
    return {"Authorization": f"Bearer {token['token']}"}


class EventStream:
    """Reads `event:`/`data:` blocks; the server's first comment line says the subscription is live."""

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self.lines = lines

    async def ready(self) -> None:
        async for line in self.lines:
            if line.startswith(":"):
                return

    async def next_event(self, seconds: float = 10) -> tuple[str, str]:
        async def read() -> tuple[str, str]:
            name, data = "message", []
            async for line in self.lines:
                if line.startswith("event:"):
                    name = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    data.append(line.removeprefix("data:").removeprefix(" "))
                elif not line and data:
                    return name, "\n".join(data)
            raise AssertionError("stream ended")

        return await asyncio.wait_for(read(), seconds)


@asynccontextmanager
async def grid_stream(client: httpx.AsyncClient, professor_id: Any) -> AsyncIterator[EventStream]:
    async with client.stream("GET", f"/professors/{professor_id}/events", timeout=None) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = EventStream(response.aiter_lines())
        await stream.ready()
        yield stream


async def test_an_open_grid_receives_the_cell_when_another_student_books(served: str) -> None:
    professor, watcher, booker = await make_user("professor"), await make_user(), await make_user()
    slot = await make_slot(professor, capacity=1)
    async with signed_in_client(served, watcher.username) as viewer, grid_stream(viewer, professor.id) as stream:
        async with httpx.AsyncClient(base_url=served) as api:
            booked = await api.post(f"/api/v1/slots/{slot.id}/bookings", headers=await bearer(served, booker.username))
        assert booked.status_code == 201
        name, html = await stream.next_event()
    assert name == f"slot-{slot.id}"
    assert f'<div id="slot-{slot.id}" class="slot-cell is-full"' in html
    assert '<span aria-hidden="true">✖ </span>Full' in html


async def test_the_booking_student_sees_their_own_request_waiting_for_an_answer(served: str) -> None:
    professor, student = await make_user("professor"), await make_user()
    slot = await make_slot(professor, capacity=2)
    async with signed_in_client(served, student.username) as viewer, grid_stream(viewer, professor.id) as stream:
        async with httpx.AsyncClient(base_url=served) as api:
            await api.post(f"/api/v1/slots/{slot.id}/bookings", headers=await bearer(served, student.username))
        _, html = await stream.next_event()
    assert "Requested: waiting for the professor's answer" in html


async def test_the_booking_student_of_an_auto_confirming_professor_sees_their_cell_as_booked(
    served: str,
) -> None:
    professor, student = await make_user("professor", auto_confirm=True), await make_user()
    slot = await make_slot(professor, capacity=2)
    async with signed_in_client(served, student.username) as viewer, grid_stream(viewer, professor.id) as stream:
        async with httpx.AsyncClient(base_url=served) as api:
            await api.post(f"/api/v1/slots/{slot.id}/bookings", headers=await bearer(served, student.username))
        _, html = await stream.next_event()
    assert '<span aria-hidden="true">✔ </span>Booked by you' in html


async def test_every_event_carries_an_id_for_resuming(served: str) -> None:
    professor, student = await make_user("professor"), await make_user()
    slot = await make_slot(professor, capacity=2)
    async with (
        signed_in_client(served, student.username) as viewer,
        viewer.stream("GET", f"/professors/{professor.id}/events", timeout=None) as response,
    ):
        lines = response.aiter_lines()
        await EventStream(lines).ready()
        async with httpx.AsyncClient(base_url=served) as api:
            await api.post(f"/api/v1/slots/{slot.id}/bookings", headers=await bearer(served, student.username))

        async def event_lines() -> list[str]:
            block: list[str] = []
            async for line in lines:
                if not line and block:
                    return block
                if line:
                    block.append(line)
            return block

        block = await asyncio.wait_for(event_lines(), 10)
    ids = [line.removeprefix("id:").strip() for line in block if line.startswith("id:")]
    assert len(ids) == 1, block
    assert len(ids[0]) == 32, block


async def test_a_stream_resumed_with_last_event_id_is_told_to_refetch(served: str) -> None:
    """What happened while the client was away is not kept: it re-fetches what it shows."""
    professor, student = await make_user("professor"), await make_user()
    async with (
        signed_in_client(served, student.username) as viewer,
        viewer.stream(
            "GET", f"/professors/{professor.id}/events", headers={"Last-Event-ID": "0" * 32}, timeout=None
        ) as response,
    ):
        stream = EventStream(response.aiter_lines())
        await stream.ready()
        assert await stream.next_event() == ("week-changed", "refresh")


async def test_a_booking_through_a_second_app_process_reaches_the_first(served: str, database_url: str) -> None:
    port = free_port()
    second = start_server(database_url, port)  # on the same backend: the environment carries QUEUE/CHANNELS_URL
    second_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(second_url, second)
        professor, watcher, booker = await make_user("professor"), await make_user(), await make_user()
        slot = await make_slot(professor, capacity=3)
        async with (
            signed_in_client(served, watcher.username) as viewer,
            grid_stream(viewer, professor.id) as stream,
        ):
            async with httpx.AsyncClient(base_url=second_url) as api:
                booked = await api.post(
                    f"/api/v1/slots/{slot.id}/bookings", headers=await bearer(second_url, booker.username)
                )
            assert booked.status_code == 201
            name, html = await stream.next_event()
        assert name == f"slot-{slot.id}"
        assert "2 of 3 free" in html
    finally:
        second.terminate()
        second.wait(timeout=15)


async def test_a_dropped_stream_does_not_deafen_the_next_one(served: str) -> None:
    professor, student = await make_user("professor"), await make_user()
    slot = await make_slot(professor, capacity=5)
    async with signed_in_client(served, student.username) as viewer:
        async with grid_stream(viewer, professor.id):
            pass  # connect, then drop: the server cancels the stream while it waits
        await asyncio.sleep(0.3)
        async with grid_stream(viewer, professor.id) as stream:
            async with httpx.AsyncClient(base_url=served) as api:
                other = await make_user()
                await api.post(f"/api/v1/slots/{slot.id}/bookings", headers=await bearer(served, other.username))
            name, html = await stream.next_event()
    assert name == f"slot-{slot.id}"
    assert "4 of 5 free" in html


async def test_new_slots_tell_open_grids_to_refresh_the_week(served: str) -> None:
    professor, student = await make_user("professor"), await make_user()
    async with signed_in_client(served, student.username) as viewer, grid_stream(viewer, professor.id) as stream:
        await make_slot(professor)
        name, data = await stream.next_event()
    assert (name, data) == ("week-changed", "refresh")


async def test_the_dashboard_stream_shows_a_new_booking_with_a_toast(served: str) -> None:
    professor, student = await make_user("professor"), await make_user(first_name="Nia", last_name="Okafor")
    slot = await make_slot(professor)
    async with (
        signed_in_client(served, professor.username) as dashboard,
        dashboard.stream("GET", "/dashboard/events", timeout=None) as response,
    ):
        stream = EventStream(response.aiter_lines())
        await stream.ready()
        async with httpx.AsyncClient(base_url=served) as api:
            await api.post(f"/api/v1/slots/{slot.id}/bookings", headers=await bearer(served, student.username))
        events = dict([await stream.next_event() for _ in range(3)])
    assert f"slot-row-{slot.id}" in events
    assert "Nia Okafor" in events["pending"]
    assert "New booking: Nia Okafor" in events["toast"]


async def test_the_stream_of_an_unknown_professor_is_404(client: Any) -> None:
    from tests.helpers import web_login

    await web_login(client, (await make_user()).username)
    response = await client.get("/professors/00000000-0000-0000-0000-000000000000/events")
    assert response.status_code == 404


async def test_on_redis_the_streams_listen_to_redis_pub_sub(redis_url: str, redis_live_server: str) -> None:
    """Proof that the Redis variants above do run on Redis: an event published on Redis itself reaches the stream."""
    from redis.asyncio import Redis

    from app.lib.live import LiveEvent, professor_channel

    professor, student = await make_user("professor"), await make_user()
    async with (
        signed_in_client(redis_live_server, student.username) as viewer,
        grid_stream(viewer, professor.id) as stream,
    ):
        async with Redis.from_url(redis_url) as redis:
            event = LiveEvent(kind="slots_added", professor_id=str(professor.id), event_id="f" * 32)
            await redis.publish(professor_channel(professor.id), event.encode())
        assert await stream.next_event() == ("week-changed", "refresh")
