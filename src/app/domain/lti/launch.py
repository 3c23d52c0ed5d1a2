"""LTI 1.3 rules: platform registrations, the tool's keys, and the launch, from a platform's id_token to a person.

The login state needs no server storage: `state` is random (followed by `.<storage frame>` when the platform
offered its postMessage storage), and the nonce is an HMAC of the state under SECRET_KEY. The launch then proves
that this browser started it (the state cookie, or the platform's storage) and that the token was minted for it
(the nonce), and each nonce is accepted once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, InvalidKeyIdError, JoseError, MissingClaimError
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import User
from app.domain.accounts.services import EMAIL_PATTERN, UserService
from app.domain.lti.landing import DEEP_LINKING_LAUNCH, LaunchLanding
from app.domain.lti.models import LtiIdentity, LtiLaunchToken, LtiNonce, LtiPlatform
from app.domain.lti.platforms import LaunchRefused, PlatformService, origin_of, require_deployment
from app.domain.lti.roles import course_role
from app.domain.lti.schemas import LaunchOutcome, LoginParams, LoginRedirect, VerifiedLaunch
from app.lib.clock import utcnow
from app.lib.errors import INTEGRITY_ERRORS
from app.lib.i18n import current_locale, supported
from app.lib.i18n import gettext as _
from app.lib.jwks import KeySetCache, KeysUnavailable, jwks_cache, verified_claims
from app.lib.security import new_token, token_digest
from app.lib.text import one_line
from app.lib.unit_of_work import savepoint

logger = logging.getLogger(__name__)

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
RESOURCE_LINK_LAUNCH = "LtiResourceLinkRequest"
MESSAGE_TYPES = (RESOURCE_LINK_LAUNCH, DEEP_LINKING_LAUNCH)
DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
NAMES_AND_ROLES = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
LTI_VERSION = "1.3.0"
CLOCK_LEEWAY_SECONDS = 60
STATE_COOKIE_SECONDS = 600
LAUNCH_TOKEN_LIFETIME = timedelta(minutes=2)
STORAGE_TARGET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PLACEHOLDER_EMAIL_DOMAIN = "lti.invalid"  # RFC 2606: never delivered


def new_state(storage_target: str) -> str:
    state = secrets.token_urlsafe(24)
    return f"{state}.{storage_target}" if STORAGE_TARGET.match(storage_target) else state


def storage_target_of(state: str) -> str | None:
    """The platform frame that keeps this login's state when no cookie can, if the platform offered one."""
    _head, _dot, target = state.partition(".")
    return target if STORAGE_TARGET.match(target) else None


def state_cookie(state: str) -> str:
    return f"lti_state_{state}"


def nonce_for(state: str, secret_key: str) -> str:
    return hmac.new(secret_key.encode(), b"lti-nonce:" + state.encode(), hashlib.sha256).hexdigest()


def person_name(claims: dict[str, Any]) -> tuple[str, str]:
    """(first, last) from the OIDC name claims: given_name/family_name, else `name` split at its last space, else
    preferred_username. Platforms differ in what they send; each is cleaned of control characters."""
    given, family = one_line(str(claims.get("given_name") or "")), one_line(str(claims.get("family_name") or ""))
    if given or family:
        return given[:150], family[:150]
    name = one_line(str(claims.get("name") or ""))
    if name:
        first, _space, last = name.rpartition(" ")
        return (first or last)[:150], (last if first else "")[:150]
    return one_line(str(claims.get("preferred_username") or ""))[:150], ""


class LaunchService:
    """The OIDC login and the launch. Refusals raise LaunchRefused; nothing is written for a refused launch."""

    def __init__(self, session: AsyncSession, settings: Settings, keys: KeySetCache = jwks_cache) -> None:
        self.session = session
        self.settings = settings
        self.keys = keys
        self.platforms = PlatformService(session=session)
        self.users = UserService(session=session)

    @property
    def redirect_uri(self) -> str:
        return f"{self.settings.app_url}/lti/launch"

    async def login(self, params: LoginParams) -> LoginRedirect:
        """Step 1: the platform names the person (login_hint); the browser goes on to the platform's OIDC endpoint."""
        missing = [name for name in ("iss", "login_hint", "target_link_uri") if not getattr(params, name)]
        if missing:
            raise LaunchRefused(_("The login request lacks %(missing)s.", missing=", ".join(missing)))
        platform = await self._platform(params.iss, params.client_id)
        if params.lti_deployment_id:
            require_deployment(platform, params.lti_deployment_id)
        if origin_of(params.target_link_uri) != origin_of(self.settings.app_url):
            raise LaunchRefused(
                _("The target link %(target_link_uri)r is not on this tool.", target_link_uri=params.target_link_uri)
            )
        state = new_state(params.lti_storage_target)
        nonce = nonce_for(state, self.settings.secret_key)
        query = {
            "response_type": "id_token",
            "response_mode": "form_post",
            "scope": "openid",
            "prompt": "none",
            "client_id": platform.client_id,
            "redirect_uri": self.redirect_uri,
            "login_hint": params.login_hint,
            "state": state,
            "nonce": nonce,
        }
        if params.lti_message_hint:
            query["lti_message_hint"] = params.lti_message_hint
        separator = "&" if "?" in platform.auth_login_url else "?"
        return LoginRedirect(
            url=f"{platform.auth_login_url}{separator}{urlencode(query)}",
            state=state,
            nonce=nonce,
            storage_target=storage_target_of(state),
            platform_origin=origin_of(platform.auth_login_url),
        )

    async def verify(self, id_token: str) -> VerifiedLaunch:
        """The id_token checked: its platform, signature, times and LTI claims (but not yet its state and nonce)."""
        try:
            unverified = jws.extract_compact(id_token.encode())
            header, claims = unverified.headers(), json.loads(unverified.payload)
        except (JoseError, ValueError) as exc:
            raise LaunchRefused(_("The launch carries no readable id_token.")) from exc
        if not isinstance(claims, dict):
            raise LaunchRefused(_("The launch carries no readable id_token."))
        platform = await self._platform(str(claims.get("iss", "")), audience_client(claims))
        verified = await self._checked_claims(id_token, header.get("kid"), platform)
        deployment = verified.get(f"{CLAIM}deployment_id")
        require_deployment(platform, deployment)
        if (message_type := verified.get(f"{CLAIM}message_type")) not in MESSAGE_TYPES:
            raise LaunchRefused(
                _(
                    "Message type %(message_type)r is not supported: this tool takes resource links and deep linking.",
                    message_type=message_type,
                )
            )
        if (version := verified.get(f"{CLAIM}version")) != LTI_VERSION:
            raise LaunchRefused(
                _(
                    "LTI version %(version)r is not supported: this tool speaks %(lti_version)s.",
                    version=version,
                    lti_version=LTI_VERSION,
                )
            )
        roles = verified.get(f"{CLAIM}roles")
        context = verified.get(f"{CLAIM}context") or {}
        custom = verified.get(f"{CLAIM}custom") or {}
        names_and_roles = verified.get(NAMES_AND_ROLES) or {}
        deep_linking = verified.get(DEEP_LINKING_SETTINGS) or {}
        presentation = verified.get(f"{CLAIM}launch_presentation") or {}
        objects = (context, custom, names_and_roles, deep_linking)
        if not (isinstance(roles, list) and all(isinstance(value, dict) for value in objects)):
            raise LaunchRefused(_("The roles, context, custom, names and roles or deep linking claim is malformed."))
        if message_type == DEEP_LINKING_LAUNCH and not deep_linking.get("deep_link_return_url"):
            raise LaunchRefused(_("The deep linking request names no deep_link_return_url."))
        return VerifiedLaunch(
            platform=platform,
            message_type=message_type,
            deployment_id=str(deployment),
            subject=str(verified["sub"]),
            nonce=str(verified["nonce"]),
            expires_at=datetime.fromtimestamp(verified["exp"], UTC),
            roles=tuple(str(role) for role in roles),
            context_id=str(context.get("id", "")),
            context_title=str(context.get("title", "")),
            email=str(verified.get("email") or "").strip(),
            names=person_name(verified),
            custom=custom,
            memberships_url=str(names_and_roles.get("context_memberships_url") or ""),
            deep_linking=deep_linking,
            locale=str(presentation.get("locale") or "") or None if isinstance(presentation, dict) else None,
        )

    async def _platform(self, issuer: str, client_id: str) -> LtiPlatform:
        platform = await self.platforms.find(issuer, client_id)
        if not platform.is_approved:
            raise LaunchRefused(
                _("This platform's registration waits for an administrator of office hours to approve it."), 403
            )
        return platform

    async def _checked_claims(self, id_token: str, kid: str | None, platform: LtiPlatform) -> dict[str, Any]:
        try:
            claims = await verified_claims(id_token, platform.jwks_url, self.keys)
        except KeysUnavailable as exc:
            logger.warning("LTI platform keys unavailable: %s", exc)
            raise LaunchRefused(_("The platform's public keys could not be fetched; try again shortly."), 502) from exc
        except InvalidKeyIdError as exc:
            raise LaunchRefused(
                _("The id_token is signed with a key the platform does not publish: %(kid)s.", kid=kid), 401
            ) from exc
        except JoseError as exc:
            raise LaunchRefused(_("The id_token's signature is not valid."), 401) from exc
        registry = jwt.JWTClaimsRegistry(
            leeway=CLOCK_LEEWAY_SECONDS,
            iss={"essential": True, "value": platform.issuer},
            aud={"essential": True, "value": platform.client_id},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            nonce={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError as exc:
            raise LaunchRefused(_("The launch has expired; open the tool again from your course."), 401) from exc
        except MissingClaimError as exc:
            raise LaunchRefused(
                _("The id_token lacks a required claim (%(description)s).", description=exc.description)
            ) from exc
        except JoseError as exc:
            raise LaunchRefused(
                _("The id_token is not valid (%(description)s).", description=exc.description), 401
            ) from exc
        return claims

    async def complete(self, launch: VerifiedLaunch, state: str) -> LaunchOutcome:
        """A verified launch from this browser (`state`): the nonce spent, the person found or created, the landing."""
        if not hmac.compare_digest(launch.nonce, nonce_for(state, self.settings.secret_key)):
            raise LaunchRefused(_("The id_token was not issued for this sign-in (nonce mismatch)."), 401)
        # A refusal ends the request with an error, which undoes all of it: the nonce stays unspent, no account.
        await self._spend_nonce(launch)
        user = await self._person(launch)
        landing = await LaunchLanding(self.session).of(launch, user)
        token = new_token()
        self.session.add(
            LtiLaunchToken(
                token_hash=token_digest(token),
                user_id=user.id,
                target=landing,
                expires_at=utcnow() + LAUNCH_TOKEN_LIFETIME,
            )
        )
        await self.session.flush()
        return LaunchOutcome(user=user, landing=landing, launch_token=token)

    async def _spend_nonce(self, launch: VerifiedLaunch) -> None:
        now = utcnow()
        await self.session.execute(delete(LtiNonce).where(LtiNonce.expires_at < now))
        expires = launch.expires_at + timedelta(seconds=CLOCK_LEEWAY_SECONDS)
        spent = await self.session.scalar(
            insert(LtiNonce)
            .values(nonce=launch.nonce, expires_at=expires)
            .on_conflict_do_nothing(index_elements=["nonce"])
            .returning(LtiNonce.id)
        )
        if spent is None:
            raise LaunchRefused(_("This launch was used already (replayed nonce); open the tool again."), 401)

    async def _person(self, launch: VerifiedLaunch) -> User:
        issuer = launch.platform.issuer
        identity = await self._identity(issuer, launch.subject)
        if identity is None:
            try:
                async with savepoint(self.session):
                    user = await self._account_for(launch)
                    self.session.add(LtiIdentity(issuer=issuer, subject=launch.subject, user_id=user.id))
            except INTEGRITY_ERRORS as exc:  # the same person's first launch in another tab won the race
                identity = await self._identity(issuer, launch.subject)
                if identity is None:
                    raise LaunchRefused(_("Your account could not be set up; open the tool again."), 409) from exc
            else:
                return user
        if not identity.user.is_active:
            raise LaunchRefused(_("This account is disabled."), 401)
        first, last = launch.names
        if first and (identity.user.first_name, identity.user.last_name) != (first, last):
            # The platform knows the person's name better: it is taken again at each launch.
            identity.user.first_name, identity.user.last_name = first, last
        if launch.locale:
            identity.user.locale = supported(launch.locale)  # as the LMS speaks to them, today
        return identity.user

    async def _identity(self, issuer: str, subject: str) -> LtiIdentity | None:
        return await self.session.scalar(
            select(LtiIdentity).where(LtiIdentity.issuer == issuer, LtiIdentity.subject == subject)
        )

    async def _account_for(self, launch: VerifiedLaunch) -> User:
        """An existing account with the same email when the platform is trusted to vouch for it, else a new one."""
        email = launch.email if EMAIL_PATTERN.match(launch.email) else ""
        owner = await self.users.get_one_or_none(func.lower(User.email) == email.lower()) if email else None
        # Joining an existing account by its address needs the platform's word and the account's proof of it:
        # else anyone who registered a student's address first would receive the student's launches.
        if owner is not None and launch.platform.trust_email and owner.email_verified_at is not None:
            if not owner.is_active:
                raise LaunchRefused(_("This account is disabled."), 401)
            return owner
        role = course_role(launch.roles)
        if role is None:
            raise LaunchRefused(_("The launch names no Instructor, Teaching Assistant or Learner role in the course."))
        username = "lti-" + hashlib.sha256(f"{launch.platform.issuer} {launch.subject}".encode()).hexdigest()[:16]
        # Without an address of its own the account gets a placeholder until the person enters one in Settings.
        return await self.users.create(
            {
                "username": username,
                "email": email if email and owner is None else f"{username}@{PLACEHOLDER_EMAIL_DOMAIN}",
                "user_type": role.value,
                "first_name": launch.names[0],
                "last_name": launch.names[1],
                "locale": supported(launch.locale) if launch.locale else current_locale(),
                "email_verified_at": utcnow() if email and owner is None and launch.platform.trust_email else None,
            },
        )

    async def redeem(self, token: str) -> tuple[User, str]:
        """A launch token, once and while fresh: the person and the view to open for them."""
        now = utcnow()
        row = (
            await self.session.execute(
                update(LtiLaunchToken)
                .where(
                    LtiLaunchToken.token_hash == token_digest(token),
                    LtiLaunchToken.used_at.is_(None),
                    LtiLaunchToken.expires_at > now,
                )
                .values(used_at=now)
                .returning(LtiLaunchToken.user_id, LtiLaunchToken.target)
            )
        ).one_or_none()
        user = await self.users.get_one_or_none(id=row.user_id, is_active=True) if row else None
        if row is None or user is None:
            raise LaunchRefused(_("This link has expired or was used already: open the tool again from your course."))
        return user, str(row.target)


def audience_client(claims: dict[str, Any]) -> str:
    """The client id a token is for: its only audience, or `azp` when it has several (OIDC Core 3.1.3.7)."""
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    azp = claims.get("azp")
    if len(audiences) > 1 and (not isinstance(azp, str) or azp not in audiences):
        raise LaunchRefused(_("The id_token has several audiences but no authorized party (azp) among them."))
    client_id = azp if len(audiences) > 1 else (audiences[0] if audiences else "")
    if not isinstance(client_id, str) or not client_id or (azp is not None and azp != client_id):
        raise LaunchRefused(_("The id_token's audience does not name this tool's client id."))
    return client_id
