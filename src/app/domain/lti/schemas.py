"""What crosses the LTI boundary: a platform registration, the login request, a verified launch and its outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from app.domain.accounts.models import User
from app.domain.lti.models import LtiPlatform


@dataclass(frozen=True)
class PlatformRegistration:
    issuer: str
    client_id: str
    deployment_ids: tuple[str, ...]
    auth_login_url: str
    jwks_url: str
    token_url: str = ""
    name: str = ""
    trust_email: bool = False


class LoginParams(msgspec.Struct, frozen=True):
    """A third-party-initiated login (OIDC step 1), from the query or the form; absent parameters are empty."""

    iss: str = ""
    login_hint: str = ""
    target_link_uri: str = ""
    lti_message_hint: str = ""
    client_id: str = ""
    lti_deployment_id: str = ""
    lti_storage_target: str = ""


class RegistrationRequest(msgspec.Struct, frozen=True):
    """LTI Dynamic Registration's initiation (query), and the confirmation form that carries it on."""

    openid_configuration: str = ""
    registration_token: str = ""


class LaunchForm(msgspec.Struct):
    """The platform's form post of the launch (OIDC step 3), or of its refusal."""

    id_token: str = ""
    state: str = ""
    error: str = ""
    error_description: str = ""


class StoredLaunchForm(msgspec.Struct):
    """The storage page's post: the launch, and the state and nonce it read back from the platform's frame."""

    id_token: str = ""
    state: str = ""
    stored_state: str = ""
    stored_nonce: str = ""


@dataclass(frozen=True)
class LoginRedirect:
    """Where the browser goes next (the platform's OIDC endpoint), and what must come back with the launch."""

    url: str
    state: str
    nonce: str
    storage_target: str | None
    platform_origin: str


@dataclass(frozen=True)
class VerifiedLaunch:
    """An id_token whose signature, issuer, audience, times, deployment and message type have been checked."""

    platform: LtiPlatform
    subject: str
    nonce: str
    expires_at: datetime
    roles: tuple[str, ...]
    message_type: str = "LtiResourceLinkRequest"
    deployment_id: str = ""
    context_id: str = ""
    context_title: str = ""
    email: str = ""
    names: tuple[str, str] = ("", "")  # first, last
    custom: dict[str, Any] = field(default_factory=dict)
    locale: str | None = None  # launch_presentation.locale: the language the LMS speaks to this person
    memberships_url: str = ""  # Names and Role Provisioning Services: the course roster's address
    deep_linking: dict[str, Any] = field(default_factory=dict)  # the deep linking settings claim


@dataclass(frozen=True)
class LaunchOutcome:
    user: User
    landing: str  # an embed view
    launch_token: str  # signs the same person in, in a new tab, when the frame keeps no cookie
