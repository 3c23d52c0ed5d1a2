"""Settings from the environment: a missing or malformed one stops the app with a message naming it."""

from __future__ import annotations

import pytest

from app.config import SettingsError, load_settings
from tests.conftest import TEST_ONLY_VARIABLES

SAFE = {"APP_ENV": "test", "SECRET_KEY": "unit-test-secret", "DATABASE_URL": "postgresql://db.invalid/x"}


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SAFE.items():
        monkeypatch.setenv(name, value)
    for name in TEST_ONLY_VARIABLES:  # set by the suite for the processes it starts
        monkeypatch.delenv(name, raising=False)


def refusal(monkeypatch: pytest.MonkeyPatch, name: str, value: str | None) -> str:
    if value is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    return str(refused.value)


def test_an_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert refusal(monkeypatch, "APP_ENV", "staging") == (
        "APP_ENV must be development, production or test, not 'staging'"
    )


def test_production_needs_a_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    assert refusal(monkeypatch, "SECRET_KEY", None) == "SECRET_KEY must be set in production"


def test_an_unknown_smtp_tls_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert refusal(monkeypatch, "SMTP_TLS", "ssl") == "SMTP_TLS must be none, starttls or tls, not 'ssl'"


def test_a_default_time_zone_must_be_an_iana_name(monkeypatch: pytest.MonkeyPatch) -> None:
    assert refusal(monkeypatch, "DEFAULT_TIMEZONE", "CET+1") == "DEFAULT_TIMEZONE 'CET+1' is not an IANA time zone"


def test_a_pool_size_must_be_a_positive_whole_number(monkeypatch: pytest.MonkeyPatch) -> None:
    assert refusal(monkeypatch, "DATABASE_POOL_SIZE", "0") == (
        "DATABASE_POOL_SIZE must be a whole number of at least 1, not '0'"
    )


def test_lists_of_origins_and_domains_are_split_on_spaces_and_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAME_ANCESTORS", "https://a.example, https://b.example  https://c.example")
    monkeypatch.setenv("PROFESSOR_SIGNUP_DOMAINS", "Uni.Example,staff.uni.example")
    settings = load_settings()
    assert settings.frame_ancestors == ("https://a.example", "https://b.example", "https://c.example")
    assert settings.professor_signup_domains == ("uni.example", "staff.uni.example")


def test_an_https_app_url_turns_on_secure_cookies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_URL", "https://office-hours.uni.example/")
    settings = load_settings()
    assert (settings.app_url, settings.cookies_secure) == ("https://office-hours.uni.example", True)


@pytest.mark.parametrize(("app_env", "expected"), [("production", "json"), ("test", "text"), ("development", "text")])
def test_logs_are_json_lines_by_default_only_in_production(
    monkeypatch: pytest.MonkeyPatch, app_env: str, expected: str
) -> None:
    monkeypatch.setenv("APP_ENV", app_env)
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert load_settings().log_format == expected


def test_the_log_format_can_be_chosen_and_must_be_known(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("LOG_FORMAT", "TEXT")
    assert load_settings().log_format == "text"
    assert refusal(monkeypatch, "LOG_FORMAT", "xml") == "LOG_FORMAT must be json or text, not 'xml'"


def test_metrics_and_tracing_are_off_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("METRICS_TOKEN", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.metrics_token, settings.otel_endpoint) == (None, None)
    monkeypatch.setenv("METRICS_TOKEN", "scrape-me")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    settings = load_settings()
    assert (settings.metrics_token, settings.otel_endpoint) == ("scrape-me", "http://collector:4318")


def test_retention_and_export_settings_have_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RETENTION_MONTHS", "NOTIFICATION_RETENTION_DAYS", "EXPORT_LINK_HOURS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.retention_months, settings.notification_retention_days, settings.export_link_hours) == (24, 90, 24)


def test_retention_can_be_turned_off_with_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETENTION_MONTHS", "0")
    monkeypatch.setenv("NOTIFICATION_RETENTION_DAYS", "0")
    settings = load_settings()
    assert (settings.retention_months, settings.notification_retention_days) == (0, 0)


def test_a_malformed_retention_period_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert refusal(monkeypatch, "RETENTION_MONTHS", "two years") == (
        "RETENTION_MONTHS must be a whole number of at least 0, not 'two years'"
    )


def test_an_export_link_lives_at_least_an_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    assert refusal(monkeypatch, "EXPORT_LINK_HOURS", "0") == (
        "EXPORT_LINK_HOURS must be a whole number of at least 1, not '0'"
    )


def test_cheap_password_hashes_are_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    assert refusal(monkeypatch, "TEST_CHEAP_PASSWORD_HASHES", "true") == (
        "TEST_CHEAP_PASSWORD_HASHES (weak password hashes for tests) is refused in production"
    )


def test_passwords_are_hashed_at_full_cost_unless_a_test_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_CHEAP_PASSWORD_HASHES", raising=False)
    assert load_settings().test_cheap_password_hashes is False
