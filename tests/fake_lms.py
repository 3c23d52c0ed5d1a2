"""A simulated LMS platform speaking LTI 1.3, served over HTTP on loopback.

It publishes its keys (JWKS), answers the tool's OIDC authentication request by signing an id_token for the person
named by `login_hint` and posting it back as a self-submitting form (as Canvas and Moodle do), and shows a course
page that frames the tool. Tests change the claims (`overrides`), sign with another key, or rotate keys.
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
from joserfc.jwk import KeySet, RSAKey
from litestar import Litestar, Request, Response, get
from litestar.params import FromPath, FromQuery

from app.domain.lti.platforms import PlatformService
from app.domain.lti.schemas import PlatformRegistration
from app.services import provide_services

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
CLIENT_ID = "office-hours-tool"
DEPLOYMENT_ID = "deployment-1"


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

    def rotate_key(self) -> None:
        """A new signing key with a new kid; only the new key is published from now on."""
        self.key = new_key(f"lms-key-{len(self.published) + 1}")
        self.published = [self.key]

    def claims(self, person: Person, nonce: str) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": person.sub,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "given_name": person.given_name,
            "family_name": person.family_name,
            f"{CLAIM}message_type": "LtiResourceLinkRequest",
            f"{CLAIM}version": "1.3.0",
            f"{CLAIM}deployment_id": DEPLOYMENT_ID,
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
    async def jwks() -> dict[str, Any]:
        lms.jwks_requests += 1
        return dict(KeySet(list(lms.published)).as_dict(private=False))

    @get("/auth")
    async def authenticate(request: Request[Any, Any, Any]) -> Response[Any]:
        query = dict(request.query_params)
        expected = {
            "response_type": "id_token",
            "response_mode": "form_post",
            "scope": "openid",
            "prompt": "none",
            "client_id": CLIENT_ID,
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
            "client_id": CLIENT_ID,
            "lti_deployment_id": DEPLOYMENT_ID,
            "lti_message_hint": secrets.token_hex(4),
            **({"lti_storage_target": "_parent"} if storage else {}),
        }
        page = (
            f"<!doctype html><h1>{html.escape(lms.context['title'])}</h1>{STORAGE_SCRIPT if storage else ''}"
            f'<iframe id="tool" src="{lms.tool_url}/lti/login?{urlencode(login)}" width="1000" height="800"></iframe>'
        )
        return Response(page, media_type="text/html")

    return Litestar(route_handlers=[jwks, authenticate, course], debug=False)


async def register_platform(lms: FakeLms) -> None:
    """Register the fake with the tool, as `app lti add-platform` would."""
    registration = PlatformRegistration(
        issuer=lms.issuer,
        client_id=CLIENT_ID,
        deployment_ids=(DEPLOYMENT_ID,),
        auth_login_url=lms.auth_url,
        jwks_url=lms.jwks_url,
    )
    async with provide_services() as services:
        await PlatformService(session=services.session).register(registration)


class FakeLmsServer:
    """Runs the fake platform in a thread with its own event loop."""

    def __init__(self, port: int, tool_url: str) -> None:
        self.lms = FakeLms(port=port, tool_url=tool_url)
        config = uvicorn.Config(create_lms_app(self.lms), host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def start(self) -> FakeLms:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.lms

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
