"""Password hashing (argon2) and opaque token helpers."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from app.config import get_settings

_FULL_COST = PasswordHasher()  # argon2id with RFC 9106's parameters
# The test suite makes thousands of accounts: with TEST_CHEAP_PASSWORD_HASHES (refused in production) it hashes with
# argon2id's cheapest parameters. A hash carries its own parameters, so either kind verifies anywhere.
_CHEAPEST = PasswordHasher.from_parameters(profiles.CHEAPEST)


def _hasher() -> PasswordHasher:
    return _CHEAPEST if get_settings().test_cheap_password_hashes else _FULL_COST


@cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """Verifying against this keeps the time of "no such user" close to "wrong password"."""
    return hasher.hash("not-a-real-password")


# Argon2 costs about 0.2 s of CPU spread over its four lanes, by design. Hashes run one at a time on a thread of
# their own (the C code releases the GIL), so a burst of sign-ins at the start of a lecture queues there instead
# of stalling every other request on the event loop or crowding it off the cores.
_hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2")


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_hashing, _hasher().hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_hashing, _verify, _hasher(), password_hash, password)


def _verify(hasher: PasswordHasher, password_hash: str | None, password: str) -> bool:
    try:
        return hasher.verify(password_hash or _dummy_hash(hasher), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
