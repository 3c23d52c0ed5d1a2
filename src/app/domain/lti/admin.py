"""Administrators' page of LMS platforms (/admin/lti): approve a dynamically registered platform, or remove one."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.audit.services import AuditAction, AuditService
from app.domain.lti.platforms import PlatformService
from app.lib.guards import requires_admin
from app.lib.http import client_address
from app.lib.rendering import redirect, render


class LtiAdminPages(Controller):
    path = "/admin/lti"
    guards = [requires_admin]
    include_in_schema = False

    @get("/")
    async def index(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Response[Any]:
        platforms = await PlatformService(session=db_session).registered()
        context = {"platforms": platforms, "app_url": get_settings().app_url}
        return render(request, "pages/admin_lti.html", context)

    @post("/{platform_id:uuid}/approve", status_code=303)
    async def approve(
        self, request: Request[Any, Any, Any], platform_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        platform = await PlatformService(session=db_session).approve(platform_id)
        details = {"name": platform.name, "issuer": platform.issuer}
        await AuditService(db_session).record(
            request.user.id,
            AuditAction.PLATFORM_APPROVED,
            platform_id,
            details,
            client_address(request),
            target_type="lti",
        )
        return redirect(request, "/admin/lti")

    @post("/{platform_id:uuid}/remove", status_code=303)
    async def remove(
        self, request: Request[Any, Any, Any], platform_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        platforms = PlatformService(session=db_session)
        platform = await platforms.get_one_or_none(id=platform_id)
        details = {"name": platform.name, "issuer": platform.issuer} if platform else {}
        await platforms.remove(platform_id)
        await AuditService(db_session).record(
            request.user.id,
            AuditAction.PLATFORM_REMOVED,
            platform_id,
            details,
            client_address(request),
            target_type="lti",
        )
        return redirect(request, "/admin/lti")
