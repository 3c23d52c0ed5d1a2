"""HTML rendering: whole pages for plain requests, named blocks for htmx, out-of-band errors and toasts.

A page handler renders one template; htmx requests get only its named block (jinja2-fragments' Litestar response),
everyone else the whole page. Pieces that ride along another swap (toasts, a refreshed cell, form errors) are
rendered to strings and swapped out-of-band.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from jinja2 import Environment
from jinja2_fragments import render_block
from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Request, Response
from litestar.enums import MediaType
from litestar.plugins.flash import flash as store_flash
from litestar.plugins.htmx import ClientRedirect, HTMXRequest
from litestar.plugins.jinja import JinjaTemplateEngine
from markupsafe import Markup

from app.lib.clock import utcnow
from app.lib.framing import layout_for
from app.lib.i18n import current_locale

HTML = MediaType.HTML
VARY = {"Vary": "HX-Request"}


def _environment(request: Request[Any, Any, Any]) -> Environment:
    engine = request.app.template_engine
    assert isinstance(engine, JinjaTemplateEngine)
    return engine.engine


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    """An htmx swap (a boosted navigation wants the whole page)."""
    return isinstance(request, HTMXRequest) and bool(request.htmx) and not request.htmx.boosted


def flash(request: Request[Any, Any, Any], message: str, level: str = "info") -> None:
    """A message shown once on the next full page (after a redirect)."""
    store_flash(request, message, level)


def _context(request: Request[Any, Any, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "request": request,
        "user": request.scope.get("user"),
        "now_utc": utcnow(),
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
    return env.get_template(template).render(**full)


class RenderingMemo:
    """Renderings of one template kept by a key, per process, the oldest dropped past `size`.

    The caller's key must name everything the template reads (the language is added here); the rendering is then a
    function of the key, and a reused one can never show older data than a fresh one would: the data is read by each
    request as before, only the work of turning equal data into HTML is shared. Renderings are kept as Markup, ready
    to be placed in an autoescaping template. (Oldest first, not least recently used: a key is a large tuple, and
    one lookup per use rather than two saves hashing it twice; a popular rendering dropped is made again once.)"""

    def __init__(self, template: str, size: int = 4096) -> None:
        self.template = template
        self.size = size
        self._renderings: dict[Hashable, Markup] = {}

    def render(self, request: Request[Any, Any, Any], context: Mapping[str, Any], key: Hashable) -> Markup:
        key = (key, current_locale())
        html = self._renderings.get(key)
        if html is None:
            # The template autoescapes: what it rendered is markup.
            html = self._renderings[key] = Markup(render_html(request, self.template, context))  # noqa: S704
            if len(self._renderings) > self.size:
                del self._renderings[next(iter(self._renderings))]
        return html


def render(
    request: Request[Any, Any, Any],
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    block: str | None = None,
    status_code: int = 200,
) -> HTMXBlockTemplate:
    """The whole page, or for htmx requests only `block` of the same template."""
    return HTMXBlockTemplate(
        template_name=template,
        block_name=block if block is not None and is_htmx(request) else None,
        context=_context(request, context or {}),
        status_code=status_code,
        media_type=HTML,
        headers=VARY,
    )


def fragments(*html: str, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response[str]:
    """Rendered pieces answered together (the swap target first, out-of-band pieces after it)."""
    return Response("".join(html), media_type=HTML, status_code=status_code, headers={**VARY, **(headers or {})})


def toast_html(request: Request[Any, Any, Any], message: str, level: str = "info") -> str:
    return render_html(request, "components/toast.html", {"message": message, "level": level, "oob": True})


def form_errors_html(
    request: Request[Any, Any, Any], fields: Iterable[str], errors: Mapping[str, str], *, prefix: str = "err"
) -> str:
    """Out-of-band updates of every field's error slot (cleared where the field is now fine)."""
    return render_html(
        request, "components/form_errors.html", {"fields": list(fields), "errors": errors, "prefix": prefix}
    )


def form_errors(
    request: Request[Any, Any, Any],
    fields: Iterable[str],
    errors: Mapping[str, str],
    *,
    prefix: str = "err",
    status_code: int = 422,
) -> Response[str]:
    # Only out-of-band pieces: the form itself (the swap target) stays, with what was typed in it.
    return fragments(
        form_errors_html(request, fields, errors, prefix=prefix), status_code=status_code, headers={"HX-Reswap": "none"}
    )


def redirect(request: Request[Any, Any, Any], url: str) -> Response[Any]:
    """Navigate: htmx follows HX-Redirect, a plain form post gets a 303."""
    if is_htmx(request):
        return ClientRedirect(redirect_to=url)
    return Response(content=b"", status_code=303, headers={"Location": url})
