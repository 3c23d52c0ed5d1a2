"""Public key sets (JWKS) of token issuers (Google, LMS platforms), fetched over HTTP and cached per process."""

from __future__ import annotations

import time
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet

CACHE_SECONDS = 3600
# An unknown `kid` means the issuer rotated its keys, or a forgery: re-fetch, but at most this often,
# so tokens with made-up key ids cannot make us hammer the issuer.
REFETCH_COOLDOWN_SECONDS = 10
FETCH_TIMEOUT_SECONDS = 10


class KeysUnavailable(Exception):
    """The issuer's JWKS could not be fetched or read."""


class KeySetCache:
    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, KeySet]] = {}
        self._refetched: dict[str, float] = {}

    async def key_set(self, jwks_url: str, kid: str | None) -> KeySet:
        """The issuer's keys, fetched again when `kid` is not among the cached ones (key rotation)."""
        now = time.monotonic()
        cached = self._cache.get(jwks_url)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            known = kid is None or any(key.kid == kid for key in cached[1].keys)
            if known or now - self._refetched.get(jwks_url, -REFETCH_COOLDOWN_SECONDS) < REFETCH_COOLDOWN_SECONDS:
                return cached[1]
            self._refetched[jwks_url] = now
        keys = await self._fetch(jwks_url)
        self._cache[jwks_url] = (now, keys)
        return keys

    def forget(self) -> None:
        """Drop every cached key set and cooldown (the next launch fetches afresh)."""
        self._cache.clear()
        self._refetched.clear()

    async def refreshed(self, jwks_url: str) -> KeySet | None:
        """Fetch again after a signature failed with cached keys (a key replaced under the same id), at most
        once per cooldown; None when the cooldown says the cached keys must stand."""
        now = time.monotonic()
        if now - self._refetched.get(jwks_url, -REFETCH_COOLDOWN_SECONDS) < REFETCH_COOLDOWN_SECONDS:
            return None
        self._refetched[jwks_url] = now
        keys = await self._fetch(jwks_url)
        self._cache[jwks_url] = (now, keys)
        return keys

    @staticmethod
    async def _fetch(jwks_url: str) -> KeySet:
        try:
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS) as client:
                response = await client.get(jwks_url, headers={"Accept": "application/json"})
                response.raise_for_status()
                data: Any = response.json()
            return KeySet.import_key_set(data)
        except (httpx.HTTPError, ValueError, KeyError, TypeError, JoseError) as exc:
            raise KeysUnavailable(f"{jwks_url}: {exc}") from exc


# One cache for every issuer, keyed by its JWKS URL.
jwks_cache = KeySetCache()


async def verified_claims(token: str, jwks_url: str, cache: KeySetCache) -> dict[str, Any]:
    """The claims of an RS256 token whose signature one of the issuer's published keys verifies.

    A key id the cached set lacks fetches the set again (rotation); a bad signature with cached keys tries once more
    with freshly fetched ones (a key replaced under the same id). Raises the joserfc error of the final attempt, or
    KeysUnavailable when the keys cannot be fetched at all. The caller checks the claims themselves.
    """
    kid = jws.extract_compact(token.encode()).headers().get("kid")
    keys = await cache.key_set(jwks_url, kid)
    try:
        claims: dict[str, Any] = jwt.decode(token, keys, algorithms=["RS256"]).claims
    except BadSignatureError:
        try:
            fresh = await cache.refreshed(jwks_url)
        except KeysUnavailable:
            fresh = None
        if fresh is None:
            raise
        claims = jwt.decode(token, fresh, algorithms=["RS256"]).claims
    return claims
