"""The administrators' area (/admin): find accounts, change roles, deactivate and reactivate, read the audit log;
links to failed notifications (/admin/notifications) and LMS platforms (/admin/lti)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.accounts.models import User
from app.domain.admin.users import ROLES, AccountAdministration, Actor, role_of
from app.domain.audit.models import AuditEntry
from app.domain.audit.services import AuditAction, AuditService
from app.domain.consultations.slots import upcoming_slot_count
from app.domain.privacy.erasure import Erasure
from app.lib.errors import ConflictError
from app.lib.forms import read_form
from app.lib.guards import requires_admin
from app.lib.http import client_address
from app.lib.i18n import N_
from app.lib.i18n import gettext as _
from app.lib.rendering import flash, form_errors, fragments, is_htmx, redirect, render, render_html, toast_html

AUDIT_PAGE = 50
ROLE_LABELS = {"student": N_("Student"), "professor": N_("Professor"), "admin": N_("Administrator")}
ACTION_LABELS = {
    AuditAction.ROLE_CHANGED: N_("Role changed"),
    AuditAction.DEACTIVATED: N_("Account deactivated"),
    AuditAction.REACTIVATED: N_("Account reactivated"),
    AuditAction.ERASED: N_("Account erased"),
    AuditAction.EXPORTED: N_("Data exported"),
    AuditAction.PASSWORD_CHANGED: N_("Password changed"),
    AuditAction.SIGNED_OUT_EVERYWHERE: N_("Signed out everywhere"),
    AuditAction.PLATFORM_APPROVED: N_("LMS platform approved"),
    AuditAction.PLATFORM_REMOVED: N_("LMS platform removed"),
    AuditAction.RETENTION_RUN: N_("Retention run"),
}


class RoleForm(msgspec.Struct):
    role: str = ""


class EraseAccountForm(msgspec.Struct):
    confirm: str = ""


def actor(request: Request[Any, Any, Any]) -> Actor:
    return Actor(id=request.user.id, ip=client_address(request))


async def audit_context(session: AsyncSession, rows: list[AuditEntry]) -> dict[str, Any]:
    ids = {str(row.actor_id) for row in rows if row.actor_id} | {row.target_id for row in rows if row.target_id}
    return {
        "entries": rows,
        "people": await AccountAdministration(session).names(ids),
        "action_labels": ACTION_LABELS,
    }


class AdminPages(Controller):
    path = "/admin"
    guards = [requires_admin]
    include_in_schema = False

    @get("/")
    async def home(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        q: Annotated[str, QueryParameter(max_length=200)] = "",
    ) -> Response[Any]:
        """The admin home; an htmx search gets only the result list."""
        accounts = await AccountAdministration(db_session).search(q)
        recent, _total = await AuditService(db_session).newest(limit=5)
        context = {"q": q, "accounts": accounts, "role_of": role_of, "role_labels": ROLE_LABELS}
        context |= await audit_context(db_session, recent)
        return render(request, "pages/admin.html", context, block="results")

    @get("/users/{user_id:uuid}")
    async def account(
        self, request: Request[Any, Any, Any], user_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        return render(request, "pages/admin_user.html", await self._account_context(db_session, user_id))

    async def _account_context(self, session: AsyncSession, user_id: UUID) -> dict[str, Any]:
        admin = AccountAdministration(session)
        person = await admin.get(user_id)
        history, _total = await AuditService(session).newest(limit=AUDIT_PAGE, subject=person.id)
        return {
            "person": person,
            "role": role_of(person),
            "roles": ROLES,
            "role_labels": ROLE_LABELS,
            "upcoming_slots": await upcoming_slot_count(session, person.id) if person.is_professor else 0,
            **await audit_context(session, history),
        }

    async def _changed(
        self, request: Request[Any, Any, Any], session: AsyncSession, person: User, message: str
    ) -> Response[Any]:
        """htmx: the account card again, and a toast; otherwise back to the account's page."""
        if not is_htmx(request):
            flash(request, message, "success")
            return redirect(request, f"/admin/users/{person.id}")
        context = await self._account_context(session, person.id)
        card = render_html(request, "pages/admin_user.html", context, block="account_card")
        return fragments(card, toast_html(request, message, "success"))

    @post("/users/{user_id:uuid}/role", status_code=200)
    async def change_role(
        self, request: Request[Any, Any, Any], user_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        form = await read_form(request, RoleForm)
        person = await AccountAdministration(db_session).change_role(actor(request), user_id, form.role)
        label = _(ROLE_LABELS[role_of(person)])
        return await self._changed(
            request, db_session, person, _("%(name)s is now: %(role)s.", name=person.full_name, role=label)
        )

    @post("/users/{user_id:uuid}/deactivate", status_code=200)
    async def deactivate(
        self, request: Request[Any, Any, Any], user_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        person = await AccountAdministration(db_session).deactivate(actor(request), user_id)
        message = _("%(name)s is deactivated: signed out everywhere, API tokens revoked.", name=person.full_name)
        return await self._changed(request, db_session, person, message)

    @post("/users/{user_id:uuid}/reactivate", status_code=200)
    async def reactivate(
        self, request: Request[Any, Any, Any], user_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        person = await AccountAdministration(db_session).reactivate(actor(request), user_id)
        return await self._changed(request, db_session, person, _("%(name)s can sign in again.", name=person.full_name))

    @post("/users/{user_id:uuid}/erase", status_code=200)
    async def erase(
        self, request: Request[Any, Any, Any], user_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        """Erase someone's account (irreversible): confirmed by typing its username."""
        person = await AccountAdministration(db_session).get(user_id)
        form = await read_form(request, EraseAccountForm)
        if person.id == request.user.id:
            raise ConflictError(_("Delete your own account under Settings → Your data."))
        if form.confirm.strip() != person.username:
            error = {"confirm": _("Type the username %(username)s to confirm.", username=person.username)}
            return form_errors(request, ("confirm",), error, prefix="erase")
        report = await Erasure(db_session, get_settings()).erase(
            person.id, actor=request.user.id, ip=client_address(request)
        )
        flash(
            request,
            _(
                "The account is erased: %(cancelled)s upcoming booking(s) cancelled, %(kept)s past booking(s) kept "
                "without a name.",
                cancelled=report.bookings_cancelled,
                kept=report.bookings_pseudonymised,
            ),
            "success",
        )
        return redirect(request, "/admin")

    @get("/audit")
    async def audit_log(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        action: Annotated[str, QueryParameter(max_length=64)] = "",
        page: Annotated[int, QueryParameter(ge=1, le=100_000)] = 1,
        subject: FromQuery[UUID | None] = None,
    ) -> Response[Any]:
        rows, total = await AuditService(db_session).newest(
            limit=AUDIT_PAGE, offset=(page - 1) * AUDIT_PAGE, action=action, subject=subject
        )
        context = {
            "action": action,
            "page": page,
            "subject": subject,
            "total": total,
            "pages": max(1, -(-total // AUDIT_PAGE)),
            **await audit_context(db_session, rows),
        }
        return render(request, "pages/admin_audit.html", context, block="entries")
