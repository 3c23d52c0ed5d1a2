"""Facts read off a request: API or web, its bearer token, the client's address, a safe place to go next."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any
from urllib.parse import unquote, urlsplit

from litestar.connection import ASGIConnection

from app.config import get_settings

API_PREFIX = "/api/"


def is_api(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return connection.scope["path"].startswith(API_PREFIX)


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The address the request came from: the peer, unless the peer is one of TRUSTED_PROXIES; then the nearest
    address in X-Forwarded-For that is not a trusted proxy (anyone can write that header; only proxies are
    believed)."""
    peer = connection.client.host if connection.client else "unknown"
    trusted = get_settings().trusted_proxies
    if not trusted or not _is_in(peer, trusted):
        return peer
    forwarded = [part.strip() for part in connection.headers.get("x-forwarded-for", "").split(",") if part.strip()]
    for address in reversed(forwarded):
        if not _is_in(address, trusted):
            return address if _is_address(address) else peer
    return forwarded[0] if forwarded and _is_address(forwarded[0]) else peer


def _is_address(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def _is_in(text: str, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    try:
        address = ip_address(text)
    except ValueError:
        return False
    return any(address in network for network in networks)


def safe_next(target: str | None, default: str) -> str:
    """A same-site path to go on to, or `default`.

    Browsers drop tabs and newlines from URLs, read a backslash as a slash and map some Unicode dots to ".", so
    `/\t/evil.example` or `/\\evil.example` lead off-site: only a plain ASCII path starting with one `/` is kept,
    with no control character, backslash, scheme or authority, before or after percent-decoding.
    """
    if not target:
        return default
    for form in (target, unquote(target)):
        if not form.isascii() or any(ord(char) < 0x20 or ord(char) == 0x7F for char in form) or "\\" in form:
            return default
        if not form.startswith("/") or form.startswith("//"):
            return default
    parts = urlsplit(target)
    return default if parts.scheme or parts.netloc else target
