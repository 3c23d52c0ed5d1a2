"""A simulated LMS platform speaking LTI 1.3 and LTI Advantage, served over HTTP on loopback.

It publishes its keys (JWKS), answers the tool's OIDC authentication request by signing an id_token for the person
named by `login_hint` and posting it back as a self-submitting form (as Canvas and Moodle do), and shows a course
page that frames the tool. Tests change the claims (`overrides`), sign with another key, or rotate keys.

LTI Advantage, as a platform serves it:
- Dynamic Registration: its OpenID configuration, and a registration endpoint that takes the tool's registration
  only with the bearer `registration_token` and answers with a new client id and a deployment.
- Deep Linking: `deep_linking_request()` makes the next id_tokens deep-linking requests; the return URL verifies
  the tool's signed LtiDeepLinkingResponse against the tool's public keys and keeps its content items.
- Names and Role Provisioning: a token endpoint that verifies the tool's client assertion (signature, iss, sub,
  aud, expiry, single-use jti) and a memberships endpoint paginated with `Link: <...>; rel="next"`.

The tool under test runs inside the test process, so the platform cannot fetch the tool's JWKS over HTTP: the test
hands it the keys the tool publishes at /lti/jwks (`tool_jwks`), as a platform would have fetched them.
"""

from __future__ import annotations

import asyncio
import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from litestar import Litestar, Request, Response, get, post
from litestar.params import FromPath, FromQuery

from app.domain.lti.platforms import PlatformService
from app.domain.lti.schemas import PlatformRegistration
from app.services import provide_services

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
CLIENT_ID = "office-hours-tool"
DEPLOYMENT_ID = "deployment-1"
REGISTRATION_TOKEN = "registration-token-7f3a"


@dataclass
class Person:
    sub: str
    roles: list[str]
    email: str = ""
    given_name: str = "Test"
    family_name: str = "Person"
    extra: dict[str, Any] = field(default_factory=dict)  # further claims, e.g. "name" when the names are empty


def instructor(sub: str = "lms-instructor-1", **fields: Any) -> Person:
    return Person(sub=sub, roles=[f"{ROLE}Instructor"], given_name="Ada", family_name="Lovelace", **fields)


def learner(sub: str = "lms-learner-1", **fields: Any) -> Person:
    return Person(sub=sub, roles=[f"{ROLE}Learner"], given_name="Mia", family_name="Schmidt", **fields)


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@dataclass
class FakeLms:
    port: int
    tool_url: str  # the tool's APP_URL: its redirect URI is tool_url + /lti/launch
    key: RSAKey = field(default_factory=lambda: new_key("lms-key-1"))
    published: list[RSAKey] = field(default_factory=list)
    people: dict[str, Person] = field(default_factory=dict)  # login_hint -> person
    context: dict[str, str] = field(default_factory=lambda: {"id": "course-101", "title": "Algorithms"})
    custom: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)  # claims changed or added in every id_token
    jwks_requests: int = 0
    jwks_fails_with: int | None = None  # the JWKS endpoint answers this error status instead of the keys
    client_id: str = CLIENT_ID
    deployment_id: str = DEPLOYMENT_ID
    # Dynamic registration
    registration_token: str = REGISTRATION_TOKEN
    configuration_overrides: dict[str, Any] = field(default_factory=dict)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    # The tool's public keys, as the platform fetched them from the tool's jwks_uri
    tool_jwks: dict[str, Any] = field(default_factory=dict)
    # Deep linking: the verified responses received at the return URL
    deep_link_responses: list[dict[str, Any]] = field(default_factory=list)
    # Names and Role Provisioning
    roster: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 2
    roster_forbidden: bool = False  # the course did not grant the tool its roster: 403
    assertions: list[dict[str, Any]] = field(default_factory=list)  # verified client assertions
    access_tokens: set[str] = field(default_factory=set)
    used_jtis: set[str] = field(default_factory=set)
    membership_requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.published = [self.key]

    @property
    def issuer(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.issuer}/auth"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/token"

    @property
    def configuration_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def memberships_url(self) -> str:
        return f"{self.issuer}/courses/{self.context['id']}/memberships"

    @property
    def deep_link_return_url(self) -> str:
        return f"{self.issuer}/deep-link-return"

    def deep_linking_request(self, data: str = "platform-opaque-data") -> None:
        """The next launches are deep-linking requests (an instructor adding the tool to the course)."""
        self.overrides[f"{CLAIM}message_type"] = "LtiDeepLinkingRequest"
        self.overrides[f"{DL_CLAIM}deep_linking_settings"] = {
            "deep_link_return_url": self.deep_link_return_url,
            "accept_types": ["ltiResourceLink", "link"],
            "accept_presentation_document_targets": ["iframe", "window"],
            "accept_multiple": False,
            "data": data,
        }

    def resource_link(self, custom: dict[str, str]) -> None:
        """The next launches open a placed link (as deep linking placed it): a resource link with its custom."""
        for name in (f"{CLAIM}message_type", f"{DL_CLAIM}deep_linking_settings"):
            self.overrides.pop(name, None)
        self.custom = dict(custom)

    def offer_roster(self) -> None:
        """Launches carry the Names and Role Provisioning claim."""
        self.overrides[NRPS_CLAIM] = {"context_memberships_url": self.memberships_url, "service_versions": ["2.0"]}

    def configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.auth_url,
            "token_endpoint": self.token_url,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "jwks_uri": self.jwks_url,
            "registration_endpoint": f"{self.issuer}/register",
            "scopes_supported": ["openid", NRPS_SCOPE],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "fakelms",
                "version": "1.0",
                "messages_supported": [{"type": "LtiResourceLinkRequest"}, {"type": "LtiDeepLinkingRequest"}],
            },
            **self.configuration_overrides,
        }

    def verified_from_tool(self, token: str) -> dict[str, Any]:
        """The claims of a JWT the tool signed, verified with the keys the tool publishes (raises if not)."""
        return dict(jwt.decode(token, KeySet.import_key_set(self.tool_jwks), algorithms=["RS256"]).claims)

    def rotate_key(self) -> None:
        """A new signing key with a new kid; only the new key is published from now on."""
        self.key = new_key(f"lms-key-{len(self.published) + 1}")
        self.published = [self.key]

    def claims(self, person: Person, nonce: str) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": person.sub,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "given_name": person.given_name,
            "family_name": person.family_name,
            f"{CLAIM}message_type": "LtiResourceLinkRequest",
            f"{CLAIM}version": "1.3.0",
            f"{CLAIM}deployment_id": self.deployment_id,
            f"{CLAIM}target_link_uri": f"{self.tool_url}/lti/launch",
            f"{CLAIM}resource_link": {"id": "office-hours-link"},
            f"{CLAIM}roles": person.roles,
            f"{CLAIM}context": self.context,
            f"{CLAIM}custom": self.custom,
        }
        if person.email:
            claims["email"] = person.email
        return {**claims, **person.extra, **self.overrides}

    def id_token(self, person: Person, nonce: str, key: RSAKey | None = None, **changes: Any) -> str:
        signer = key or self.key
        claims = {**self.claims(person, nonce), **changes}
        return jwt.encode({"alg": "RS256", "kid": signer.kid}, claims, signer)


# The platform side of LTI client-side storage: keeps what the tool's frame puts, answers what it gets.
STORAGE_SCRIPT = """<script>
var kept = {};
window.addEventListener("message", function (event) {
  var message = event.data || {};
  if (message.subject === "lti.put_data") kept[message.key] = message.value;
  if (message.subject !== "lti.put_data" && message.subject !== "lti.get_data") return;
  var answer = {subject: message.subject + ".response", message_id: message.message_id, key: message.key,
                value: kept[message.key]};
  event.source.postMessage(answer, event.origin);
});
</script>"""


def auto_post(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in fields.items()
    )
    return (
        f'<!doctype html><form id="launch" method="post" action="{html.escape(action)}">{inputs}</form>'
        '<script>document.getElementById("launch").submit()</script>'
    )


def create_lms_app(lms: FakeLms) -> Litestar:
    @get("/jwks")
    async def jwks() -> Response[Any]:
        lms.jwks_requests += 1
        if lms.jwks_fails_with is not None:
            return Response({"error": "unavailable"}, status_code=lms.jwks_fails_with)
        return Response(dict(KeySet(list(lms.published)).as_dict(private=False)))

    @get("/auth")
    async def authenticate(request: Request[Any, Any, Any]) -> Response[Any]:
        query = dict(request.query_params)
        expected = {
            "response_type": "id_token",
            "response_mode": "form_post",
            "scope": "openid",
            "prompt": "none",
            "client_id": lms.client_id,
            "redirect_uri": f"{lms.tool_url}/lti/launch",
        }
        if any(query.get(name) != value for name, value in expected.items()) or query["login_hint"] not in lms.people:
            return Response({"error": "invalid_request"}, status_code=400)
        token = lms.id_token(lms.people[query["login_hint"]], query["nonce"])
        page = auto_post(query["redirect_uri"], {"id_token": token, "state": query["state"]})
        return Response(page, media_type="text/html")

    @get("/course/{login_hint:str}")
    async def course(login_hint: FromPath[str], storage: FromQuery[bool] = False) -> Response[Any]:
        """The course page as this person sees it: the tool in a frame, started by a third-party-initiated login.

        With `storage`, the page also offers its postMessage storage (lti_storage_target=_parent).
        """
        login = {
            "iss": lms.issuer,
            "login_hint": login_hint,
            "target_link_uri": f"{lms.tool_url}/lti/launch",
            "client_id": lms.client_id,
            "lti_deployment_id": lms.deployment_id,
            "lti_message_hint": secrets.token_hex(4),
            **({"lti_storage_target": "_parent"} if storage else {}),
        }
        page = (
            f"<!doctype html><h1>{html.escape(lms.context['title'])}</h1>{STORAGE_SCRIPT if storage else ''}"
            f'<iframe id="tool" src="{lms.tool_url}/lti/login?{urlencode(login)}" width="1000" height="800"></iframe>'
        )
        return Response(page, media_type="text/html")

    @get("/.well-known/openid-configuration")
    async def openid_configuration() -> dict[str, Any]:
        return lms.configuration()

    @post("/register")
    async def register(request: Request[Any, Any, Any]) -> Response[Any]:
        """The tool's registration, only with the registration token; a new client and deployment in answer."""
        if request.headers.get("authorization") != f"Bearer {lms.registration_token}":
            return Response({"error": "invalid_token"}, status_code=401)
        body = await request.json()
        required = ("initiate_login_uri", "redirect_uris", "jwks_uri", "client_name", TOOL_CONFIGURATION)
        if any(not body.get(name) for name in required) or body.get("token_endpoint_auth_method") != "private_key_jwt":
            return Response({"error": "invalid_client_metadata"}, status_code=400)
        lms.registrations.append(body)
        lms.client_id, lms.deployment_id = (
            f"dynamic-client-{len(lms.registrations)}",
            f"dynamic-deployment-{len(lms.registrations)}",
        )
        tool = {**body[TOOL_CONFIGURATION], "deployment_id": lms.deployment_id}
        return Response({**body, "client_id": lms.client_id, TOOL_CONFIGURATION: tool}, status_code=201)

    @post("/token", status_code=200)
    async def token(request: Request[Any, Any, Any]) -> Response[Any]:
        """Client credentials with a private_key_jwt assertion, verified against the tool's public keys."""
        form = dict(await request.form())
        try:
            claims = lms.verified_from_tool(str(form.get("client_assertion", "")))
        except (JoseError, ValueError):
            return Response({"error": "invalid_client"}, status_code=401)
        now = time.time()
        valid = (
            form.get("grant_type") == "client_credentials"
            and form.get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            and claims.get("iss") == lms.client_id
            and claims.get("sub") == lms.client_id
            and claims.get("aud") in (lms.token_url, [lms.token_url])
            and claims.get("exp", 0) > now
            and claims.get("jti") not in lms.used_jtis
        )
        if not valid:
            return Response({"error": "invalid_client"}, status_code=401)
        lms.used_jtis.add(claims["jti"])
        lms.assertions.append(claims)
        access_token = secrets.token_urlsafe(16)
        lms.access_tokens.add(access_token)
        scope = " ".join(s for s in str(form.get("scope", "")).split() if s == NRPS_SCOPE)
        return Response({"access_token": access_token, "token_type": "Bearer", "expires_in": 3600, "scope": scope})

    @get("/courses/{context_id:str}/memberships")
    async def memberships(
        request: Request[Any, Any, Any], context_id: FromPath[str], page: FromQuery[int] = 1
    ) -> Response[Any]:
        lms.membership_requests.append(f"{context_id}:{page}")
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in lms.access_tokens:
            return Response({"error": "invalid_token"}, status_code=401)
        if lms.roster_forbidden:
            return Response({"error": "insufficient_scope"}, status_code=403)
        if request.headers.get("accept") != "application/vnd.ims.lti-nrps.v2.membershipcontainer+json":
            return Response({"error": "not_acceptable"}, status_code=406)
        start = (page - 1) * lms.page_size
        members = lms.roster[start : start + lms.page_size]
        headers = {}
        if start + lms.page_size < len(lms.roster):
            headers["Link"] = f'<{lms.memberships_url}?page={page + 1}>; rel="next"'
        body = {"id": lms.memberships_url, "context": lms.context, "members": members}
        return Response(body, headers=headers, media_type="application/vnd.ims.lti-nrps.v2.membershipcontainer+json")

    @post("/deep-link-return", status_code=200)
    async def deep_link_return(request: Request[Any, Any, Any]) -> Response[Any]:
        """The tool's answer to a deep-linking request: kept only when its signature and claims hold."""
        form = dict(await request.form())
        try:
            claims = lms.verified_from_tool(str(form.get("JWT", "")))
        except (JoseError, ValueError):
            return Response("bad signature", status_code=400, media_type="text/plain")
        if claims.get("aud") not in (lms.issuer, [lms.issuer]) or claims.get("iss") != lms.client_id:
            return Response("wrong issuer or audience", status_code=400, media_type="text/plain")
        lms.deep_link_responses.append(claims)
        return Response("<!doctype html><p>Placed in the course.</p>", media_type="text/html")

    return Litestar(
        route_handlers=[
            jwks,
            authenticate,
            course,
            openid_configuration,
            register,
            token,
            memberships,
            deep_link_return,
        ],
        debug=False,
    )


def member(sub: str, role: str, name: str, email: str = "", status: str = "Active") -> dict[str, Any]:
    """One entry of an NRPS membership container."""
    given, _, family = name.partition(" ")
    entry = {
        "user_id": sub,
        "roles": [f"{ROLE}{role}"],
        "status": status,
        "name": name,
        "given_name": given,
        "family_name": family,
    }
    return {**entry, **({"email": email} if email else {})}


async def register_platform(lms: FakeLms) -> None:
    """Register the fake with the tool, as `app lti add-platform` would."""
    registration = PlatformRegistration(
        issuer=lms.issuer,
        client_id=CLIENT_ID,
        deployment_ids=(DEPLOYMENT_ID,),
        auth_login_url=lms.auth_url,
        jwks_url=lms.jwks_url,
        token_url=lms.token_url,
    )
    async with provide_services() as services:
        await PlatformService(session=services.session).register(registration)


class LoopbackServer:
    """Runs an ASGI app on loopback in a thread with its own event loop."""

    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def serve(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class FakeLmsServer(LoopbackServer):
    """The fake platform, served."""

    def __init__(self, port: int, tool_url: str) -> None:
        self.lms = FakeLms(port=port, tool_url=tool_url)
        super().__init__(create_lms_app(self.lms), port)

    def start(self) -> FakeLms:
        self.serve()
        return self.lms
