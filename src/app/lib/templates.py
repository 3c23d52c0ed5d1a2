"""The Jinja environment: autoescaped, with the few filters the templates share."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine

from app.config import PROJECT_ROOT

TEMPLATE_DIR = PROJECT_ROOT / "src" / "app" / "web" / "templates"


def local_time(value: datetime, timezone: str, fmt: str = "%a %d %b %Y, %H:%M") -> str:
    return value.astimezone(ZoneInfo(timezone)).strftime(fmt)


def create_template_engine() -> JinjaTemplateEngine:
    from app.domain.consultations.services import FEEDBACK_EDIT_WINDOW

    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(("html", "xml"), default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local_time"] = local_time
    env.globals["feedback_window"] = FEEDBACK_EDIT_WINDOW
    return JinjaTemplateEngine.from_environment(env)
