"""The Jinja environment: autoescaped, with the few filters the templates share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine

from app.config import PROJECT_ROOT
from app.lib.clock import local_time, offset_label, timezone_groups

TEMPLATE_DIR = PROJECT_ROOT / "src" / "app" / "web" / "templates"


def create_template_engine(template_globals: Mapping[str, Any] | None = None) -> JinjaTemplateEngine:
    """`template_globals`: values the domains' templates read (the app assembles them)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(("html", "xml"), default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local_time"] = local_time
    env.globals["timezone_groups"] = timezone_groups
    env.globals["offset_label"] = offset_label
    env.globals.update(template_globals or {})
    return JinjaTemplateEngine.from_environment(env)
