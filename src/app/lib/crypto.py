"""Encryption at rest for third-party credentials (Fernet; several keys for rotation)."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.config import Settings


def _fernet(settings: Settings) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in settings.token_encryption_keys])


def encrypt_json(value: dict[str, Any], settings: Settings) -> str:
    return _fernet(settings).encrypt(json.dumps(value).encode()).decode()


def decrypt_json(token: str, settings: Settings) -> dict[str, Any] | None:
    """None when no key can read it (a key was retired): the user reconnects."""
    try:
        data: dict[str, Any] = json.loads(_fernet(settings).decrypt(token.encode()))
    except (InvalidToken, ValueError):
        return None
    return data
