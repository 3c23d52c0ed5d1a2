"""HTML rendering: whole pages for plain requests, named blocks for htmx, out-of-band errors and toasts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment
from jinja2_fragments import render_block
from litestar import Request, Response
from litestar.enums import MediaType
from litestar.plugins.htmx import ClientRedirect
from litestar.plugins.jinja import JinjaTemplateEngine

from app.lib.auth import current_user
from app.lib.framing import layout_for

FLASH_KEY = "flash"


def _environment(request: Request[Any, Any, Any]) -> Environment:
    engine = request.app.template_engine
    assert isinstance(engine, JinjaTemplateEngine)
    return engine.engine


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"


def flash(request: Request[Any, Any, Any], message: str, level: str = "info") -> None:
    """A message shown once on the next full page (after a redirect)."""
    messages = [*request.session.get(FLASH_KEY, []), {"message": message, "level": level}]
    request.session[FLASH_KEY] = messages


def _context(request: Request[Any, Any, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "request": request,
        "user": current_user(request),
        "now_utc": datetime.now(UTC),
        "layout": layout_for(request.scope["path"]),
        **context,
    }


def render_html(
    request: Request[Any, Any, Any], template: str, context: Mapping[str, Any], block: str | None = None
) -> str:
    env = _environment(request)
    full = _context(request, context)
    if block is not None:
        return render_block(env, template, block, **full)
    if "session" in request.scope and request.session.get(FLASH_KEY):
        full["flashes"] = request.session.pop(FLASH_KEY)
    return env.get_template(template).render(**full)


def render(
    request: Request[Any, Any, Any],
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    block: str | None = None,
    status_code: int = 200,
    extra_html: str = "",
) -> Response[str]:
    """The whole page, or for htmx requests only `block` of the same template."""
    chosen = block if block is not None and is_htmx(request) else None
    html = render_html(request, template, context or {}, chosen) + extra_html
    return Response(html, media_type=MediaType.HTML, status_code=status_code, headers={"Vary": "HX-Request"})


def toast_html(request: Request[Any, Any, Any], message: str, level: str = "info") -> str:
    return render_html(request, "components/toast.html", {"message": message, "level": level, "oob": True})


def form_errors(
    request: Request[Any, Any, Any],
    fields: Iterable[str],
    errors: Mapping[str, str],
    *,
    prefix: str = "err",
    status_code: int = 422,
) -> Response[str]:
    """Out-of-band updates of every field's error slot (cleared where the field is now fine)."""
    html = render_html(
        request, "components/form_errors.html", {"fields": list(fields), "errors": errors, "prefix": prefix}
    )
    return Response(html, media_type=MediaType.HTML, status_code=status_code, headers={"Vary": "HX-Request"})


def redirect(request: Request[Any, Any, Any], url: str) -> Response[Any]:
    """Navigate: htmx follows HX-Redirect, a plain form post gets a 303."""
    if is_htmx(request):
        return ClientRedirect(redirect_to=url)
    return Response(content=b"", status_code=303, headers={"Location": url})
