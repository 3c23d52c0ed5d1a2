"""Logs: one JSON object per line in production (LOG_FORMAT=json), text otherwise; every line names its request.

A request's id comes from its `X-Request-ID` header when that is sane (an upstream proxy's id), else it is made
here; it is echoed in the response's `X-Request-ID` header. Jobs queued while a request (or a job) runs carry its id
(`job.meta["request_id"]`), and the worker binds it while the job runs, so an e-mail's delivery line names the
request that caused it. Lines never carry personal data beyond ids: no names, addresses or query strings.
"""

from __future__ import annotations

import json
import logging
import re
import time
import traceback
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from litestar.enums import ScopeType
from litestar.logging import LoggingConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from saq.job import Job
from saq.types import Context

from app.config import Settings

REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,127}")
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
JOB: ContextVar[str | None] = ContextVar("job", default=None)
access_logger = logging.getLogger("app.access")

# Attributes every LogRecord has; anything else on a record was passed as `extra=` and goes into the JSON object.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "job",
    "color_message",  # uvicorn's message again, with terminal colours
}


def current_request_id() -> str | None:
    return REQUEST_ID.get()


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == REQUEST_ID_HEADER.encode():
            presented = value.decode("latin-1").strip()
            if _SANE_ID.fullmatch(presented):
                return presented
            break
    return uuid.uuid4().hex


def with_request_id(inner: ASGIApp, *, access_log: bool) -> ASGIApp:
    """The outermost layer: bind the request id for everything the request does, echo it, log one access line."""

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await inner(scope, receive, send)
            return
        method = str(scope.get("method", ""))
        request_id = request_id_from(scope.get("headers", ()))
        token = REQUEST_ID.set(request_id)
        started, status = time.perf_counter(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        try:
            await inner(scope, receive, send_with_id)
        finally:
            if access_log:
                route = scope.get("path_template") or "(no route)"
                access_logger.info(
                    "%s %s %s",
                    method,
                    route,
                    status,
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    },
                )
            REQUEST_ID.reset(token)

    return handle


async def tag_job(job: Job) -> None:
    """Before a job is queued: it carries the id of the request (or job) that queued it."""
    request_id = REQUEST_ID.get()
    if request_id and "request_id" not in job.meta:
        job.meta["request_id"] = request_id


async def bind_job(ctx: Context) -> None:
    """Before a job runs (in its own task): its lines carry its request id and name."""
    job = ctx.get("job")
    if job is not None:
        REQUEST_ID.set(job.meta.get("request_id"))
        JOB.set(f"{job.function}:{job.key}")


class ContextFilter(logging.Filter):
    """Adds the request id and the job to every record (a handler's filter: it sees propagated records too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        record.job = JOB.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id and request_id != "-":
            line["request_id"] = request_id
        if job := getattr(record, "job", None):
            line["job"] = job
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(levelname)s - %(asctime)s - %(name)s - [%(request_id)s] %(message)s"


def logging_config(settings: Settings) -> LoggingConfig:
    """Everything to stderr through one handler, uvicorn's loggers included (they propagate to the root)."""
    json_lines = settings.log_format == "json"
    quiet_uvicorn = {"handlers": [], "propagate": True}
    return LoggingConfig(
        formatters={
            "json": {"()": f"{__name__}.JsonFormatter"},
            "standard": {"format": TEXT_FORMAT},
        },
        filters={"context": {"()": f"{__name__}.ContextFilter"}},
        handlers={
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json" if json_lines else "standard",
                "filters": ["context"],
            },
        },
        root={"handlers": ["console"], "level": "INFO"},
        loggers={
            "litestar": {"level": "INFO", "handlers": [], "propagate": True},
            "uvicorn": quiet_uvicorn,
            "uvicorn.error": quiet_uvicorn,
            # JSON lines have their own access line (with the request id and the route, never the query string).
            "uvicorn.access": {**quiet_uvicorn, "level": "WARNING" if json_lines else "INFO"},
        },
        # Handled errors (a 404, a refused booking) are answers, not log lines; lib/exceptions logs the real ones.
        log_exceptions="never",
    )
