"""The application factory: plugins, middleware and routes, assembled; nothing else lives here."""

from __future__ import annotations

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.flash import FlashConfig, FlashPlugin
from litestar.plugins.htmx import HTMXPlugin, HTMXRequest
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar_saq import SAQPlugin

from app.config import PROJECT_ROOT, get_settings
from app.domain.accounts.api import AccountApi
from app.domain.accounts.auth import SESSION_USER_KEY, AuthenticationMiddleware
from app.domain.accounts.controllers import AccountPages
from app.domain.accounts.models import User, UserSession
from app.domain.admin.controllers import AdminNotifications, DevMailbox
from app.domain.admin.pages import AdminPages
from app.domain.analytics.controllers import StatsApi, StatsPages
from app.domain.calendar.controllers import CalendarFeed
from app.domain.consultations.api import BookingApi, SlotApi, WaitlistApi
from app.domain.consultations.dashboard import DashboardPages
from app.domain.consultations.manage import BookingManagePages, EmailActions
from app.domain.consultations.pages import TEMPLATE_GLOBALS, BookingPages, WaitlistPages
from app.domain.consultations.streams import LiveStreams
from app.domain.google.controllers import GoogleAuth
from app.domain.lti.admin import LtiAdminPages
from app.domain.lti.controllers import LtiController, LtiRegistration
from app.domain.lti.course_pages import CoursePages
from app.domain.lti.embed import EmbedPages
from app.domain.lti.placements import DeepLinkPages
from app.domain.lti.platforms import frame_ancestors
from app.domain.notifications.emails import EmailBook
from app.domain.privacy.controllers import PrivacyApi, PrivacyPages
from app.domain.system.controllers import SystemController
from app.domain.system.metrics import MetricsController
from app.lib.body import JsonBodyGuardMiddleware
from app.lib.csrf import SameOriginMiddleware, csrf_cookie_name
from app.lib.database import EmbeddedDatabasePlugin, get_alchemy_config
from app.lib.exceptions import exception_handlers
from app.lib.framing import FrameAncestorsMiddleware
from app.lib.headers import SecurityHeadersMiddleware
from app.lib.i18n import LocaleMiddleware
from app.lib.live import create_channels_plugin
from app.lib.logs import logging_config, with_request_id
from app.lib.methods import answer_head_and_options
from app.lib.metrics import METRICS_PATH, prometheus_config
from app.lib.openapi import document_errors, operation_id
from app.lib.process import freeze_startup_objects
from app.lib.sessions import DatabaseSessionConfig
from app.lib.templates import create_template_engine
from app.lib.tracing import configure_tracing
from app.lib.unit_of_work import UnitOfWorkMiddleware
from app.services import EMAILS
from app.worker import saq_config

UNSAFE_EXEMPT_PATHS = ("/api/", "/lti/login", "/lti/launch")
UNAUTHENTICATED_PATHS = ["/static", "/media", "/health", "/schema", METRICS_PATH]
# Responses without words or forms: no language to choose, no CSRF cookie to set.
WORDLESS_PATHS = ("/static/", "/media/", "/health")
SESSIONLESS_PATHS = ("/static/", "/health")  # no database session: files, and a check on its own connection


def provide_emails() -> EmailBook:
    return EMAILS


def create_app() -> Litestar:
    settings = get_settings()
    alchemy = get_alchemy_config()
    session_config = DatabaseSessionConfig(
        key="session",
        max_age=settings.session_max_age_seconds,
        httponly=True,
        secure=settings.cookies_secure,
        samesite="lax",
        exclude=UNAUTHENTICATED_PATHS,
        model=UserSession,
        # The signed-in person is read with the session row (one round trip); authentication finds them there.
        joined_entity=User,
        joined_key=SESSION_USER_KEY,
    )
    csrf = CSRFConfig(
        secret=settings.secret_key,
        cookie_name=csrf_cookie_name(settings),
        header_name="x-csrftoken",
        cookie_httponly=True,
        cookie_secure=settings.cookies_secure,
        cookie_samesite="lax",
        # Static files and the health check need no CSRF token (nothing there accepts a form).
        exclude=[*UNSAFE_EXEMPT_PATHS, *WORDLESS_PATHS],
    )
    template_config = TemplateConfig(engine=create_template_engine(TEMPLATE_GLOBALS))
    tracing = configure_tracing(settings)  # None unless OTEL_EXPORTER_OTLP_ENDPOINT is set

    def start_tracing() -> None:
        if tracing is not None:
            tracing.trace_database(alchemy.get_engine())

    def stop_tracing() -> None:
        if tracing is not None:
            tracing.shutdown()

    app = Litestar(
        route_handlers=[
            SystemController,
            MetricsController,
            AccountPages,
            AccountApi,
            GoogleAuth,
            SlotApi,
            BookingPages,
            BookingManagePages,
            EmailActions,
            DashboardPages,
            LiveStreams,
            StatsApi,
            StatsPages,
            DevMailbox,
            AdminNotifications,
            AdminPages,
            PrivacyPages,
            PrivacyApi,
            CalendarFeed,
            WaitlistApi,
            WaitlistPages,
            BookingApi,
            LtiController,
            LtiRegistration,
            LtiAdminPages,
            EmbedPages,
            DeepLinkPages,
            CoursePages,
            create_static_files_router(path="/static", directories=[PROJECT_ROOT / "static"], include_in_schema=False),
            create_static_files_router(
                path="/media", directories=[settings.upload_dir], include_in_schema=False, name="media"
            ),
        ],
        dependencies={"emails": Provide(provide_emails, sync_to_thread=False)},
        # A serving process freezes what it made at startup; tests' in-process apps do not (their objects come and go).
        on_startup=[start_tracing, *([freeze_startup_objects] if settings.is_production else [])],
        on_shutdown=[stop_tracing],
        plugins=[
            SQLAlchemyPlugin(config=alchemy),
            HTMXPlugin(),
            FlashPlugin(config=FlashConfig(template_config=template_config)),
            SAQPlugin(config=saq_config()),
            create_channels_plugin(),
            *([tracing.plugin] if tracing is not None else []),
            # last, so the embedded server stops after every other shutdown hook has used it
            EmbeddedDatabasePlugin(),
        ],
        middleware=[
            prometheus_config().middleware,
            SecurityHeadersMiddleware(hsts=settings.cookies_secure),
            FrameAncestorsMiddleware(origins=lambda: frame_ancestors(settings)),
            SameOriginMiddleware(settings.app_url, exempt=UNSAFE_EXEMPT_PATHS),
            JsonBodyGuardMiddleware(),
            # One unit of work per request, around the web session and the sign-in lookup (they share it).
            UnitOfWorkMiddleware(alchemy, exclude=SESSIONLESS_PATHS),
            session_config.middleware,
            DefineMiddleware(AuthenticationMiddleware, exclude=UNAUTHENTICATED_PATHS),
            # After sign-in: a signed-in person's own language wins over the browser's.
            DefineMiddleware(LocaleMiddleware, exclude=WORDLESS_PATHS),
        ],
        request_class=HTMXRequest,
        csrf_config=csrf,
        template_config=template_config,
        exception_handlers=exception_handlers(),
        logging_config=logging_config(settings),
        openapi_config=OpenAPIConfig(
            title="Office hours API",
            version="1.0.0",
            path="/schema",
            render_plugins=[ScalarRenderPlugin()],
            operation_id_creator=operation_id,
            components=Components(
                security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer")},
            ),
            security=[{"BearerToken": []}],
        ),
        debug=settings.app_env == "development",
    )
    document_errors(app.openapi_schema)
    # Outermost: every answer, a 404 for no route included, carries its request id (and, as JSON, one access line).
    app.asgi_handler = with_request_id(answer_head_and_options(app), access_log=settings.log_format == "json")
    return app
