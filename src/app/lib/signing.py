"""Signed, expiring tokens for links sent by e-mail: HMAC-SHA256 under SECRET_KEY, bound to what they are for.

A token carries a small JSON payload and its expiry, readable but not changeable; `purpose` keeps a token made for
one use from being accepted for another. Single use is the caller's rule (a token names the state it acts on).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.config import Settings


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(purpose: str, body: str, settings: Settings) -> str:
    digest = hmac.new(settings.secret_key.encode(), f"{purpose}\x00{body}".encode(), hashlib.sha256).digest()
    return _b64(digest)


def sign(purpose: str, payload: Mapping[str, Any], expires_at: datetime, settings: Settings) -> str:
    body = _b64(json.dumps({**payload, "exp": int(expires_at.timestamp())}, separators=(",", ":")).encode())
    return f"{body}.{_mac(purpose, body, settings)}"


def verified(purpose: str, token: str, now: datetime, settings: Settings) -> dict[str, Any] | None:
    """The payload of a genuine token for `purpose` that has not expired, else None."""
    body, _, mac = token.partition(".")
    if not body or not hmac.compare_digest(mac, _mac(purpose, body, settings)):
        return None
    try:
        payload = json.loads(_unb64(body))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int) or payload["exp"] <= now.timestamp():
        return None
    return payload
