"""HEAD and OPTIONS answered for every route (RFC 9110), which Litestar 2.25 leaves undone:

- HEAD is answered like GET, without the body (link checkers and calendar apps ask HEAD first);
- OPTIONS lists every method of the path in `Allow` (Litestar's own answer forgets the methods of handlers added
  to a path after its first one, e.g. PATCH /api/v1/me beside GET).

Litestar picks a route's handler by method before any middleware runs, so this wraps the app's ASGI handler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from litestar import Litestar


def allowed_methods(app: Litestar, scope: Scope) -> str | None:
    """Every method of the path the request was routed to (after routing, its handler is in the scope)."""
    handler = scope.get("route_handler")
    paths = getattr(handler, "paths", None)
    if not paths:
        return None
    methods = set(app.route_handler_method_map.get(next(iter(paths)), {}))
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods)) if methods else None


def answer_head_and_options(app: Litestar) -> ASGIApp:
    inner = app.asgi_handler

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method") if scope["type"] == ScopeType.HTTP else None
        if method == "OPTIONS":

            async def send_allow(message: Message) -> None:
                if message["type"] == "http.response.start" and (allow := allowed_methods(app, scope)):
                    MutableScopeHeaders.from_message(message)["allow"] = allow
                await send(message)

            await inner(scope, receive, send_allow)
            return
        if method != "HEAD":
            await inner(scope, receive, send)
            return
        finished = False

        async def send_head(message: Message) -> None:
            nonlocal finished
            if finished:
                return
            if message["type"] == "http.response.start":
                await send(message)  # the GET's headers, Content-Length included
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                finished = True  # a body, even an endless event stream, is never sent

        await inner(cast("HTTPScope", {**scope, "method": "GET"}), receive, send_head)

    return handle
