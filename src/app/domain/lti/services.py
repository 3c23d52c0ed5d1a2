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
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import RSAKey
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import get_alchemy_config
from app.domain.accounts.models import User, UserType
from app.domain.accounts.services import EMAIL_PATTERN, UserService
from app.domain.lti.jwks import KeysUnavailable, PlatformKeys, platform_keys
from app.domain.lti.models import LtiContext, LtiIdentity, LtiKey, LtiLaunchToken, LtiNonce, LtiPlatform
from app.domain.lti.schemas import LaunchOutcome, LoginParams, LoginRedirect, PlatformRegistration, VerifiedLaunch
from app.lib.crypto import encrypt_json
from app.lib.errors import INTEGRITY_ERRORS, DomainError, FieldErrors
from app.lib.security import new_token, token_digest

logger = logging.getLogger(__name__)

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
MEMBERSHIP_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership"
PROFESSOR_ROLES = frozenset({"Instructor", "TeachingAssistant"})
STUDENT_ROLES = frozenset({"Learner"})
RESOURCE_LINK_LAUNCH = "LtiResourceLinkRequest"
LTI_VERSION = "1.3.0"
CLOCK_LEEWAY_SECONDS = 60
STATE_COOKIE_SECONDS = 600
LAUNCH_TOKEN_LIFETIME = timedelta(minutes=2)
# After a rotation the previous key stays published this long, for platforms that cached our JWKS.
RETIRED_KEY_PUBLISHED = timedelta(days=7)
STORAGE_TARGET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
PLACEHOLDER_EMAIL_DOMAIN = "lti.invalid"  # RFC 2606: never delivered


class LaunchRefused(DomainError):
    """A login or launch the tool does not accept; the message says what failed (shown in the frame and logged)."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def url_problem(url: str) -> str | None:
    """LTI endpoints are HTTPS; plain HTTP only on this machine (development and tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return None
    return "Give an https:// URL (http:// only for localhost)."


def new_state(storage_target: str) -> str:
    state = secrets.token_urlsafe(24)
    return f"{state}.{storage_target}" if STORAGE_TARGET.match(storage_target) else state


def storage_target_of(state: str) -> str | None:
    """The platform frame that keeps this login's state when no cookie can, if the platform offered one."""
    _, _, target = state.partition(".")
    return target if STORAGE_TARGET.match(target) else None


def state_cookie(state: str) -> str:
    return f"lti_state_{state}"


def nonce_for(state: str, secret_key: str) -> str:
    return hmac.new(secret_key.encode(), b"lti-nonce:" + state.encode(), hashlib.sha256).hexdigest()


def course_role(roles: Iterable[str]) -> UserType | None:
    """Professor for Instructor or TeachingAssistant in the course, student for Learner; other roles give none.

    Context roles are `http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor` (sub-roles such as
    `.../membership/Instructor#TeachingAssistant`) or the short names; institution and system roles do not count.
    """
    names = {role.rsplit("#", 1)[-1] for role in roles if role.startswith(MEMBERSHIP_ROLE) or (":" not in role)}
    if names & PROFESSOR_ROLES:
        return UserType.PROFESSOR
    if names & STUDENT_ROLES:
        return UserType.STUDENT
    return None


class PlatformService(SQLAlchemyAsyncRepositoryService[LtiPlatform]):
    class Repository(SQLAlchemyAsyncRepository[LtiPlatform]):
        model_type = LtiPlatform

    repository_type = Repository

    async def register(self, data: PlatformRegistration) -> LtiPlatform:
        errors: dict[str, str] = {}
        for name in ("issuer", "auth_login_url", "jwks_url", "token_url"):
            value = getattr(data, name)
            if (value or name != "token_url") and (problem := url_problem(value)):
                errors[name] = problem
        if not data.client_id.strip():
            errors["client_id"] = "Give the client id the platform assigned to this tool."
        deployments = tuple(d.strip() for d in data.deployment_ids if d.strip())
        if not deployments:
            errors["deployment_ids"] = "Give at least one deployment id."
        if not errors and await self.repository.exists(
            LtiPlatform.issuer == data.issuer, LtiPlatform.client_id == data.client_id.strip()
        ):
            errors["client_id"] = "This issuer and client id are registered already; remove them first."
        if errors:
            raise FieldErrors(errors)
        return await self.create(
            {
                "name": data.name.strip(),
                "issuer": data.issuer,
                "client_id": data.client_id.strip(),
                "deployment_ids": list(deployments),
                "auth_login_url": data.auth_login_url,
                "jwks_url": data.jwks_url,
                "token_url": data.token_url,
                "trust_email": data.trust_email,
            },
            auto_commit=True,
        )

    async def registered(self) -> list[LtiPlatform]:
        return list(await self.repository.session.scalars(select(LtiPlatform).order_by(LtiPlatform.created_at)))

    async def find(self, issuer: str, client_id: str) -> LtiPlatform:
        """The registration of `issuer` (and `client_id`; it may be left out when the issuer has only one)."""
        filters = [LtiPlatform.issuer == issuer]
        if client_id:
            filters.append(LtiPlatform.client_id == client_id)
        found: list[LtiPlatform] = list(await self.repository.session.scalars(select(LtiPlatform).where(*filters)))
        if len(found) != 1:
            detail = f"issuer {issuer!r}" + (f" and client id {client_id!r}" if client_id else "")
            reason = "no registration" if not found else "several registrations (the client id is needed)"
            raise LaunchRefused(f"Unknown platform: {reason} for {detail}.")
        return found[0]


async def frame_ancestors(settings: Settings) -> list[str]:
    """Who may frame the embed views: FRAME_ANCESTORS and every registered platform (issuer and login origins)."""
    async with get_alchemy_config().get_session() as session:
        rows = (await session.execute(select(LtiPlatform.issuer, LtiPlatform.auth_login_url))).all()
    origins = [*settings.frame_ancestors]
    for url in (url for row in rows for url in row):
        if urlsplit(url).scheme in ("http", "https") and origin_of(url) not in origins:
            origins.append(origin_of(url))
    return origins


class ToolKeyService(SQLAlchemyAsyncRepositoryService[LtiKey]):
    """The tool's RSA keys: created on first use, rotated on demand; only public halves ever leave the database."""

    class Repository(SQLAlchemyAsyncRepository[LtiKey]):
        model_type = LtiKey

    repository_type = Repository

    async def current(self, settings: Settings) -> LtiKey:
        key: LtiKey | None = await self.repository.get_one_or_none(LtiKey.is_current.is_(True))
        if key is not None:
            return key
        try:
            return await self.create(new_tool_key(settings), auto_commit=True)
        except INTEGRITY_ERRORS:  # another process created the first key meanwhile
            await self.repository.session.rollback()
            created: LtiKey = await self.repository.get_one(LtiKey.is_current.is_(True))
            return created

    async def rotate(self, settings: Settings) -> LtiKey:
        """A new current key; the previous one stays published for a while, older retired ones are deleted."""
        now = datetime.now(UTC)
        session = self.repository.session
        await session.execute(delete(LtiKey).where(LtiKey.retired_at < now - RETIRED_KEY_PUBLISHED))
        retire = update(LtiKey).where(LtiKey.is_current.is_(True)).values(is_current=False, retired_at=now)
        await session.execute(retire)
        key = await self.create(new_tool_key(settings), auto_commit=False)
        await session.commit()
        return key

    async def public_jwks(self, settings: Settings) -> dict[str, list[dict[str, Any]]]:
        current = await self.current(settings)
        since = datetime.now(UTC) - RETIRED_KEY_PUBLISHED
        retired = await self.repository.session.scalars(
            select(LtiKey).where(LtiKey.retired_at > since).order_by(LtiKey.retired_at.desc())
        )
        return {"keys": [current.public_jwk, *(key.public_jwk for key in retired)]}


def new_tool_key(settings: Settings) -> LtiKey:
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
    return LtiKey(
        kid=key.kid,
        public_jwk=dict(key.as_dict(private=False)),
        private_key=encrypt_json(dict(key.as_dict(private=True)), settings),
    )


class LaunchService:
    """The OIDC login and the launch. Refusals raise LaunchRefused; nothing is written for a refused launch."""

    def __init__(self, session: AsyncSession, settings: Settings, keys: PlatformKeys = platform_keys) -> None:
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
            raise LaunchRefused(f"The login request lacks {', '.join(missing)}.")
        platform = await self.platforms.find(params.iss, params.client_id)
        if params.lti_deployment_id and params.lti_deployment_id not in platform.deployment_ids:
            raise LaunchRefused(f"Deployment {params.lti_deployment_id!r} of this platform is not registered.")
        if origin_of(params.target_link_uri) != origin_of(self.settings.app_url):
            raise LaunchRefused(f"The target link {params.target_link_uri!r} is not on this tool.")
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
            raise LaunchRefused("The launch carries no readable id_token.") from exc
        if not isinstance(claims, dict):
            raise LaunchRefused("The launch carries no readable id_token.")
        platform = await self.platforms.find(str(claims.get("iss", "")), audience_client(claims))
        verified = await self._checked_claims(id_token, header.get("kid"), platform)
        deployment = verified.get(f"{CLAIM}deployment_id")
        if deployment not in platform.deployment_ids:
            raise LaunchRefused(f"Deployment {deployment!r} of this platform is not registered.")
        if (message_type := verified.get(f"{CLAIM}message_type")) != RESOURCE_LINK_LAUNCH:
            raise LaunchRefused(f"Message type {message_type!r} is not supported: this tool takes resource links.")
        if (version := verified.get(f"{CLAIM}version")) != LTI_VERSION:
            raise LaunchRefused(f"LTI version {version!r} is not supported: this tool speaks {LTI_VERSION}.")
        roles = verified.get(f"{CLAIM}roles")
        context = verified.get(f"{CLAIM}context") or {}
        custom = verified.get(f"{CLAIM}custom") or {}
        if not isinstance(roles, list) or not isinstance(context, dict) or not isinstance(custom, dict):
            raise LaunchRefused("The roles, context or custom claim is malformed.")
        return VerifiedLaunch(
            platform=platform,
            subject=str(verified["sub"]),
            nonce=str(verified["nonce"]),
            expires_at=datetime.fromtimestamp(verified["exp"], UTC),
            roles=tuple(str(role) for role in roles),
            context_id=str(context.get("id", "")),
            context_title=str(context.get("title", "")),
            email=str(verified.get("email") or "").strip(),
            given_name=str(verified.get("given_name") or ""),
            family_name=str(verified.get("family_name") or ""),
            custom=custom,
        )

    async def _claims_with_fresh_keys(self, id_token: str, platform: LtiPlatform, failure: Exception) -> dict[str, Any]:
        """A platform may replace a key under the same id: verify once more against freshly fetched keys."""
        try:
            keys = await self.keys.refreshed(platform.jwks_url)
        except KeysUnavailable:
            keys = None
        if keys is None:
            raise LaunchRefused("The id_token's signature is not valid.", 401) from failure
        try:
            claims: dict[str, Any] = jwt.decode(id_token, keys, algorithms=["RS256"]).claims
        except JoseError as exc:
            raise LaunchRefused("The id_token's signature is not valid.", 401) from exc
        return claims

    async def _checked_claims(self, id_token: str, kid: str | None, platform: LtiPlatform) -> dict[str, Any]:
        try:
            keys = await self.keys.key_set(platform.jwks_url, kid)
        except KeysUnavailable as exc:
            logger.warning("LTI platform keys unavailable: %s", exc)
            raise LaunchRefused("The platform's public keys could not be fetched; try again shortly.", 502) from exc
        try:
            claims: dict[str, Any] = jwt.decode(id_token, keys, algorithms=["RS256"]).claims
        except InvalidKeyIdError as exc:
            raise LaunchRefused(
                f"The id_token is signed with a key the platform does not publish: {kid}.", 401
            ) from exc
        except BadSignatureError as exc:
            claims = await self._claims_with_fresh_keys(id_token, platform, exc)
        except JoseError as exc:
            raise LaunchRefused("The id_token's signature is not valid.", 401) from exc
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
            raise LaunchRefused("The launch has expired; open the tool again from your course.", 401) from exc
        except MissingClaimError as exc:
            raise LaunchRefused(f"The id_token lacks a required claim ({exc.description}).") from exc
        except JoseError as exc:
            raise LaunchRefused(f"The id_token is not valid ({exc.description}).", 401) from exc
        return claims

    async def complete(self, launch: VerifiedLaunch, state: str) -> LaunchOutcome:
        """A verified launch from this browser (`state`): the nonce spent, the person found or created, the landing."""
        if not hmac.compare_digest(launch.nonce, nonce_for(state, self.settings.secret_key)):
            raise LaunchRefused("The id_token was not issued for this sign-in (nonce mismatch).", 401)
        try:
            await self._spend_nonce(launch)
            user = await self._person(launch)
            landing = await self._landing(launch, user)
        except LaunchRefused:
            await self.session.rollback()  # the nonce stays unspent, no account is made
            raise
        token = new_token()
        self.session.add(
            LtiLaunchToken(
                token_hash=token_digest(token),
                user_id=user.id,
                target=landing,
                expires_at=datetime.now(UTC) + LAUNCH_TOKEN_LIFETIME,
            )
        )
        await self.session.commit()
        return LaunchOutcome(user=user, landing=landing, launch_token=token)

    async def _spend_nonce(self, launch: VerifiedLaunch) -> None:
        now = datetime.now(UTC)
        await self.session.execute(delete(LtiNonce).where(LtiNonce.expires_at < now))
        expires = launch.expires_at + timedelta(seconds=CLOCK_LEEWAY_SECONDS)
        spent = await self.session.scalar(
            insert(LtiNonce)
            .values(nonce=launch.nonce, expires_at=expires)
            .on_conflict_do_nothing(index_elements=["nonce"])
            .returning(LtiNonce.id)
        )
        if spent is None:
            raise LaunchRefused("This launch was used already (replayed nonce); open the tool again.", 401)

    async def _person(self, launch: VerifiedLaunch) -> User:
        issuer = launch.platform.issuer
        identity = await self._identity(issuer, launch.subject)
        if identity is None:
            try:
                async with self.session.begin_nested():
                    user = await self._account_for(launch)
                    self.session.add(LtiIdentity(issuer=issuer, subject=launch.subject, user_id=user.id))
            except INTEGRITY_ERRORS as exc:  # the same person's first launch in another tab won the race
                identity = await self._identity(issuer, launch.subject)
                if identity is None:
                    raise LaunchRefused("Your account could not be set up; open the tool again.", 409) from exc
            else:
                return user
        if not identity.user.is_active:
            raise LaunchRefused("This account is disabled.", 401)
        return identity.user

    async def _identity(self, issuer: str, subject: str) -> LtiIdentity | None:
        return await self.session.scalar(
            select(LtiIdentity).where(LtiIdentity.issuer == issuer, LtiIdentity.subject == subject)
        )

    async def _account_for(self, launch: VerifiedLaunch) -> User:
        """An existing account with the same email when the platform is trusted to vouch for it, else a new one."""
        email = launch.email if EMAIL_PATTERN.match(launch.email) else ""
        owner = await self.users.get_one_or_none(func.lower(User.email) == email.lower()) if email else None
        if owner is not None and launch.platform.trust_email:
            if not owner.is_active:
                raise LaunchRefused("This account is disabled.", 401)
            return owner
        role = course_role(launch.roles)
        if role is None:
            raise LaunchRefused("The launch names no Instructor, TeachingAssistant or Learner role in the course.")
        username = "lti-" + hashlib.sha256(f"{launch.platform.issuer} {launch.subject}".encode()).hexdigest()[:16]
        # Without an address of its own the account gets a placeholder until the person enters one in Settings.
        return await self.users.create(
            {
                "username": username,
                "email": email if email and owner is None else f"{username}@{PLACEHOLDER_EMAIL_DOMAIN}",
                "user_type": role.value,
                "first_name": launch.given_name[:150],
                "last_name": launch.family_name[:150],
            },
            auto_commit=False,
        )

    async def _landing(self, launch: VerifiedLaunch, user: User) -> str:
        """A professor's own dashboard; a student's view of the course's professor."""
        issuer = launch.platform.issuer
        if user.is_professor:
            if launch.context_id:
                # The course's first instructor stays its professor: a teaching assistant's launch changes nothing.
                await self.session.execute(
                    insert(LtiContext)
                    .values(
                        issuer=issuer,
                        context_id=launch.context_id,
                        title=launch.context_title[:500],
                        professor_id=user.id,
                    )
                    .on_conflict_do_nothing(index_elements=["issuer", "context_id"])
                )
            return "/embed/dashboard"
        professor = await self._course_professor(launch)
        return f"/embed/professors/{professor.id}"

    async def _course_professor(self, launch: VerifiedLaunch) -> User:
        named = str(launch.custom.get("professor") or "").strip()
        if named:
            professor = await self._professor_named(named)
            if professor is None:
                raise LaunchRefused(f"The course's custom parameter professor={named} names no professor here.")
            return professor
        context = await self.session.scalar(
            select(LtiContext).where(
                LtiContext.issuer == launch.platform.issuer, LtiContext.context_id == launch.context_id
            )
        )
        professor = await self.users.get_one_or_none(id=context.professor_id) if context else None
        if professor is None or not professor.is_active:
            raise LaunchRefused(
                "No professor is linked to this course yet: the instructor opens the tool once from the course, "
                "or sets the custom parameter professor=<username>."
            )
        return professor

    async def _professor_named(self, name: str) -> User | None:
        try:
            by_id = UUID(name)
        except ValueError:
            found = await self.users.get_one_or_none(func.lower(User.username) == name.lower())
        else:
            found = await self.users.get_one_or_none(id=by_id)
        return found if found is not None and found.is_professor and found.is_active else None

    async def redeem(self, token: str) -> tuple[User, str]:
        """A launch token, once and while fresh: the person and the view to open for them."""
        now = datetime.now(UTC)
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
            await self.session.rollback()
            raise LaunchRefused("This link has expired or was used already: open the tool again from your course.")
        await self.session.commit()
        return user, str(row.target)


def audience_client(claims: dict[str, Any]) -> str:
    """The client id a token is for: its only audience, or `azp` when it has several (OIDC Core 3.1.3.7)."""
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    azp = claims.get("azp")
    if len(audiences) > 1 and (not isinstance(azp, str) or azp not in audiences):
        raise LaunchRefused("The id_token has several audiences but no authorized party (azp) among them.")
    client_id = azp if len(audiences) > 1 else (audiences[0] if audiences else "")
    if not isinstance(client_id, str) or not client_id or (azp is not None and azp != client_id):
        raise LaunchRefused("The id_token's audience does not name this tool's client id.")
    return client_id
