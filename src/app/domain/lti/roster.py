"""Course rosters from the platform: LTI Names and Role Provisioning Services (NRPS 2.0).

The tool asks the platform's token endpoint for an access token (OAuth 2 client credentials, authenticated by a
`private_key_jwt` client assertion signed with the tool's key), then reads the course's memberships page by page
(`Link: <...>; rel="next"`). Tokens are kept until shortly before they expire, per platform and scope, in this
process. A roster is fetched again after each instructor launch and by the queue every few hours; a refusal keeps
the previous roster and tells the instructor why.

The network is never used while a database transaction waits: `RosterService.target` reads what the fetch needs,
`fetch_roster` talks to the platform, `RosterService.store` writes the outcome (the queue job runs them in turn).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import UserType
from app.domain.consultations.courses import CourseService
from app.domain.consultations.models import CourseRole
from app.domain.lti.keys import ToolKeyService
from app.domain.lti.models import LtiContext, LtiIdentity, LtiPlatform, LtiRosterMember
from app.domain.lti.roles import course_role
from app.lib.clock import utcnow
from app.lib.i18n import N_, gettext
from app.lib.queue import get_queue
from app.lib.unit_of_work import after_commit

logger = logging.getLogger(__name__)

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEMBERSHIPS_MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = timedelta(minutes=5)
TOKEN_EXPIRY_MARGIN_SECONDS = 30  # a token this close to its expiry is not used for another call
ROSTER_MAX_AGE = timedelta(hours=6)
REFRESH_TASK = "refresh_course_roster"
MAX_PAGES = 100
HTTP_TIMEOUT_SECONDS = 15
NO_TOKEN_URL = N_(
    "The platform's registration has no access token URL, so the course roster cannot be read. "
    "Ask an administrator of office hours to register the platform again with its access token URL."
)
NOT_GRANTED = N_(
    "The platform did not let office hours read this course's roster (Names and Role Provisioning Services, "
    "scope contextmembership.readonly). Ask your LMS administrator to allow it in the tool's registration "
    "(Moodle: External tool > IMS LTI Names and Role Provisioning; Canvas: the developer key's scopes)."
)
NOT_REACHED = N_("The platform's roster could not be reached (%(problem)s); tried again later.")
ROSTER_HTTP_ERROR = N_("The platform answered HTTP %(status)s for the course roster; it is tried again later.")
TOKEN_NOT_REACHED = N_("The platform's token endpoint was not reached (%(problem)s); tried again later.")
CREDENTIALS_REFUSED = N_(
    "The platform refused the tool's credentials (%(status)s). Ask your LMS administrator to check the "
    "tool's registration: its client id and its public keyset URL."
)
TOKEN_HTTP_ERROR = N_("The platform's token endpoint answered HTTP %(status)s; the roster is tried again later.")
# A roster problem is kept in English (written by a queue job, read by operators too) and told to the instructor in
# their language: the stored text is matched against these messages and translated with the same details.
ROSTER_PROBLEMS = (
    NO_TOKEN_URL,
    NOT_GRANTED,
    NOT_REACHED,
    ROSTER_HTTP_ERROR,
    TOKEN_NOT_REACHED,
    CREDENTIALS_REFUSED,
    TOKEN_HTTP_ERROR,
)


def _pattern(message: str) -> re.Pattern[str]:
    parts = re.split(r"%\((\w+)\)s", message)
    pattern = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.*)" for i, part in enumerate(parts))
    return re.compile(pattern + r"\Z", re.S)


_PROBLEM_PATTERNS = [(message, _pattern(message)) for message in ROSTER_PROBLEMS]


def roster_problem(stored: str) -> str:
    """A stored roster problem in the reader's language (an unknown text as it is)."""
    for message, pattern in _PROBLEM_PATTERNS:
        if found := pattern.match(stored):
            return gettext(message, **found.groupdict())
    return stored


ROLE_WORDS = {UserType.PROFESSOR: CourseRole.INSTRUCTOR.value, UserType.STUDENT: CourseRole.LEARNER.value}


class RosterUnavailable(Exception):
    """The roster could not be read; the message tells the course's instructor what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RosterTarget:
    """What a fetch needs: the platform's token endpoint and the tool's credentials, and the roster's address."""

    context_id: UUID
    platform_id: UUID
    token_url: str
    memberships_url: str
    assertion: str  # a fresh client assertion, used if no cached token is left


@dataclass(frozen=True)
class RosterEntry:
    subject: str
    name: str
    email: str
    role: str  # instructor, learner or other


@dataclass
class ServiceTokens:
    """Access tokens of each platform and scope, kept in this process until shortly before they expire."""

    cached: dict[tuple[UUID, str], tuple[str, float]] = field(default_factory=dict)

    def get(self, platform_id: UUID, scope: str) -> str | None:
        token, expires = self.cached.get((platform_id, scope), ("", 0.0))
        return token if token and time.monotonic() < expires - TOKEN_EXPIRY_MARGIN_SECONDS else None

    def keep(self, platform_id: UUID, scope: str, token: str, expires_in: float) -> None:
        self.cached[(platform_id, scope)] = (token, time.monotonic() + expires_in)

    def forget(self, platform_id: UUID, scope: str) -> None:
        self.cached.pop((platform_id, scope), None)


service_tokens = ServiceTokens()


async def roster_wanted(session: AsyncSession, context: LtiContext, memberships_url: str) -> None:
    """An instructor's launch offering the course roster: remember its address and fetch it once this commits."""
    if not memberships_url:
        return
    context.memberships_url = memberships_url[:1000]
    await session.flush()
    after_commit(session, queue_roster_refreshes, context.id)


async def queue_roster_refreshes(context_ids: list[UUID]) -> None:
    """One refresh job per course; a refresh already waiting for the same course is not queued twice."""
    queue = await get_queue()
    for context_id in context_ids:
        await queue.enqueue(REFRESH_TASK, key=f"roster:{context_id}", context_id=str(context_id), timeout=120)


def client_assertion(platform: LtiPlatform, now_seconds: int) -> dict[str, Any]:
    """The claims of a private_key_jwt client assertion (1EdTech Security Framework 4.1)."""
    return {
        "iss": platform.client_id,
        "sub": platform.client_id,
        "aud": platform.token_url,
        "iat": now_seconds,
        "exp": now_seconds + int(ASSERTION_LIFETIME.total_seconds()),
        "jti": secrets.token_urlsafe(24),
    }


class RosterService:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    async def target(self, context_id: UUID) -> RosterTarget | None:
        """What fetching this course's roster needs; None when its platform offers no roster (or is gone)."""
        context = await self.session.get(LtiContext, context_id)
        if context is None or context.platform_id is None or not context.memberships_url:
            return None
        platform = await self.session.get(LtiPlatform, context.platform_id)
        if platform is None:
            return None
        if not platform.token_url:
            await self.store(context_id, RosterUnavailable(NO_TOKEN_URL))
            return None
        assertion = await ToolKeyService(session=self.session).sign(
            client_assertion(platform, int(utcnow().timestamp())), self.settings
        )
        return RosterTarget(context.id, platform.id, platform.token_url, context.memberships_url, assertion)

    async def stale(self) -> list[UUID]:
        """Courses whose roster is due again (never fetched, or older than ROSTER_MAX_AGE)."""
        query = select(LtiContext.id).where(
            LtiContext.memberships_url != "",
            or_(LtiContext.roster_fetched_at.is_(None), LtiContext.roster_fetched_at < utcnow() - ROSTER_MAX_AGE),
        )
        return list((await self.session.scalars(query)).all())

    async def store(self, context_id: UUID, outcome: list[RosterEntry] | RosterUnavailable) -> None:
        """The fetched roster replaces the previous one (and the course's members with it); a refusal keeps it."""
        context = await self.session.get(LtiContext, context_id)
        if context is None:
            return
        context.roster_fetched_at = utcnow()
        if isinstance(outcome, RosterUnavailable):
            context.roster_error = outcome.message
            return
        context.roster_error = ""
        await self.session.execute(delete(LtiRosterMember).where(LtiRosterMember.context_id == context_id))
        if outcome:
            rows = [
                {"context_id": context_id, "subject": e.subject, "name": e.name, "email": e.email, "role": e.role}
                for e in outcome
            ]
            await self.session.execute(insert(LtiRosterMember).values(rows).on_conflict_do_nothing())
        roles = {entry.subject: CourseRole(entry.role) for entry in outcome if entry.role != "other"}
        linked = await self.session.execute(
            select(LtiIdentity.subject, LtiIdentity.user_id).where(
                LtiIdentity.issuer == context.issuer, LtiIdentity.subject.in_(list(roles))
            )
        )
        members = {user_id: roles[subject] for subject, user_id in linked.all()}
        await CourseService(session=self.session).replace_members(context.course_id, members)


async def fetch_roster(target: RosterTarget, tokens: ServiceTokens = service_tokens) -> list[RosterEntry]:
    """Every active member of the course, through as many pages as the platform serves (at most MAX_PAGES)."""
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as client:
        entries: list[RosterEntry] = []
        url: str | None = target.memberships_url
        pages = 0
        while url is not None and pages < MAX_PAGES:
            page = await _memberships_page(client, target, url, tokens)
            entries.extend(roster_entries(page.json()))
            url = next_page(page, target.memberships_url)
            pages += 1
    return entries


async def _memberships_page(
    client: httpx.AsyncClient, target: RosterTarget, url: str, tokens: ServiceTokens
) -> httpx.Response:
    for attempt in range(2):
        token = tokens.get(target.platform_id, NRPS_SCOPE) or await _access_token(client, target, tokens)
        try:
            response = await client.get(
                url, headers={"Authorization": f"Bearer {token}", "Accept": MEMBERSHIPS_MEDIA_TYPE}
            )
        except httpx.HTTPError as exc:
            raise RosterUnavailable(NOT_REACHED % {"problem": exc}) from exc
        if response.status_code == 401 and attempt == 0:
            tokens.forget(target.platform_id, NRPS_SCOPE)  # revoked or expired early: one more try with a new one
            continue
        if response.status_code in (401, 403):
            raise RosterUnavailable(NOT_GRANTED)
        if response.status_code != 200:
            raise RosterUnavailable(ROSTER_HTTP_ERROR % {"status": response.status_code})
        return response
    raise AssertionError("unreachable")  # pragma: no cover


async def _access_token(client: httpx.AsyncClient, target: RosterTarget, tokens: ServiceTokens) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": target.assertion,
        "scope": NRPS_SCOPE,
    }
    try:
        response = await client.post(target.token_url, data=form, headers={"Accept": "application/json"})
        body: Any = response.json() if response.content else {}
    except (httpx.HTTPError, ValueError) as exc:
        raise RosterUnavailable(TOKEN_NOT_REACHED % {"problem": exc}) from exc
    if response.status_code in (400, 401):
        error = body.get("error", "") if isinstance(body, dict) else ""
        status = f"HTTP {response.status_code}" + (f": {error}" if error else "")
        raise RosterUnavailable(CREDENTIALS_REFUSED % {"status": status})
    token = body.get("access_token") if isinstance(body, dict) else None
    if response.status_code != 200 or not isinstance(token, str) or not token:
        raise RosterUnavailable(TOKEN_HTTP_ERROR % {"status": response.status_code})
    granted = str(body.get("scope", NRPS_SCOPE)).split()
    if NRPS_SCOPE not in granted:
        raise RosterUnavailable(NOT_GRANTED)
    expires_in = body.get("expires_in")
    tokens.keep(target.platform_id, NRPS_SCOPE, token, expires_in if isinstance(expires_in, int | float) else 3600)
    return token


def roster_entries(page: Any) -> list[RosterEntry]:
    """The active members listed on one page of a membership container."""
    members = page.get("members") if isinstance(page, dict) else None
    entries: list[RosterEntry] = []
    if not isinstance(members, list):
        return entries
    for member in members:
        if not isinstance(member, dict) or not member.get("user_id") or member.get("status", "Active") != "Active":
            continue
        roles = member.get("roles")
        role = course_role(str(each) for each in roles) if isinstance(roles, list) else None
        given, family = str(member.get("given_name") or ""), str(member.get("family_name") or "")
        name = str(member.get("name") or f"{given} {family}").strip()
        entries.append(
            RosterEntry(
                subject=str(member["user_id"])[:255],
                name=name[:300],
                email=str(member.get("email") or "")[:320],
                role=ROLE_WORDS.get(role, "other") if role else "other",
            )
        )
    return entries


def next_page(response: httpx.Response, first_url: str) -> str | None:
    """The next page named by the Link header, on the same origin as the roster (the token goes nowhere else)."""
    url = response.links.get("next", {}).get("url")
    if not url:
        return None
    same_origin = urlsplit(url)[:2] == urlsplit(first_url)[:2]
    if not same_origin:
        logger.warning("NRPS next page on another origin ignored: %s", url)
        return None
    return str(url)
