"""The home page and the health check."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy.ext.asyncio import AsyncEngine

from app.lib.queue import configured_queue, queue_reachable
from app.lib.rendering import render


@lru_cache(maxsize=4)
def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The engine's pool, used one statement at a time with no BEGIN and COMMIT around it (made once: each call of
    `execution_options` builds a new engine object)."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


class SystemController(Controller):
    include_in_schema = False

    @get("/", name="home")
    async def home(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return render(request, "pages/home.html")

    @get("/health", name="health", include_in_schema=True, summary="Database and queue reachable")
    async def health(self, db_engine: NamedDependency[AsyncEngine]) -> Response[dict[str, str]]:
        try:
            # One round trip, outside a transaction; the request's session (and its commit) stays unused.
            async with autocommit(db_engine).connect() as connection:
                await connection.exec_driver_sql("SELECT 1")
            database = "ok"
        except Exception:
            database = "unreachable"
        # Not litestar-saq's `task_queues` dependency: it connects the queue with no bound, so a queue that is down
        # would hang this check instead of answering "degraded" (queue_reachable bounds the connection).
        queue_state = "ok" if await queue_reachable(configured_queue()) else "unreachable"
        healthy = database == queue_state == "ok"
        return Response(
            {"status": "ok" if healthy else "degraded", "database": database, "queue": queue_state},
            status_code=HTTP_200_OK if healthy else HTTP_503_SERVICE_UNAVAILABLE,
        )
