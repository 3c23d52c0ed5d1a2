"""A faithful fake of the Google endpoints the app uses, served over HTTP on loopback.

OpenID discovery, the authorization endpoint (approves at once, as the configured person), the token endpoint
(authorization code with PKCE, refresh tokens that fail on demand; RS256-signed ID tokens), JWKS, revocation, and Calendar v3
events insert/patch/delete and freeBusy.query, keeping state. The real Authlib and google-api-python-client
talk to it through the GOOGLE_DISCOVERY_URL and GOOGLE_API_ROOT settings.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from litestar import Litestar, Request, Response, delete, get, patch, post
from litestar.params import FromPath

CLIENT_ID = "office-hours-test.apps.googleusercontent.com"
CLIENT_SECRET = "test-client-secret"


@dataclass
class Person:
    sub: str
    email: str
    given_name: str = "Test"
    family_name: str = "Person"
    email_verified: bool = True


@dataclass
class Grant:
    person: Person
    scope: str
    access_token: str
    refresh_token: str | None
    expires_at: float
    revoked: bool = False


@dataclass
class FakeGoogle:
    port: int
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    person: Person = field(default_factory=lambda: Person(sub="1001", email="ada@gmail.example"))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    grants: list[Grant] = field(default_factory=list)
    events: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # person sub -> id -> event
    busy: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # person sub -> busy periods
    fail_next: list[int] = field(default_factory=list)  # statuses for the next Calendar calls
    refresh_calls: int = 0
    # How the token endpoint answers refreshes until told otherwise: None (normally), "500"/"503" (Google failing),
    # "timeout" (no answer for `hang_seconds`), "invalid_grant" (the grant is revoked or expired).
    refresh_fails_with: str | None = None
    hang_seconds: float = 5.0
    revoked_tokens: list[str] = field(default_factory=list)
    id_token_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. a wrong nonce, an old exp
    signing_key: RSAKey | None = None  # sign with another key (a forgery)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.person = Person(sub="1001", email="ada@gmail.example")
        self.codes.clear()
        self.grants.clear()
        self.events.clear()
        self.busy.clear()
        self.fail_next.clear()
        self.refresh_calls = 0
        self.refresh_fails_with = None
        self.revoked_tokens.clear()
        self.id_token_overrides.clear()
        self.signing_key = None

    # -- helpers ------------------------------------------------------------------------------------

    def id_token(self, person: Person, nonce: str) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": CLIENT_ID,
            "azp": CLIENT_ID,
            "sub": person.sub,
            "email": person.email,
            "email_verified": person.email_verified,
            "given_name": person.given_name,
            "family_name": person.family_name,
            "nonce": nonce,
            "iat": now,
            "exp": now + 3600,
            **self.id_token_overrides,
        }
        key = self.signing_key or self.key
        return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)

    def grant_for(self, access_token: str) -> Grant | None:
        for grant in self.grants:
            if grant.access_token == access_token and not grant.revoked and grant.expires_at > time.time():
                return grant
        return None

    def revoke_all(self, person: Person) -> None:
        for grant in self.grants:
            if grant.person.sub == person.sub:
                grant.revoked = True

    def calendar_of(self, sub: str) -> dict[str, dict[str, Any]]:
        return self.events.setdefault(sub, {})


def _error(status: int, message: str) -> Response[Any]:
    return Response(
        {"error": {"code": status, "message": message, "errors": [{"reason": message}]}}, status_code=status
    )


def create_fake_app(fake: FakeGoogle) -> Litestar:
    @get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return {
            "issuer": "https://accounts.google.com",
            "authorization_endpoint": f"{fake.url}/o/oauth2/v2/auth",
            "token_endpoint": f"{fake.url}/token",
            "jwks_uri": f"{fake.url}/oauth2/v3/certs",
            "revocation_endpoint": f"{fake.url}/revoke",
            "userinfo_endpoint": f"{fake.url}/v1/userinfo",
        }

    @get("/oauth2/v3/certs")
    async def certs() -> dict[str, Any]:
        return KeySet([fake.key]).as_dict(private=False)

    @get("/o/oauth2/v2/auth")
    async def authorize(request: Request[Any, Any, Any]) -> Response[Any]:
        query = dict(request.query_params)
        assert query["client_id"] == CLIENT_ID
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        fake.codes[code] = {**query, "person": fake.person}
        target = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        return Response(content=b"", status_code=302, headers={"Location": target})

    @post("/token", status_code=200)
    async def token(request: Request[Any, Any, Any]) -> Response[Any]:
        form = dict(await request.form())
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
            return Response({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") == "authorization_code":
            issued = fake.codes.pop(str(form.get("code")), None)
            if issued is None or issued["redirect_uri"] != form.get("redirect_uri"):
                return Response({"error": "invalid_grant"}, status_code=400)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(str(form.get("code_verifier")).encode()).digest())
            if challenge.rstrip(b"=").decode() != issued["code_challenge"]:
                return Response({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
            person: Person = issued["person"]
            offline = issued.get("access_type") == "offline"
            grant = Grant(
                person,
                issued["scope"],
                secrets.token_urlsafe(24),
                secrets.token_urlsafe(24) if offline else None,
                time.time() + 3600,
            )
            fake.grants.append(grant)
            body = {
                "access_token": grant.access_token,
                "expires_in": 3600,
                "token_type": "Bearer",
                "scope": grant.scope,
                "id_token": fake.id_token(person, issued.get("nonce", "")),
            }
            if grant.refresh_token:
                body["refresh_token"] = grant.refresh_token
            return Response(body)
        if form.get("grant_type") == "refresh_token":
            fake.refresh_calls += 1
            failure = fake.refresh_fails_with
            if failure == "timeout":
                await asyncio.sleep(fake.hang_seconds)
            elif failure == "invalid_grant":
                return Response({"error": "invalid_grant", "error_description": "Bad Request"}, status_code=400)
            elif failure is not None:
                return Response({"error": "internal_failure"}, status_code=int(failure))
            grant = next((g for g in fake.grants if g.refresh_token == form.get("refresh_token")), None)
            if grant is None or grant.revoked:
                return Response(
                    {"error": "invalid_grant", "error_description": "Token has been revoked."}, status_code=400
                )
            grant.access_token, grant.expires_at = secrets.token_urlsafe(24), time.time() + 3600
            return Response(
                {"access_token": grant.access_token, "expires_in": 3600, "token_type": "Bearer", "scope": grant.scope}
            )
        return Response({"error": "unsupported_grant_type"}, status_code=400)

    @post("/revoke", status_code=200)
    async def revoke(request: Request[Any, Any, Any]) -> dict[str, str]:
        form = dict(await request.form())
        token_value = str(form.get("token"))
        fake.revoked_tokens.append(token_value)
        for grant in fake.grants:
            if token_value in (grant.access_token, grant.refresh_token):
                grant.revoked = True
        return {}

    def caller(request: Request[Any, Any, Any]) -> Grant | Response[Any]:
        if fake.fail_next:
            status = fake.fail_next.pop(0)
            return _error(status, "rateLimitExceeded" if status == 429 else "backendError")
        grant = fake.grant_for(request.headers.get("authorization", "").removeprefix("Bearer "))
        return grant if grant is not None else _error(401, "Invalid Credentials")

    @post("/calendar/v3/calendars/primary/events", status_code=200)
    async def insert_event(request: Request[Any, Any, Any]) -> Response[Any]:
        grant = caller(request)
        if isinstance(grant, Response):
            return grant
        body = await request.json()
        calendar = fake.calendar_of(grant.person.sub)
        event_id = body.get("id") or secrets.token_hex(8)
        if event_id in calendar:
            return _error(409, "duplicate")
        calendar[event_id] = {**body, "id": event_id}
        return Response(calendar[event_id])

    @patch("/calendar/v3/calendars/primary/events/{event_id:str}")
    async def patch_event(request: Request[Any, Any, Any], event_id: FromPath[str]) -> Response[Any]:
        grant = caller(request)
        if isinstance(grant, Response):
            return grant
        calendar = fake.calendar_of(grant.person.sub)
        if event_id not in calendar:
            return _error(404, "notFound")
        calendar[event_id].update(await request.json())
        return Response(calendar[event_id])

    @delete("/calendar/v3/calendars/primary/events/{event_id:str}", status_code=200)
    async def delete_event(request: Request[Any, Any, Any], event_id: FromPath[str]) -> Response[Any]:
        grant = caller(request)
        if isinstance(grant, Response):
            return grant
        if fake.calendar_of(grant.person.sub).pop(event_id, None) is None:
            return _error(410, "deleted")
        return Response(content=b"", status_code=204)

    @post("/calendar/v3/freeBusy", status_code=200)
    async def free_busy(request: Request[Any, Any, Any]) -> Response[Any]:
        grant = caller(request)
        if isinstance(grant, Response):
            return grant
        body = await request.json()
        return Response(
            {
                "kind": "calendar#freeBusy",
                "timeMin": body["timeMin"],
                "timeMax": body["timeMax"],
                "calendars": {"primary": {"busy": fake.busy.get(grant.person.sub, [])}},
            }
        )

    return Litestar(
        route_handlers=[discovery, certs, authorize, token, revoke, insert_event, patch_event, delete_event, free_busy],
        debug=False,
    )


class FakeGoogleServer:
    """Runs the fake in a thread with its own event loop."""

    def __init__(self, port: int) -> None:
        self.fake = FakeGoogle(port=port)
        config = uvicorn.Config(create_fake_app(self.fake), host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def start(self) -> FakeGoogle:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.fake

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
