"""The home page and the health check."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy.ext.asyncio import AsyncSession

from app.lib.queue import configured_queue, queue_reachable
from app.lib.rendering import render


class SystemController(Controller):
    include_in_schema = False

    @get("/", name="home")
    async def home(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return render(request, "pages/home.html")

    @get("/health", name="health", include_in_schema=True, summary="Database and queue reachable")
    async def health(self, db_session: NamedDependency[AsyncSession]) -> Response[dict[str, str]]:
        try:
            # One round trip: outside a transaction (no BEGIN and COMMIT around it), on the request's own connection.
            connection = await db_session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
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
