"""Facts read off a request: API or web, its bearer token, the client's address, a safe place to go next."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection

API_PREFIX = "/api/"


def is_api(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return connection.scope["path"].startswith(API_PREFIX)


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    return connection.client.host if connection.client else "unknown"


def safe_next(target: str | None, default: str) -> str:
    """Only local paths: `//evil.example` and absolute URLs would be open redirects."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return default
