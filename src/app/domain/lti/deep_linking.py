"""LTI Deep Linking 2.0: an instructor chooses which office hours to place in the course, and the tool answers the
platform with a signed LtiDeepLinkingResponse holding one LTI resource link.

The link carries what was chosen in its custom parameters (`professor=<id>`, or `professors=<id>,<id>` for a
course-wide view); the launch of that link reads them (launch.py) and opens exactly that view.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import User
from app.domain.accounts.services import UserService
from app.domain.lti.keys import ToolKeyService
from app.domain.lti.models import LtiDeepLinkRequest
from app.domain.lti.platforms import LaunchRefused
from app.domain.lti.schemas import VerifiedLaunch
from app.lib.clock import utcnow
from app.lib.errors import FieldErrors, NotFound
from app.lib.i18n import gettext as _
from app.lib.text import control_character_problem

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
RESOURCE_LINK = "ltiResourceLink"
DEEP_LINK_LIFETIME = timedelta(hours=1)
RESPONSE_LIFETIME = timedelta(minutes=5)
MAX_PROFESSORS_PLACED = 12
MAX_TITLE = 200
CHOOSABLE_PROFESSORS = 500


class PlacementForm(msgspec.Struct):
    """The chooser: the professors whose office hours the link shows (one: their week; several: a course-wide
    view), and the link's title in the course."""

    professor_ids: list[UUID] = msgspec.field(default_factory=list)
    title: str = ""


@dataclass(frozen=True)
class DeepLinkResponse:
    """The signed answer and where the browser posts it (as the form field `JWT`)."""

    return_url: str
    jwt: str


async def open_deep_link(session: AsyncSession, launch: VerifiedLaunch, user: User) -> LtiDeepLinkRequest:
    """Keep a deep-linking launch until the instructor has chosen (at most DEEP_LINK_LIFETIME)."""
    accepted = launch.deep_linking.get("accept_types") or []
    if RESOURCE_LINK not in accepted:
        raise LaunchRefused(_("The platform accepts no LTI resource links here, which is what this tool places."))
    now = utcnow()
    await session.execute(delete(LtiDeepLinkRequest).where(LtiDeepLinkRequest.expires_at < now))
    data = launch.deep_linking.get("data")
    request = LtiDeepLinkRequest(
        platform_id=launch.platform.id,
        user_id=user.id,
        deployment_id=launch.deployment_id,
        return_url=str(launch.deep_linking["deep_link_return_url"])[:1000],
        data=data if isinstance(data, str) else "",
        expires_at=now + DEEP_LINK_LIFETIME,
    )
    session.add(request)
    await session.flush()
    return request


class DeepLinkService:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.users = UserService(session=session)

    async def request_of(self, user: User, request_id: UUID) -> LtiDeepLinkRequest:
        """The person's own pending deep-linking request; anyone else's, or an expired one, is not found."""
        request = await self.session.scalar(
            select(LtiDeepLinkRequest).where(
                LtiDeepLinkRequest.id == request_id,
                LtiDeepLinkRequest.user_id == user.id,
                LtiDeepLinkRequest.expires_at > utcnow(),
            )
        )
        if request is None:
            raise NotFound(_("This choice has expired: add the tool to your course again."))
        return request

    async def choosable(self) -> list[User]:
        """The professors whose office hours may be placed, by name."""
        professors, _total = await self.users.search_professors(limit=CHOOSABLE_PROFESSORS)
        return professors

    async def respond(self, user: User, request_id: UUID, choice: PlacementForm) -> DeepLinkResponse:
        """The signed LtiDeepLinkingResponse for the choice; the request is used up."""
        request = await self.request_of(user, request_id)
        professors = await self._chosen(choice)
        title = choice.title.strip() or default_title(professors)
        custom = (
            {"professor": str(professors[0].id)}
            if len(professors) == 1
            else {"professors": ",".join(str(professor.id) for professor in professors)}
        )
        item = {
            "type": RESOURCE_LINK,
            "title": title,
            "url": f"{self.settings.app_url}/lti/launch",
            "custom": custom,
        }
        now = utcnow()
        platform = request.platform
        claims: dict[str, Any] = {
            "iss": platform.client_id,
            "aud": platform.issuer,
            "iat": int(now.timestamp()),
            "exp": int((now + RESPONSE_LIFETIME).timestamp()),
            "nonce": secrets.token_urlsafe(24),
            f"{CLAIM}deployment_id": request.deployment_id,
            f"{CLAIM}message_type": "LtiDeepLinkingResponse",
            f"{CLAIM}version": "1.3.0",
            f"{DL_CLAIM}content_items": [item],
        }
        if request.data:
            claims[f"{DL_CLAIM}data"] = request.data
        token = await ToolKeyService(session=self.session).sign(claims, self.settings)
        return_url = request.return_url
        await self.session.delete(request)
        return DeepLinkResponse(return_url=return_url, jwt=token)

    async def _chosen(self, choice: PlacementForm) -> list[User]:
        errors: dict[str, str] = {}
        wanted = list(dict.fromkeys(choice.professor_ids))
        if not wanted:
            errors["professor_ids"] = _("Choose at least one professor.")
        elif len(wanted) > MAX_PROFESSORS_PLACED:
            errors["professor_ids"] = _(
                "Choose at most %(max_professors_placed)s professors.", max_professors_placed=MAX_PROFESSORS_PLACED
            )
        if len(choice.title) > MAX_TITLE:
            errors["title"] = _("Use at most %(max_title)s characters.", max_title=MAX_TITLE)
        elif problem := control_character_problem(choice.title, multiline=False):
            errors["title"] = problem
        found = {
            professor.id: professor
            for professor in (
                await self.session.scalars(select(User).where(User.id.in_(wanted[:MAX_PROFESSORS_PLACED])))
            ).unique()
            if professor.is_professor and professor.is_active
        }
        if wanted and len(found) < len(wanted):
            errors.setdefault("professor_ids", _("Choose among the professors listed."))
        if errors:
            raise FieldErrors(errors)
        return [found[professor_id] for professor_id in wanted]


def default_title(professors: list[User]) -> str:
    if len(professors) == 1:
        return _("Office hours: %(name)s", name=professors[0].full_name)[:MAX_TITLE]
    return _("Office hours")
