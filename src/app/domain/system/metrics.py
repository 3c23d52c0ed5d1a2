"""`/metrics`: Prometheus text format, for a scraper presenting `Authorization: Bearer $METRICS_TOKEN`.

Off (404) while METRICS_TOKEN is unset; no address is trusted instead of the token.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar_saq import TaskQueues
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.lib.metrics import METRICS_PATH, exposition, read_outbox, read_queue, token_matches
from app.lib.queue import QUEUE_NAME


class MetricsController(Controller):
    include_in_schema = False

    @get(METRICS_PATH, name="metrics", cache=False)
    async def metrics(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        task_queues: NamedDependency[TaskQueues],
    ) -> Response[bytes]:
        token = get_settings().metrics_token
        if not token:
            return Response(b"Not found\n", status_code=404, media_type=MediaType.TEXT)
        if not token_matches(request.headers.get("authorization"), token):
            return Response(
                b"A valid metrics token is required\n",
                status_code=401,
                media_type=MediaType.TEXT,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        await read_outbox(db_session)
        await read_queue(task_queues.get(QUEUE_NAME))
        body, content_type = exposition()
        return Response(body, headers={"Content-Type": content_type})
