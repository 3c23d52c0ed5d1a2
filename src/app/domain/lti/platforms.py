"""LMS platforms registered with the tool, and the origins allowed to frame the embedded views."""

from __future__ import annotations

from urllib.parse import urlsplit
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import select

from app.config import Settings
from app.domain.consultations.courses import CourseService
from app.domain.lti.models import LtiContext, LtiPlatform, RegisteredVia
from app.domain.lti.schemas import PlatformRegistration
from app.lib.clock import utcnow
from app.lib.errors import DomainError, FieldErrors, NotFound
from app.lib.i18n import gettext as _
from app.lib.unit_of_work import unit_of_work

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


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
    return _("Give an https:// URL (http:// only for localhost).")


def require_deployment(platform: LtiPlatform, deployment_id: object) -> None:
    """A registered deployment of the platform; a platform registered without any accepts each of its client's."""
    if not isinstance(deployment_id, str) or not deployment_id:
        raise LaunchRefused(_("The launch names no deployment."))
    if platform.deployment_ids and deployment_id not in platform.deployment_ids:
        raise LaunchRefused(
            _("Deployment %(deployment_id)r of this platform is not registered.", deployment_id=deployment_id)
        )


class PlatformService(SQLAlchemyAsyncRepositoryService[LtiPlatform]):
    class Repository(SQLAlchemyAsyncRepository[LtiPlatform]):
        model_type = LtiPlatform

    repository_type = Repository

    async def register(
        self, data: PlatformRegistration, *, via: RegisteredVia = RegisteredVia.MANUAL, approved: bool = True
    ) -> LtiPlatform:
        """A new platform; one registered by hand is approved by whoever registered it, a dynamic one may wait.

        A dynamic registration may name no deployment (the platform makes them later): then each deployment of its
        client id is accepted."""
        errors: dict[str, str] = {}
        for name in ("issuer", "auth_login_url", "jwks_url", "token_url"):
            value = getattr(data, name)
            if (value or name != "token_url") and (problem := url_problem(value)):
                errors[name] = problem
        if not data.client_id.strip():
            errors["client_id"] = _("Give the client id the platform assigned to this tool.")
        deployments = tuple(d.strip() for d in data.deployment_ids if d.strip())
        if not deployments and via == RegisteredVia.MANUAL:
            errors["deployment_ids"] = _("Give at least one deployment id.")
        if not errors and await self.repository.exists(
            LtiPlatform.issuer == data.issuer, LtiPlatform.client_id == data.client_id.strip()
        ):
            errors["client_id"] = _("This issuer and client id are registered already; remove them first.")
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
                "registered_via": via.value,
                "approved_at": utcnow() if approved else None,
            },
        )

    async def approve(self, platform_id: UUID) -> LtiPlatform:
        """An administrator accepts the platform's launches from now on (approving twice changes nothing)."""
        platform = await self.get_one_or_none(id=platform_id)
        if platform is None:
            raise NotFound(_("No such platform."))
        platform.approved_at = platform.approved_at or utcnow()
        return platform

    async def remove(self, platform_id: UUID) -> None:
        """The platform goes, and its launches stop; its course rosters and memberships go with it (the courses and
        the slots reserved for them stay, bookable by nobody until their professor changes them)."""
        platform = await self.get_one_or_none(id=platform_id)
        if platform is None:
            raise NotFound(_("No such platform."))
        session = self.repository.session
        courses = list(await session.scalars(select(LtiContext.course_id).where(LtiContext.platform_id == platform_id)))
        await CourseService(session=session).forget_members(courses)
        await self.delete(platform_id)

    async def registered(self) -> list[LtiPlatform]:
        query = select(LtiPlatform).order_by(LtiPlatform.approved_at.is_not(None), LtiPlatform.created_at)
        return list(await self.repository.session.scalars(query))

    async def find(self, issuer: str, client_id: str) -> LtiPlatform:
        """The registration of `issuer` (and `client_id`; it may be left out when the issuer has only one)."""
        filters = [LtiPlatform.issuer == issuer]
        if client_id:
            filters.append(LtiPlatform.client_id == client_id)
        found: list[LtiPlatform] = list(await self.repository.session.scalars(select(LtiPlatform).where(*filters)))
        if len(found) != 1:
            detail = f"issuer {issuer!r}" + (f" and client id {client_id!r}" if client_id else "")
            reason = "no registration" if not found else "several registrations (the client id is needed)"
            raise LaunchRefused(_("Unknown platform: %(reason)s for %(detail)s.", reason=reason, detail=detail))
        return found[0]


async def frame_ancestors(settings: Settings) -> list[str]:
    """Who may frame the embed views: FRAME_ANCESTORS and every registered platform (issuer and login origins)."""
    async with unit_of_work() as unit:
        rows = (await unit.session.execute(select(LtiPlatform.issuer, LtiPlatform.auth_login_url))).all()
    origins = [*settings.frame_ancestors]
    for url in (url for row in rows for url in row):
        if urlsplit(url).scheme in ("http", "https") and origin_of(url) not in origins:
            origins.append(origin_of(url))
    return origins
