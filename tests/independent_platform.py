"""An LTI 1.3 platform built on `lti1p3platform` (PyPI), an implementation independent of this project, served on
loopback: so the tool is also tested against someone else's reading of the specification.

lti1p3platform builds the third-party-initiated login URL, validates the tool's authentication request, signs the
id_token (resource links and deep-linking requests) and verifies the tool's LtiDeepLinkingResponse against the
tool's public keys. This module only serves it over HTTP: its JWKS, its OIDC endpoint and its deep-link return URL.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Litestar, Request, Response, get, post
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request as LtiRequest

from tests.fake_lms import ROLE, LoopbackServer, auto_post

CLIENT_ID = "independent-client"
DEPLOYMENT_ID = "independent-deployment"


class PlatformConfiguration(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, **kwargs: Any) -> None:
        self._registration = kwargs["registration"]

    def get_registration_by_params(self, **kwargs: Any) -> Registration:
        assert self._registration is not None
        return self._registration


class Login(OIDCLoginAbstract):
    def set_lti_message_hint(self, **kwargs: Any) -> None:
        self._lti_message_hint = kwargs["hint"]

    def get_redirect(self, url: str) -> str:
        return url


class QueryRequest(LtiRequest):
    """The tool's authentication request, as lti1p3platform reads requests."""

    def build_metadata(self, request: Any) -> Any:
        return {
            "method": "GET",
            "form_data": {},
            "get_data": request,
            "headers": {},
            "content_type": None,
            "path": "/auth",
            "json": None,
        }


class Launch(LTIAdvantageMessageLaunchAbstract):
    def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any) -> str:
        return auto_post(
            launch_data["launch_url"], {"id_token": launch_data["id_token"], "state": launch_data["state"]}
        )


@dataclass
class IndependentPlatform:
    port: int
    tool_url: str  # the tool's APP_URL
    login_url: str  # where the tool's OIDC login is reached from the test's browser
    registration: Registration = field(init=False)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)  # login_hint -> user data and roles
    deep_linking: bool = False
    custom: dict[str, str] = field(default_factory=dict)
    content_items: list[dict[str, Any]] = field(default_factory=list)  # verified deep-linking answers

    def __post_init__(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.registration = (
            Registration()
            .set_iss(self.issuer)
            .set_client_id(CLIENT_ID)
            .set_deployment_id(DEPLOYMENT_ID)
            .set_launch_url(f"{self.tool_url}/lti/launch")
            .set_deeplink_launch_url(f"{self.tool_url}/lti/launch")
            .set_oidc_login_url(self.login_url)
            .set_platform_public_key(public.decode())
            .set_platform_private_key(private.decode())
        )

    @property
    def issuer(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def configuration(self) -> PlatformConfiguration:
        return PlatformConfiguration(registration=self.registration)

    def trust_tool_keys(self, jwks: dict[str, Any]) -> None:
        """The tool's public keys (fetched by the test from the tool's /lti/jwks, as the platform would)."""
        self.registration.set_tool_key_set(jwks)  # type: ignore[arg-type]

    def login_url_for(self, login_hint: str) -> str:
        """The third-party-initiated login the platform starts (deep linking or a resource link)."""
        login = Login(None, self.configuration)
        login.set_lti_message_hint(hint="office-hours-link")
        if self.deep_linking:
            login.set_deeplinking_launch_url()
        return str(login.initiate_login(login_hint))


def create_platform_app(platform: IndependentPlatform) -> Litestar:
    @get("/jwks")
    async def jwks() -> dict[str, Any]:
        return dict(platform.configuration.get_jwks())

    @get("/auth")
    async def authenticate(request: Request[Any, Any, Any]) -> Response[Any]:
        query = dict(request.query_params)
        person = platform.people[query["login_hint"]]
        launch = Launch(QueryRequest(query), platform.configuration)
        launch.set_user_data(person["sub"], person["roles"], full_name=person["name"], email_address=person["email"])
        launch.set_launch_context_claim("course-7", context_title="Compilers")
        if platform.deep_linking:
            launch.set_dl(f"{platform.issuer}/deep-link-return", title="Office hours", accept_types={"ltiResourceLink"})
        else:
            launch.set_resource_link_claim("office-hours-link-7")
            launch.set_custom_parameters_claim(platform.custom)
        return Response(launch.lti_launch(), media_type="text/html")

    @post("/deep-link-return", status_code=200)
    async def deep_link_return(request: Request[Any, Any, Any]) -> Response[Any]:
        form = dict(await request.form())
        platform.content_items.extend(platform.configuration.validate_deeplinking_resp({"JWT": form["JWT"]}))
        return Response(
            f"<!doctype html><p>{html.escape(str(len(platform.content_items)))} placed</p>", media_type="text/html"
        )

    return Litestar(route_handlers=[jwks, authenticate, deep_link_return], debug=False)


def person(sub: str, role: str, name: str, email: str) -> dict[str, Any]:
    return {"sub": sub, "roles": [f"{ROLE}{role}"], "name": name, "email": email}


class IndependentPlatformServer(LoopbackServer):
    def __init__(self, port: int, tool_url: str, login_url: str) -> None:
        self.platform = IndependentPlatform(port=port, tool_url=tool_url, login_url=login_url)
        super().__init__(create_platform_app(self.platform), port)

    def start(self) -> IndependentPlatform:
        self.serve()
        return self.platform
