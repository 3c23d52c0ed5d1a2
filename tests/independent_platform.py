"""An LTI 1.3 platform built on `lti1p3platform` (PyPI), an implementation independent of this project, served on
loopback: so the tool is also tested against someone else's reading of the specification.

lti1p3platform builds the third-party-initiated login URL, validates the tool's authentication request, signs the
id_token (resource links with the NRPS claim, and deep-linking requests), verifies the tool's LtiDeepLinkingResponse
against the tool's public keys, checks the tool's signed client assertion before it grants an access token, and
answers the course's membership pages for that token. This module only serves it over HTTP: its JWKS, its OIDC
endpoint, its deep-link return URL, its token endpoint and its membership service (the library leaves the
`Link: rel=next` header to the web framework: `generate_next_link`).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar import Litestar, Request, Response, get, post
from lti1p3platform.exceptions import LtiException
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.membership import Context
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request as LtiRequest
from lti1p3platform.response import generate_next_link
from lti1p3platform.service_connector import NamesRoleProvisioningService, TPage

from tests.fake_lms import ROLE, LoopbackServer, auto_post

CLIENT_ID = "independent-client"
DEPLOYMENT_ID = "independent-deployment"
ROSTER_PAGE_SIZE = 2


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


class MembershipRequest(LtiRequest):
    """A membership page request (bearer token, page and limit), as lti1p3platform reads requests."""

    def build_metadata(self, request: Any) -> Any:
        query = {key: int(value) if key in {"page", "limit"} else value for key, value in request.query_params.items()}
        return {
            "method": request.method,
            "form_data": {},
            "get_data": query,
            "headers": {name.title(): value for name, value in request.headers.items()},  # it reads "Authorization"
            "content_type": None,
            "path": request.url.path,
            "json": None,
        }


class CourseMemberships(NamesRoleProvisioningService):
    def __init__(self, request: LtiRequest, platform: IndependentPlatform) -> None:
        super().__init__(request, platform.configuration, platform.memberships_url)
        self.platform = platform

    def get_member_data_page(
        self, page: int = 1, limit: int | None = None, role: str | None = None, since: str | None = None
    ) -> TPage:
        members = self.platform.roster
        size = limit or len(members)
        start = (page - 1) * size
        self.platform.membership_pages.append(page)
        return {"content": members[start : start + size], "has_next": start + size < len(members)}

    def get_context_by_id(self) -> Context:
        return Context(id="course-7", label="CS-7", title="Compilers")


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
    roster: list[dict[str, Any]] = field(default_factory=list)  # NRPS members; offered in launches when not empty
    membership_pages: list[int] = field(default_factory=list)  # pages served to a valid token

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
    def memberships_url(self) -> str:
        return f"{self.issuer}/memberships"

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
            if platform.roster:
                # The platform's page size travels in the service URL; lti1p3platform pages only when asked to.
                launch.set_nrps(f"{platform.memberships_url}?limit={ROSTER_PAGE_SIZE}")
        return Response(launch.lti_launch(), media_type="text/html")

    @post("/deep-link-return", status_code=200)
    async def deep_link_return(request: Request[Any, Any, Any]) -> Response[Any]:
        form = dict(await request.form())
        platform.content_items.extend(platform.configuration.validate_deeplinking_resp({"JWT": form["JWT"]}))
        return Response(
            f"<!doctype html><p>{html.escape(str(len(platform.content_items)))} placed</p>", media_type="text/html"
        )

    @post("/token", status_code=200)
    async def token(request: Request[Any, Any, Any]) -> Response[Any]:
        try:  # lti1p3platform verifies the tool's client assertion with the tool's public keys
            granted = platform.configuration.get_access_token(dict(await request.form()))
        except LtiException:
            return Response({"error": "invalid_client"}, status_code=401)
        return Response(dict(granted))

    @get("/memberships")
    async def memberships(request: Request[Any, Any, Any]) -> Response[Any]:
        service = CourseMemberships(MembershipRequest(request), platform)
        answer = service.handle_resp(service.handle_get_members)  # a refused token is its 401, not an exception
        if answer.code != 200:
            return Response({"error": answer.message}, status_code=answer.code)
        body = dict(answer.result)
        following = body.pop("next", None)
        headers = {"Link": generate_next_link(following)} if following else {}
        return Response(body, media_type=answer.media_type, headers=headers)

    return Litestar(route_handlers=[jwks, authenticate, deep_link_return, token, memberships], debug=False)


def person(sub: str, role: str, name: str, email: str) -> dict[str, Any]:
    return {"sub": sub, "roles": [f"{ROLE}{role}"], "name": name, "email": email}


class IndependentPlatformServer(LoopbackServer):
    def __init__(self, port: int, tool_url: str, login_url: str) -> None:
        self.platform = IndependentPlatform(port=port, tool_url=tool_url, login_url=login_url)
        super().__init__(create_platform_app(self.platform), port)

    def start(self) -> IndependentPlatform:
        self.serve()
        return self.platform
