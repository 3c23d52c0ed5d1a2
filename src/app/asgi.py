"""The application factory: plugins, middleware and routes, assembled; nothing else lives here."""

from __future__ import annotations

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.htmx import HTMXPlugin
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar_saq import SAQPlugin

from app.config import PROJECT_ROOT, get_settings
from app.db import EmbeddedDatabasePlugin, get_alchemy_config
from app.domain.accounts.controllers import AccountApi, AccountPages
from app.domain.accounts.google_controllers import GoogleAuth
from app.domain.analytics.controllers import StatsApi, StatsPages
from app.domain.consultations.api import BookingApi, SlotApi
from app.domain.consultations.controllers import BookingPages
from app.domain.consultations.dashboard import DashboardPages
from app.domain.consultations.streams import LiveStreams
from app.domain.lti.controllers import EmbedPages, LtiController
from app.domain.lti.services import frame_ancestors
from app.domain.notifications.controllers import AdminNotifications, CalendarFeed, DevMailbox
from app.domain.system.controllers import SystemController
from app.domain.waitlist.controllers import WaitlistApi, WaitlistPages
from app.lib.auth import AuthenticationMiddleware
from app.lib.exceptions import exception_handlers
from app.lib.framing import FrameAncestorsMiddleware
from app.lib.headers import SecurityHeadersMiddleware
from app.lib.live import create_channels_plugin
from app.lib.openapi import document_errors
from app.lib.queue import get_saq_config
from app.lib.sessions import DatabaseSessionConfig, release_database_session
from app.lib.templates import create_template_engine

UNSAFE_EXEMPT_PATHS = ("/api/", "/lti/login", "/lti/launch")


def create_app() -> Litestar:
    settings = get_settings()
    alchemy = get_alchemy_config()
    session_config = DatabaseSessionConfig(
        key="session",
        max_age=settings.session_max_age_seconds,
        httponly=True,
        secure=settings.cookies_secure,
        samesite="lax",
        exclude=["/static", "/media", "/health", "/schema"],
    )
    csrf = CSRFConfig(
        secret=settings.secret_key,
        cookie_name="csrftoken",
        header_name="x-csrftoken",
        cookie_httponly=True,
        cookie_secure=settings.cookies_secure,
        cookie_samesite="lax",
        exclude=list(UNSAFE_EXEMPT_PATHS),
    )
    app = Litestar(
        route_handlers=[
            SystemController,
            AccountPages,
            AccountApi,
            GoogleAuth,
            SlotApi,
            BookingPages,
            DashboardPages,
            LiveStreams,
            StatsApi,
            StatsPages,
            DevMailbox,
            AdminNotifications,
            CalendarFeed,
            WaitlistApi,
            WaitlistPages,
            BookingApi,
            LtiController,
            EmbedPages,
            create_static_files_router(path="/static", directories=[PROJECT_ROOT / "static"], include_in_schema=False),
            create_static_files_router(
                path="/media", directories=[settings.upload_dir], include_in_schema=False, name="media"
            ),
        ],
        plugins=[
            SQLAlchemyPlugin(config=alchemy),
            HTMXPlugin(),
            SAQPlugin(config=get_saq_config()),
            create_channels_plugin(),
            # last, so the embedded server stops after every other shutdown hook has used it
            EmbeddedDatabasePlugin(),
        ],
        middleware=[
            SecurityHeadersMiddleware(hsts=settings.cookies_secure),
            FrameAncestorsMiddleware(origins=lambda: frame_ancestors(settings)),
            session_config.middleware,
            release_database_session,
            DefineMiddleware(AuthenticationMiddleware, exclude=["/static", "/media", "/health", "/schema"]),
        ],
        csrf_config=csrf,
        template_config=TemplateConfig(engine=create_template_engine()),
        exception_handlers=exception_handlers(),
        openapi_config=OpenAPIConfig(
            title="Office hours API",
            version="1.0.0",
            path="/schema",
            render_plugins=[ScalarRenderPlugin()],
            components=Components(
                security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer")},
            ),
            security=[{"BearerToken": []}],
        ),
        debug=settings.app_env == "development",
    )
    document_errors(app.openapi_schema)
    return app
