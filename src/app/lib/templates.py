"""The Jinja environment: autoescaped, with the few filters the templates share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine

from app.config import PROJECT_ROOT
from app.lib.clock import offset_label, timezone_groups
from app.lib.formatting import local_time, number
from app.lib.i18n import LANGUAGE_NAMES, current_locale, gettext, ngettext

TEMPLATE_DIR = PROJECT_ROOT / "src" / "app" / "web" / "templates"


def template_environment(escaped: tuple[str, ...], *, strings_escaped: bool) -> Environment:
    """The templates of pages and of e-mails: translated and formatted for whoever reads them (lib/i18n: the
    locale is looked up as each message renders)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(escaped, default_for_string=strings_escaped, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["current_locale"] = current_locale
    env.filters["local_time"] = local_time
    env.filters["number"] = number
    return env


def create_template_engine(template_globals: Mapping[str, Any] | None = None) -> JinjaTemplateEngine:
    """`template_globals`: values the domains' templates read (the app assembles them)."""
    env = template_environment(("html", "xml"), strings_escaped=True)
    env.globals["language_names"] = LANGUAGE_NAMES
    env.globals["timezone_groups"] = timezone_groups
    env.globals["offset_label"] = offset_label
    env.globals.update(template_globals or {})
    return JinjaTemplateEngine.from_environment(env)
