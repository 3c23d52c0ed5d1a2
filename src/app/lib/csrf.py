"""Cross-site request forgery, two locks: the browser must say the request comes from this site (Sec-Fetch-Site or
Origin), and Litestar's token must match (the double-submit cookie, `__Host-` prefixed on https)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast
from urllib.parse import urlsplit

from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send

from app.config import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
REFUSED = b"Refused: this form was sent from another site."


def csrf_cookie_name(settings: Settings) -> str:
    """`__Host-` cookies are only accepted over https, from this host, for the whole site: no subdomain can set it."""
    return "__Host-csrftoken" if settings.cookies_secure else "csrftoken"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class SameOriginMiddleware(ASGIMiddleware):
    """Unsafe requests (POST, PUT, PATCH, DELETE) of the web pages must come from the site itself.

    Browsers send Sec-Fetch-Site (which a page cannot forge) and Origin; a request without either (an old browser,
    a script) is left to the token check. The API (bearer tokens, no cookies) and the LTI endpoints (which the LMS
    posts to across sites by design) are exempt.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, app_url: str, exempt: Iterable[str]) -> None:
        self.origin = origin_of(app_url)
        self.exempt = tuple(exempt)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        method = cast("HTTPScope", scope)["method"]
        if method in SAFE_METHODS or scope["path"].startswith(self.exempt) or self._same_site(scope):
            await next_app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(REFUSED))],
            }
        )
        await send({"type": "http.response.body", "body": REFUSED, "more_body": False})

    def _same_site(self, scope: Scope) -> bool:
        headers = Headers.from_scope(scope)
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None:
            return fetch_site in ("same-origin", "none")  # "none": typed or bookmarked by the person
        origin = headers.get("origin")
        if origin is None or origin == "null":
            return origin is None
        host = headers.get("host", "")
        return origin.lower() in (self.origin, f"http://{host}".lower(), f"https://{host}".lower())
