"""Security headers on every response; a handler may send its own Content-Security-Policy (embed views)."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

FRAME_ANCESTORS_NONE = "'none'"


def content_security_policy(frame_ancestors: str = FRAME_ANCESTORS_NONE, form_targets: tuple[str, ...] = ()) -> str:
    """The site's policy; `form_targets`: other origins a page's form may post to (an LTI answer to a platform)."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            " ".join(("form-action 'self'", *form_targets)),
            f"frame-ancestors {frame_ancestors}",
        )
    )


DEFAULT_HEADERS = {
    "content-security-policy": content_security_policy(),
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class SecurityHeadersMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, hsts: bool = False) -> None:
        self.hsts = hsts

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                framed = "frame-ancestors 'none'" not in headers.get(
                    "content-security-policy", "frame-ancestors 'none'"
                )
                for name, value in DEFAULT_HEADERS.items():
                    if name == "x-frame-options" and framed:
                        continue  # an embed view chose its frame-ancestors; X-Frame-Options would override it
                    if name not in headers:
                        headers[name] = value
                if self.hsts:
                    headers["strict-transport-security"] = "max-age=31536000; includeSubDomains"
            await send(message)

        await next_app(scope, receive, send_with_headers)
