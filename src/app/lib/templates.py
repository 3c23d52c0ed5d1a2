"""The Jinja environment: autoescaped, with the few filters the templates share."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from litestar.plugins.jinja import JinjaTemplateEngine
from markupsafe import Markup, escape

from app.config import PROJECT_ROOT, get_settings
from app.lib.clock import utcnow, zone_groups
from app.lib.formatting import format_day, local_time, number, percent, weekday_names
from app.lib.i18n import (
    LANGUAGE_NAMES,
    current_locale,
    translated,
    translated_in_context,
    translated_plural,
    translated_plural_in_context,
    translations,
)

TEMPLATE_DIR = PROJECT_ROOT / "src" / "app" / "web" / "templates"


def template_environment(escaped: tuple[str, ...], *, strings_escaped: bool, auto_reload: bool = True) -> Environment:
    """The templates of pages and of e-mails: translated and formatted for whoever reads them (lib/i18n: the
    locale is looked up as each message renders)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(escaped, default_for_string=strings_escaped, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
        # Off in production: else every render and every include asks the file system whether the file changed.
        auto_reload=auto_reload,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        translated,
        translated_plural,
        newstyle=True,
        pgettext=translated_in_context,
        npgettext=translated_plural_in_context,
    )
    env.globals["gettext"] = env.globals["_"] = template_gettext
    env.policies["ext.i18n.trimmed"] = True  # a {% trans %} block's line breaks and indents are not part of the text
    env.globals["current_locale"] = current_locale
    env.filters["local_time"] = local_time
    env.filters["day"] = format_day
    env.filters["number"] = number
    env.filters["percent"] = percent
    env.globals["weekday_names"] = weekday_names
    return env


@lru_cache(maxsize=4096)
def _escaped_message(locale: str, message: str) -> Markup:
    return Markup(translations(locale).gettext(message))  # noqa: S704 - the catalogue's text, as jinja2 marks it


@lru_cache(maxsize=4096)
def _escaped_message_filled(locale: str, message: str) -> Markup:
    return _escaped_message(locale, message) % {}


@pass_context
def template_gettext(context: Context, message: str, /, **variables: Any) -> str:
    """`_()` and `{% trans %}`: jinja2's newstyle gettext (the message always a format string, escaped where the
    template autoescapes), with each message's lookup and, without placeholders, its formatting made once per
    language: a page asks for some sixty messages, and they were a tenth of the grid page's CPU."""
    if not context.eval_ctx.autoescape:
        return translated(message) % variables
    locale = current_locale()
    if variables:
        return _escaped_message(locale, message) % variables
    return _escaped_message_filled(locale, message)


@lru_cache(maxsize=64)
def _zone_options(day: date, selected: str) -> Markup:
    parts = []
    for region, zones in zone_groups(day):
        parts.append(f'<optgroup label="{escape(region)}">')
        for value, label in zones:
            chosen = " selected" if value == selected else ""
            parts.append(f'<option value="{escape(value)}"{chosen}>{escape(label)}</option>')
        parts.append("</optgroup>")
    return Markup("\n".join(parts))  # noqa: S704 -- every value in it was escaped above


def timezone_options(selected: str | None, day: date | None = None) -> Markup:
    """The <optgroup>s of every zone (grouped by region, with the offset on `day`, else today), `selected` chosen:
    four hundred options, rendered once a day per selected zone rather than on every page."""
    return _zone_options(day or utcnow().date(), selected or "")


def create_template_engine(template_globals: Mapping[str, Any] | None = None) -> JinjaTemplateEngine:
    """`template_globals`: values the domains' templates read (the app assembles them)."""
    env = template_environment(
        ("html", "xml"), strings_escaped=True, auto_reload=get_settings().app_env == "development"
    )
    env.globals["language_names"] = LANGUAGE_NAMES
    env.globals["timezone_options"] = timezone_options
    env.globals.update(template_globals or {})
    return JinjaTemplateEngine.from_environment(env)
