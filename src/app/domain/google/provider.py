"""Google as an OpenID Connect provider: authorization-code flow with PKCE, state and nonce; ID tokens verified
against Google's published keys. Endpoints come from the discovery document (GOOGLE_DISCOVERY_URL)."""

from __future__ import annotations

import secrets
import time
import warnings
from dataclasses import dataclass
from typing import Any

import authlib.deprecate  # noqa: F401  (installs its own "always" filter first, so ours below wins)
import httpx

with warnings.catch_warnings():
    # Authlib 1.9 prefers the `httpx2` package and warns when it falls back to httpx, which works the same.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError

from app.config import Settings
from app.domain.accounts.models import UserType
from app.domain.accounts.schemas import GoogleIdentity
from app.lib.i18n import gettext as _
from app.lib.jwks import KeysUnavailable, jwks_cache, verified_claims

SIGN_IN_SCOPES = "openid email profile"
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events"
CLOCK_LEEWAY_SECONDS = 60
DISCOVERY_TTL_SECONDS = 3600


class GoogleError(Exception):
    """A refusal with a message fit for the person signing in (never a token)."""


@dataclass(frozen=True)
class AuthRequest:
    """What must come back unchanged: kept in the server-side session, used once."""

    url: str
    state: str
    nonce: str
    code_verifier: str


class GoogleProvider:
    _cache: dict[str, tuple[float, dict[str, Any]]] = {}

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def _get_json(self, url: str) -> dict[str, Any]:
        cached = self._cache.get(url)
        if cached and time.monotonic() - cached[0] < DISCOVERY_TTL_SECONDS:
            return cached[1]
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(url)
            response.raise_for_status()
            data: dict[str, Any] = response.json()
        self._cache[url] = (time.monotonic(), data)
        return data

    async def metadata(self) -> dict[str, Any]:
        return await self._get_json(self.settings.google_discovery_url)

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.settings.google_client_id,
            client_secret=self.settings.google_client_secret,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=15,
        )

    async def authorization_request(
        self, redirect_uri: str, *, calendar: bool = False, login_hint: str = ""
    ) -> AuthRequest:
        meta = await self.metadata()
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        extra: dict[str, str] = {"nonce": nonce}
        if calendar:
            # Incremental consent: ask for the calendar only when it is connected, with offline access.
            extra |= {"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"}
        if login_hint:
            extra["login_hint"] = login_hint
        async with self._client(redirect_uri) as client:
            url, _state = client.create_authorization_url(
                meta["authorization_endpoint"],
                state=state,
                code_verifier=verifier,
                scope=f"{SIGN_IN_SCOPES} {CALENDAR_SCOPE}" if calendar else SIGN_IN_SCOPES,
                **extra,
            )
        return AuthRequest(url=url, state=state, nonce=nonce, code_verifier=verifier)

    async def exchange(self, code: str, code_verifier: str, redirect_uri: str) -> dict[str, Any]:
        meta = await self.metadata()
        async with self._client(redirect_uri) as client:
            try:
                token: dict[str, Any] = await client.fetch_token(
                    meta["token_endpoint"], code=code, code_verifier=code_verifier
                )
            except Exception as exc:  # authlib raises OAuthError and httpx errors alike
                raise GoogleError(_("Google did not accept the sign-in. Please try again.")) from exc
        return token

    async def verify_id_token(self, id_token: str, nonce: str) -> GoogleIdentity:
        meta = await self.metadata()
        claims = await self._decode(id_token, meta["jwks_uri"])
        registry = jwt.JWTClaimsRegistry(
            leeway=CLOCK_LEEWAY_SECONDS,
            iss={"essential": True, "values": [meta["issuer"], meta["issuer"].removeprefix("https://")]},
            aud={"essential": True, "value": self.settings.google_client_id or ""},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise GoogleError(_("The sign-in could not be verified (it may have expired). Please try again.")) from exc
        if claims.get("email_verified") is not True or not claims.get("email"):
            raise GoogleError(_("Your Google account's email address is not verified."))
        return GoogleIdentity(
            sub=str(claims["sub"]),
            email=str(claims["email"]),
            first_name=str(claims.get("given_name", "")),
            last_name=str(claims.get("family_name", "")),
        )

    async def _decode(self, id_token: str, jwks_uri: str) -> dict[str, Any]:
        try:
            return await verified_claims(id_token, jwks_uri, jwks_cache)
        except (JoseError, ValueError, KeysUnavailable) as exc:
            raise GoogleError(_("The sign-in could not be verified. Please try again.")) from exc

    async def revoke(self, token: str) -> None:
        meta = await self.metadata()
        endpoint = meta.get("revocation_endpoint")
        if not endpoint:
            return
        async with httpx.AsyncClient(timeout=10) as client:
            await client.post(endpoint, data={"token": token})


def role_for_email(email: str, settings: Settings) -> str | None:
    """The role an email domain grants by the GOOGLE_*_DOMAINS settings, or None: the person chooses."""
    domain = email.rsplit("@", 1)[-1].lower()
    if domain in settings.google_professor_domains:
        return UserType.PROFESSOR.value
    if domain in settings.google_student_domains:
        return UserType.STUDENT.value
    return None
