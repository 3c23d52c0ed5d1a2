"""JSON request bodies checked at the door: valid UTF-8 and nested at most MAX_JSON_DEPTH deep.

The JSON decoder would otherwise fail on them with errors of its own (a recursion or a Unicode error) that read as
server faults; here they are what they are, a malformed request (400), and nothing behind is reached.
"""

from __future__ import annotations

import json
from typing import cast

from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPRequestEvent, HTTPScope, Receive, ReceiveMessage, Scope, Send

MAX_JSON_DEPTH = 64
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_OPEN, _CLOSE, _QUOTE, _ESCAPE = frozenset(b"[{"), frozenset(b"]}"), ord('"'), ord("\\")


def json_problem(body: bytes) -> str | None:
    """Why a JSON body is refused before decoding, or None."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "The request body is not valid UTF-8."
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _ESCAPE:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep."
        elif byte in _CLOSE:
            depth -= 1
    return None


class JsonBodyGuardMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        content_type = Headers.from_scope(scope).get("content-type", "")
        if cast("HTTPScope", scope)["method"] not in BODY_METHODS or "json" not in content_type:
            await next_app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if problem := json_problem(body):
            payload = json.dumps({"status_code": 400, "detail": problem, "code": "bad_request"}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
            await send({"type": "http.response.start", "status": 400, "headers": headers})
            await send({"type": "http.response.body", "body": payload, "more_body": False})
            return
        replayed = False

        async def replay() -> ReceiveMessage:
            nonlocal replayed
            if not replayed:
                replayed = True
                return HTTPRequestEvent(type="http.request", body=body, more_body=False)
            return await receive()

        await next_app(scope, replay, send)
