"""OpenTelemetry tracing, on when OTEL_EXPORTER_OTLP_ENDPOINT is set: a span per request (Litestar's OpenTelemetry
plugin) with a child span per SQL statement (SQLAlchemy's instrumentation), exported over OTLP/HTTP in batches.

The exporter reads the standard variables itself (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT...); OTEL_SERVICE_NAME names the service (default "office-hours"). The provider
is the app's own (not the global one), so building an app never changes another's tracing.
"""

from __future__ import annotations

import os
from typing import Any

from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings

SERVICE_NAME = "office-hours"
UNTRACED_PATHS = ["/static", "/metrics"]


def span_exporter() -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def tracer_provider() -> TracerProvider:
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(span_exporter()))
    return provider


class Tracing:
    """The app's tracing: the request plugin, plus database spans from startup to shutdown."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.plugin = OpenTelemetryPlugin(OpenTelemetryConfig(tracer_provider=provider, exclude=UNTRACED_PATHS))

    def trace_database(self, engine: AsyncEngine) -> None:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        instrumentor: Any = SQLAlchemyInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            # It declares SQLAlchemy < 2.1; its event hooks work on 2.1 (tests/integration/test_tracing.py).
            instrumentor.instrument(engine=engine.sync_engine, tracer_provider=self.provider, skip_dep_check=True)

    def shutdown(self) -> None:
        """Stop the database spans and send what is still buffered."""
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        instrumentor: Any = SQLAlchemyInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        self.provider.shutdown()


def configure_tracing(settings: Settings) -> Tracing | None:
    return Tracing(tracer_provider()) if settings.otel_endpoint else None
