"""LTI Dynamic Registration 1.0: an LMS administrator pastes APP_URL/lti/register into the platform, which opens it
with `openid_configuration` (where its configuration is) and `registration_token` (its permission to register).

The tool reads and checks the platform's configuration (its issuer must be on the configuration URL's origin),
posts its own client registration to the platform's registration endpoint (bearer: the registration token), and
stores the platform from the answer. A dynamically registered platform launches nothing until an administrator
of office hours approves it (`app lti approve`, or /admin/lti), unless LTI_AUTO_APPROVE is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.lti.models import LtiPlatform, RegisteredVia
from app.domain.lti.platforms import LaunchRefused, PlatformService, origin_of, url_problem
from app.domain.lti.roster import NRPS_SCOPE
from app.domain.lti.schemas import PlatformRegistration, RegistrationRequest
from app.lib.errors import FieldErrors
from app.lib.i18n import gettext as _

TOOL_NAME = "Office hours"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
HTTP_TIMEOUT_SECONDS = 15
ENDPOINTS = {
    "authorization_endpoint": "its OIDC authorization endpoint",
    "jwks_uri": "its public keyset",
    "token_endpoint": "its access token endpoint",
    "registration_endpoint": "its registration endpoint",
}


@dataclass(frozen=True)
class PlatformConfiguration:
    """The platform's OpenID configuration, checked."""

    issuer: str
    authorization_endpoint: str
    jwks_uri: str
    token_endpoint: str
    registration_endpoint: str
    product: str  # e.g. "moodle", "canvas"
    scopes: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.product.capitalize()} ({urlsplit(self.issuer).hostname})" if self.product else self.issuer


def tool_registration(settings: Settings, configuration: PlatformConfiguration) -> dict[str, Any]:
    """The tool's client registration (OpenID Connect Dynamic Client Registration with the LTI extension)."""
    app = settings.app_url
    launch = f"{app}/lti/launch"
    messages = [
        {"type": "LtiResourceLinkRequest", "target_link_uri": launch, "label": TOOL_NAME},
        {"type": "LtiDeepLinkingRequest", "target_link_uri": launch, "label": f"{TOOL_NAME}: place in course"},
    ]
    registration: dict[str, Any] = {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": f"{app}/lti/login",
        "redirect_uris": [launch],
        "client_name": TOOL_NAME,
        "jwks_uri": f"{app}/lti/jwks",
        "token_endpoint_auth_method": "private_key_jwt",
        TOOL_CONFIGURATION: {
            "domain": urlsplit(app).netloc,
            "description": "Consultation hours: students book, professors publish and manage their slots.",
            "target_link_uri": launch,
            "claims": ["iss", "sub", "name", "given_name", "family_name", "email"],
            "messages": messages,
        },
    }
    if not configuration.scopes or NRPS_SCOPE in configuration.scopes:
        registration["scope"] = NRPS_SCOPE  # the course roster, for course-scoped office hours
    return registration


class DynamicRegistration:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    async def configuration(self, params: RegistrationRequest) -> PlatformConfiguration:
        """The platform's configuration, fetched and checked; a refusal says what is wrong."""
        url = params.openid_configuration
        if not url or url_problem(url):
            raise LaunchRefused(
                _("Open this page from your LMS's tool registration: it needs the platform's openid_configuration URL.")
            )
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as client:
                response = await client.get(url, headers=self._headers(params))
            body: Any = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise LaunchRefused(
                _("The platform's configuration could not be read from %(url)s (%(exc)s).", url=url, exc=exc), 502
            ) from exc
        if response.status_code != 200 or not isinstance(body, dict):
            status = response.status_code
            raise LaunchRefused(
                _(
                    "The platform's configuration could not be read from %(url)s (HTTP %(status)s).",
                    url=url,
                    status=status,
                ),
                502,
            )
        return checked_configuration(url, body)

    async def register(self, params: RegistrationRequest) -> LtiPlatform:
        """Register the tool with the platform and store the platform (waiting for approval unless LTI_AUTO_APPROVE)."""
        configuration = await self.configuration(params)
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as client:
                response = await client.post(
                    configuration.registration_endpoint,
                    json=tool_registration(self.settings, configuration),
                    headers=self._headers(params),
                )
            body: Any = response.json() if response.content else {}
        except (httpx.HTTPError, ValueError) as exc:
            raise LaunchRefused(
                _("The platform's registration endpoint could not be reached (%(exc)s).", exc=exc), 502
            ) from exc
        if response.status_code not in (200, 201) or not isinstance(body, dict) or not body.get("client_id"):
            detail = (body.get("error_description") or body.get("error")) if isinstance(body, dict) else ""
            status = f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
            raise LaunchRefused(
                _(
                    "The platform refused the registration (%(status)s). Start it again from the platform: its"
                    " registration token may have expired.",
                    status=status,
                ),
                502 if response.status_code >= 500 else 400,
            )
        answer = body.get(TOOL_CONFIGURATION)
        deployment = str(answer.get("deployment_id") or "") if isinstance(answer, dict) else ""
        registration = PlatformRegistration(
            issuer=configuration.issuer,
            client_id=str(body["client_id"]),
            deployment_ids=(deployment,) if deployment else (),
            auth_login_url=configuration.authorization_endpoint,
            jwks_url=configuration.jwks_uri,
            token_url=configuration.token_endpoint,
            name=configuration.name[:200],
        )
        try:
            return await PlatformService(session=self.session).register(
                registration, via=RegisteredVia.DYNAMIC, approved=self.settings.lti_auto_approve
            )
        except FieldErrors as exc:
            raise LaunchRefused(
                _("The platform's answer cannot be stored: %(problem)s", problem=exc.in_words())
            ) from exc

    @staticmethod
    def _headers(params: RegistrationRequest) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if params.registration_token:
            headers["Authorization"] = f"Bearer {params.registration_token}"
        return headers


def checked_configuration(url: str, body: dict[str, Any]) -> PlatformConfiguration:
    """The configuration's issuer must be on the origin it was fetched from, and its endpoints usable."""
    issuer = str(body.get("issuer") or "")
    if not issuer or origin_of(issuer) != origin_of(url):
        raise LaunchRefused(
            _(
                "The platform's issuer %(issuer)r does not match the origin of its configuration URL (%(origin)s).",
                issuer=issuer,
                origin=origin_of(url),
            )
        )
    problems = []
    for name, meaning in ENDPOINTS.items():
        value = body.get(name)
        if not isinstance(value, str) or url_problem(value):
            problems.append(f"{meaning} ({name})")
    algorithms = body.get("id_token_signing_alg_values_supported") or ["RS256"]
    if not isinstance(algorithms, list) or "RS256" not in algorithms:
        problems.append("RS256 signatures (id_token_signing_alg_values_supported)")
    if problems:
        raise LaunchRefused(_("The platform's configuration lacks %(problems)s.", problems=", ".join(problems)))
    platform = body.get(PLATFORM_CONFIGURATION)
    product = platform.get("product_family_code") if isinstance(platform, dict) else ""
    scopes = body.get("scopes_supported")
    return PlatformConfiguration(
        issuer=issuer,
        authorization_endpoint=body["authorization_endpoint"],
        jwks_uri=body["jwks_uri"],
        token_endpoint=body["token_endpoint"],
        registration_endpoint=body["registration_endpoint"],
        product=str(product or ""),
        scopes=tuple(str(scope) for scope in scopes) if isinstance(scopes, list) else (),
    )
