"""Settings from the environment, read once into one typed object."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal
from zoneinfo import available_timezones

from dotenv import load_dotenv

PROJECT_ROOT = Path(__file__).resolve().parents[2]
Environment = Literal["development", "production", "test"]


def _split(value: str) -> tuple[str, ...]:
    return tuple(part for part in value.replace(",", " ").split() if part)


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the app refuses to start."""


@dataclass(frozen=True)
class Settings:
    app_env: Environment
    database_url: str | None
    queue_url: str | None
    channels_url: str | None
    secret_key: str
    app_url: str
    smtp_host: str | None
    smtp_port: int
    smtp_username: str | None
    smtp_password: str | None
    smtp_tls: Literal["none", "starttls", "tls"]
    mail_from: str
    google_client_id: str | None
    google_client_secret: str | None
    google_discovery_url: str
    google_api_root: str
    frame_ancestors: tuple[str, ...]
    google_professor_domains: tuple[str, ...]
    # In production, self-registration as a professor needs an email in one of these domains.
    professor_signup_domains: tuple[str, ...]
    google_student_domains: tuple[str, ...]
    # Fernet keys for OAuth tokens at rest; the first encrypts, all decrypt (prepend a new key to rotate).
    token_encryption_keys: tuple[str, ...]
    default_timezone: str
    data_dir: Path
    # Reverse proxies whose X-Forwarded-For is believed (addresses or networks); nobody's when empty.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...]
    upload_dir: Path
    max_upload_bytes: int = 2 * 1024 * 1024
    login_failures_slow_after: int = 5
    login_failures_lock_account: int = 50
    login_failures_lock_client: int = 100
    login_failure_window_seconds: int = 15 * 60
    session_max_age_seconds: int = 14 * 24 * 3600
    run_worker_in_process: bool = True
    outbox_sweep_after_seconds: int = 120
    # A mail delivery running longer than this counts as stuck (its worker died or hangs) and is run again; workers
    # look for stuck jobs this often, so a dead worker's mail goes out again within about twice this.
    stuck_job_seconds: int = 60
    # Tests only (refused in production): passwords hashed with argon2id's cheapest parameters.
    test_cheap_password_hashes: bool = False
    # Per app process: connections kept open, and extra ones opened under load (closed again when idle).
    database_pool_size: int = 10
    database_max_overflow: int = 10
    # LMS platforms registered by LTI Dynamic Registration are accepted at once instead of waiting for an admin.
    lti_auto_approve: bool = False
    # /metrics answers only `Authorization: Bearer <metrics_token>`; unset, the route is off (404).
    metrics_token: str | None = None
    # Log lines as JSON objects (production default) or as text (development and tests).
    log_format: Literal["json", "text"] = "text"
    # OpenTelemetry traces are exported over OTLP/HTTP when this is set (the exporter reads the other OTEL_* settings).
    otel_endpoint: str | None = None
    # Privacy: how long a "Download my data" link works; after how many months bookings, notes and waitlist
    # entries are pseudonymised (0: never); after how many days sent and failed notifications are deleted (0: never).
    export_link_hours: int = 24
    retention_months: int = 24
    notification_retention_days: int = 90
    # Seconds a call to Google (token refresh, Calendar API) may take before it counts as a transient failure.
    google_timeout_seconds: float = 20.0

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def google_enabled(self) -> bool:
        return bool(self.google_client_id and self.google_client_secret)

    @property
    def cookies_secure(self) -> bool:
        return self.app_url.startswith("https://")


def load_settings() -> Settings:
    app_env = os.environ.get("APP_ENV", "development")
    if app_env not in ("development", "production", "test"):
        raise SettingsError(f"APP_ENV must be development, production or test, not {app_env!r}")
    if app_env == "development":
        load_dotenv(PROJECT_ROOT / ".env", override=False)  # the real environment wins

    secret_key = os.environ.get("SECRET_KEY", "")
    if not secret_key:
        if app_env == "production":
            raise SettingsError("SECRET_KEY must be set in production")
        # Development and tests: a stable key per data directory keeps sessions across restarts.
        secret_key = _development_secret(Path(os.environ.get("DATA_DIR", PROJECT_ROOT / ".data")))

    smtp_tls = os.environ.get("SMTP_TLS", "none")
    if smtp_tls not in ("none", "starttls", "tls"):
        raise SettingsError(f"SMTP_TLS must be none, starttls or tls, not {smtp_tls!r}")
    default_timezone = os.environ.get("DEFAULT_TIMEZONE", "Europe/Berlin")
    if default_timezone not in available_timezones():
        raise SettingsError(f"DEFAULT_TIMEZONE {default_timezone!r} is not an IANA time zone")

    log_format = os.environ.get("LOG_FORMAT", "json" if app_env == "production" else "text").lower()
    if log_format not in ("json", "text"):
        raise SettingsError(f"LOG_FORMAT must be json or text, not {log_format!r}")

    data_dir = Path(os.environ.get("DATA_DIR", PROJECT_ROOT / ".data"))
    if app_env == "production" and os.environ.get("TEST_CLOCK_FILE"):
        raise SettingsError("TEST_CLOCK_FILE (a moved clock for tests) is refused in production")
    cheap_hashes = _flag("TEST_CHEAP_PASSWORD_HASHES", "false")
    if app_env == "production" and cheap_hashes:
        raise SettingsError("TEST_CHEAP_PASSWORD_HASHES (weak password hashes for tests) is refused in production")
    return Settings(
        app_env=app_env,  # type: ignore[arg-type]
        database_url=os.environ.get("DATABASE_URL") or None,
        queue_url=os.environ.get("QUEUE_URL") or None,
        channels_url=os.environ.get("CHANNELS_URL") or None,
        secret_key=secret_key,
        app_url=os.environ.get("APP_URL", "http://127.0.0.1:8000").rstrip("/"),
        smtp_host=os.environ.get("SMTP_HOST") or None,
        smtp_port=int(os.environ.get("SMTP_PORT", "25")),
        smtp_username=os.environ.get("SMTP_USERNAME") or None,
        smtp_password=os.environ.get("SMTP_PASSWORD") or None,
        smtp_tls=smtp_tls,  # type: ignore[arg-type]
        mail_from=os.environ.get("MAIL_FROM", "Office Hours <office-hours@localhost>"),
        google_client_id=os.environ.get("GOOGLE_CLIENT_ID") or None,
        google_client_secret=os.environ.get("GOOGLE_CLIENT_SECRET") or None,
        google_discovery_url=os.environ.get(
            "GOOGLE_DISCOVERY_URL", "https://accounts.google.com/.well-known/openid-configuration"
        ),
        google_api_root=os.environ.get("GOOGLE_API_ROOT", "https://www.googleapis.com/"),
        frame_ancestors=_split(os.environ.get("FRAME_ANCESTORS", "")),
        google_professor_domains=_split(os.environ.get("GOOGLE_PROFESSOR_DOMAINS", "").lower()),
        professor_signup_domains=_split(os.environ.get("PROFESSOR_SIGNUP_DOMAINS", "").lower()),
        google_student_domains=_split(os.environ.get("GOOGLE_STUDENT_DOMAINS", "").lower()),
        token_encryption_keys=_split(os.environ.get("TOKEN_ENCRYPTION_KEYS", "")) or (_derived_key(secret_key),),
        default_timezone=default_timezone,
        data_dir=data_dir,
        trusted_proxies=_networks("TRUSTED_PROXIES"),
        upload_dir=Path(os.environ.get("UPLOAD_DIR", data_dir / "uploads")),
        run_worker_in_process=_flag("RUN_WORKER_IN_PROCESS", "true"),
        outbox_sweep_after_seconds=int(os.environ.get("OUTBOX_SWEEP_AFTER_SECONDS", "120")),
        stuck_job_seconds=_count("STUCK_JOB_SECONDS", "60", least=1),
        test_cheap_password_hashes=cheap_hashes,
        database_pool_size=_count("DATABASE_POOL_SIZE", "10", least=1),
        database_max_overflow=_count("DATABASE_MAX_OVERFLOW", "10", least=0),
        lti_auto_approve=_flag("LTI_AUTO_APPROVE", "false"),
        metrics_token=os.environ.get("METRICS_TOKEN") or None,
        log_format=log_format,  # type: ignore[arg-type]
        otel_endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
        export_link_hours=_count("EXPORT_LINK_HOURS", "24", least=1),
        retention_months=_count("RETENTION_MONTHS", "24", least=0),
        notification_retention_days=_count("NOTIFICATION_RETENTION_DAYS", "90", least=0),
        google_timeout_seconds=float(_count("GOOGLE_TIMEOUT_SECONDS", "20", least=1)),
    )


def _networks(name: str) -> tuple[IPv4Network | IPv6Network, ...]:
    networks = []
    for part in _split(os.environ.get(name, "")):
        try:
            networks.append(ip_network(part, strict=False))
        except ValueError as exc:
            raise SettingsError(f"{name}: {part!r} is not an IP address or network") from exc
    return tuple(networks)


def _flag(name: str, default: str) -> bool:
    return os.environ.get(name, default).lower() in ("1", "true", "yes")


def _count(name: str, default: str, least: int) -> int:
    text = os.environ.get(name, default)
    if not text.isdigit() or int(text) < least:
        raise SettingsError(f"{name} must be a whole number of at least {least}, not {text!r}")
    return int(text)


def _derived_key(secret_key: str) -> str:
    """A Fernet key derived from SECRET_KEY, for when TOKEN_ENCRYPTION_KEYS is not set."""
    return base64.urlsafe_b64encode(hashlib.sha256(b"token-encryption:" + secret_key.encode()).digest()).decode()


def _development_secret(data_dir: Path) -> str:
    path = data_dir / "secret_key"
    if path.is_file():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
