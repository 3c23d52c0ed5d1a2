"""The yardstick for bench/ratios.py: a plain Litestar page (one asyncpg query of 40 rows, a Jinja table of them).

Served by the same interpreter and server as the app (``python -m litestar --app-dir bench --app plain_app:app run``)
so that the ratio app/plain shows what the app's own work costs. ``PLAIN_DATABASE_URL`` (libpq form) is the
database holding ``plain_row`` (``ratios.py`` creates and fills it). ``GET /hello`` is the bare framework.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from jinja2 import Environment
from litestar import Litestar, MediaType, get

TABLE = Environment(autoescape=True).from_string(
    """<!doctype html><html><head><title>Rows</title></head><body><table>
<thead><tr><th>id</th><th>name</th><th>starts</th><th>places</th></tr></thead><tbody>
{% for row in rows %}<tr><td>{{ row.id }}</td><td>{{ row.name }}</td>
<td>{{ row.starts }}</td><td>{{ row.places }}</td></tr>
{% endfor %}</tbody></table></body></html>"""
)
QUERY = "SELECT id, name, starts, places FROM plain_row ORDER BY id LIMIT 40"
POOL: dict[str, asyncpg.Pool] = {}


@asynccontextmanager
async def lifespan(_app: Litestar) -> AsyncIterator[None]:
    POOL["pool"] = await asyncpg.create_pool(os.environ["PLAIN_DATABASE_URL"], min_size=2, max_size=10)
    try:
        yield
    finally:
        await POOL.pop("pool").close()


@get("/hello", media_type=MediaType.TEXT)
async def hello() -> str:
    return "hello"


@get("/page", media_type=MediaType.HTML)
async def page() -> str:
    async with POOL["pool"].acquire() as connection:
        rows = await connection.fetch(QUERY)
    return TABLE.render(rows=rows)


app = Litestar(route_handlers=[hello, page], lifespan=[lifespan])
