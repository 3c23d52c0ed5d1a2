"""`/metrics`: Prometheus text, only for the bearer of METRICS_TOKEN; the app's figures move with what happens."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.config import get_settings
from tests.helpers import api_token, book, in_hours, make_slot, make_user

TOKEN = "scrape-" + "t" * 32
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def metrics_token() -> Iterator[str]:
    os.environ["METRICS_TOKEN"] = TOKEN
    get_settings.cache_clear()
    yield TOKEN
    del os.environ["METRICS_TOKEN"]
    get_settings.cache_clear()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, parsed by prometheus_client's own parser: (name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert response.headers["content-type"].count("charset") == 1
    return samples(response.text)


def value(scraped: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_are_off_while_no_token_is_set(client: Any) -> None:
    response = await client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 404


@pytest.mark.usefixtures("metrics_token")
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}],
)
async def test_metrics_without_the_right_bearer_token_are_refused(client: Any, headers: dict[str, str]) -> None:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "office_hours" not in response.text


@pytest.mark.usefixtures("metrics_token")
async def test_a_booking_and_a_refused_booking_move_their_counters(client: Any) -> None:
    professor = await make_user("professor", auto_confirm=True)
    slot = await make_slot(professor, capacity=1)
    before = await scrape(client)
    winner, loser = await make_user(), await make_user()
    booked = await client.post(f"/api/v1/slots/{slot.id}/bookings", headers=await api_token(client, winner.username))
    refused = await client.post(f"/api/v1/slots/{slot.id}/bookings", headers=await api_token(client, loser.username))
    after = await scrape(client)
    assert (booked.status_code, refused.status_code) == (201, 409)
    assert (
        value(after, "office_hours_bookings_created_total") - value(before, "office_hours_bookings_created_total") == 1
    )
    assert (
        value(after, "office_hours_booking_conflicts_total") - value(before, "office_hours_booking_conflicts_total")
        == 1
    )
    # The booking's two mails wait in the outbox (no worker runs in this test process).
    assert value(after, "office_hours_outbox_notifications", status="queued") == 2
    assert value(after, "office_hours_outbox_notifications", status="sent") == 0


@pytest.mark.usefixtures("metrics_token")
async def test_request_latency_is_a_histogram_by_route_template_not_by_raw_path(client: Any) -> None:
    student = await make_user()
    professor = await make_user("professor")
    headers = await api_token(client, student.username)
    for slot in [await make_slot(professor), await make_slot(professor, start=in_hours(72))]:
        assert (await client.get(f"/api/v1/slots/{slot.id}", headers=headers)).status_code == 200
    scraped = await scrape(client)
    route = "/api/v1/slots/{slot_id}"
    count = value(
        scraped,
        "office_hours_request_duration_seconds_count",
        app_name="office_hours",
        method="GET",
        path=route,
        status_code="200",
    )
    assert count >= 2
    assert (
        value(
            scraped,
            "office_hours_request_duration_seconds_bucket",
            app_name="office_hours",
            method="GET",
            path=route,
            status_code="200",
            le="+Inf",
        )
        == count
    )
    paths = {dict(labels).get("path", "") for name, labels in scraped if name.startswith("office_hours_request")}
    assert not any(str(professor.id) in path or "/api/v1/slots/0" in path for path in paths)
    assert not any(path.count("-") >= 4 for path in paths)  # no UUID in any label


@pytest.mark.usefixtures("metrics_token")
async def test_a_waitlist_promotion_is_counted(client: Any) -> None:
    professor = await make_user("professor", auto_confirm=True)
    slot = await make_slot(professor, capacity=1)
    holder, waiting = await make_user(), await make_user()
    taken = await book(holder, slot)
    joined = await client.post(f"/api/v1/slots/{slot.id}/waitlist", headers=await api_token(client, waiting.username))
    assert joined.status_code == 201
    before = await scrape(client)
    cancelled = await client.post(
        f"/api/v1/bookings/{taken.id}/cancel", headers=await api_token(client, holder.username)
    )
    assert cancelled.status_code == 200
    after = await scrape(client)
    promoted = sum(
        value(after, "office_hours_waitlist_promotions_total", how=how)
        - value(before, "office_hours_waitlist_promotions_total", how=how)
        for how in ("offered", "booked")
    )
    assert promoted == 1


@pytest.mark.usefixtures("metrics_token")
async def test_queue_depth_and_oldest_job_age_come_from_the_queue(client: Any) -> None:
    from app.lib.queue import get_queue

    queue = await get_queue()
    job = await queue.enqueue("complete_ended_slots", key="metrics-test-job")
    assert job is not None
    try:
        scraped = await scrape(client)
        assert value(scraped, "office_hours_queue_depth") >= 1
        assert value(scraped, "office_hours_queue_oldest_job_age_seconds") >= 0
    finally:
        await queue.abort(job, "test over")
    assert value(await scrape(client), "office_hours_queue_depth") == 0


@pytest.mark.usefixtures("metrics_token")
async def test_an_open_live_stream_is_counted_while_it_is_open(app: Any, client: Any) -> None:
    import asyncio

    from app.domain.consultations.streams import events_of

    professor = await make_user("professor")
    channels = app.plugins.get("ChannelsPlugin")
    before = value(await scrape(client), "office_hours_sse_streams_open")
    stream = events_of(channels, f"professor_{professor.id.hex}")
    assert await anext(stream) is None  # subscribed
    during = value(await scrape(client), "office_hours_sse_streams_open")
    await stream.aclose()
    await asyncio.sleep(0)
    after = value(await scrape(client), "office_hours_sse_streams_open")
    assert (during - before, after - before) == (1, 0)
