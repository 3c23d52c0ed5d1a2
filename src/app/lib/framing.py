"""Pages another site may frame (the embed views and the LTI flow) and how they present themselves there."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.lib.headers import FRAME_ANCESTORS_NONE, content_security_policy

FRAMABLE_PATHS = ("/embed/", "/lti/")
EMBED_LAYOUT = "embed_base.html"
SITE_LAYOUT = "base.html"


def is_framable(path: str) -> bool:
    return path.startswith(FRAMABLE_PATHS)


def layout_for(path: str) -> str:
    """Framable pages (their error pages too) render without the site navigation, which a frame could not follow."""
    return EMBED_LAYOUT if is_framable(path) else SITE_LAYOUT


class FrameAncestorsMiddleware(ASGIMiddleware):
    """Every response of a framable path names who may frame it; every other keeps `frame-ancestors 'none'`.

    The origins are read per response (FRAME_ANCESTORS and the registered LMS platforms), so a platform added
    from the command line is allowed at once by every app process. Redirects get the policy too: a frame
    follows them, and the default X-Frame-Options would otherwise stop it (lib/headers drops it here).
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, origins: Callable[[], Awaitable[Iterable[str]]]) -> None:
        self.origins = origins

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if not is_framable(scope["path"]):
            await next_app(scope, receive, send)
            return

        async def send_framable(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                if "content-security-policy" not in headers:
                    allowed = " ".join(await self.origins()) or FRAME_ANCESTORS_NONE
                    headers["content-security-policy"] = content_security_policy(allowed)
            await send(message)

        await next_app(scope, receive, send_framable)
