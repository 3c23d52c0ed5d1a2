"""OpenTelemetry: with OTEL_EXPORTER_OTLP_ENDPOINT set, each request is a span and its SQL statements are its children."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.config import get_settings
from app.lib import tracing
from tests.conftest import asgi_client, running_app
from tests.helpers import api_token, make_user


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """The real provider and processors, exporting to memory instead of over OTLP."""
    memory = InMemorySpanExporter()
    monkeypatch.setattr(tracing, "span_exporter", lambda: memory)
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:4318"
    get_settings.cache_clear()
    yield memory
    del os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
    get_settings.cache_clear()


@pytest.fixture
async def traced_app(exporter: InMemorySpanExporter) -> AsyncIterator[Any]:
    async with running_app() as application:
        yield application


def finished(application: Any, exporter: InMemorySpanExporter) -> list[Any]:
    provider = next(p for p in application.plugins if isinstance(p, tracing.OpenTelemetryPlugin)).config
    provider.tracer_provider.force_flush()
    return list(exporter.get_finished_spans())


async def test_without_an_endpoint_there_is_no_tracing(app: Any) -> None:
    assert not [plugin for plugin in app.plugins if isinstance(plugin, tracing.OpenTelemetryPlugin)]


async def test_a_request_is_a_server_span_named_by_its_route_with_its_queries_as_children(
    traced_app: Any, exporter: InMemorySpanExporter
) -> None:
    student = await make_user()
    async with asgi_client(traced_app) as client:
        headers = await api_token(client, student.username)
        finished(traced_app, exporter)
        exporter.clear()  # only the next request's spans remain
        response = await client.get("/api/v1/me", headers=headers)
    assert response.status_code == 200
    spans = finished(traced_app, exporter)
    (server,) = [span for span in spans if span.kind == SpanKind.SERVER]
    assert server.name == "GET /api/v1/me"
    assert server.attributes["http.status_code"] == 200
    assert server.resource.attributes["service.name"] == "office-hours"
    queries = [span for span in spans if span.attributes.get("db.system") == "postgresql"]
    assert queries, [span.name for span in spans]
    assert {span.context.trace_id for span in queries} == {server.context.trace_id}
    assert all(span.parent is not None for span in queries)
    statements = " ".join(str(span.attributes.get("db.statement", "")) for span in queries)
    assert "api_token" in statements
    assert "user_account" in statements


async def test_a_failed_request_is_marked_on_its_span(traced_app: Any, exporter: InMemorySpanExporter) -> None:
    async with asgi_client(traced_app) as client:
        finished(traced_app, exporter)
        exporter.clear()  # only the next request's spans remain
        response = await client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    (server,) = [span for span in finished(traced_app, exporter) if span.kind == SpanKind.SERVER]
    assert server.attributes["http.status_code"] == 401
