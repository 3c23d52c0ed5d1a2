"""Administrators manage accounts: find them, change their role, deactivate and reactivate them. Every change is
written to the audit log in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import User, UserType
from app.domain.accounts.services import UserService
from app.domain.audit.services import AuditAction, AuditService
from app.domain.consultations.slots import upcoming_slot_count
from app.lib.errors import ConflictError, FieldErrors, NotFound
from app.lib.i18n import gettext as _

ROLES = ("student", "professor", "admin")
SEARCH_LIMIT = 50


@dataclass(frozen=True)
class Actor:
    """Who acts and from where (a client address, or "cli")."""

    id: UUID | None
    ip: str = ""


def role_of(user: User) -> str:
    return "admin" if user.is_admin else user.user_type


class AccountAdministration:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.users = UserService(session=session)
        self.audit = AuditService(session)

    async def search(self, query: str = "", limit: int = SEARCH_LIMIT) -> list[User]:
        """Accounts whose username, e-mail or name contains every word of `query` (newest first when empty)."""
        filters = []
        for word in query.split()[:5]:
            pattern = f"%{word.replace('%', '').replace('_', '')}%"
            filters.append(
                User.username.ilike(pattern)
                | User.email.ilike(pattern)
                | User.first_name.ilike(pattern)
                | User.last_name.ilike(pattern)
            )
        statement = select(User).where(*filters).order_by(User.created_at.desc(), User.id).limit(limit)
        return list((await self.session.scalars(statement)).unique().all())

    async def names(self, ids: set[str]) -> dict[str, User]:
        """The accounts behind audit entries' ids (an erased one shows only as its pseudonymous id)."""
        uuids = []
        for value in ids:
            try:
                uuids.append(UUID(value))
            except ValueError:
                continue
        if not uuids:
            return {}
        rows = (await self.session.scalars(select(User).where(User.id.in_(uuids)))).unique().all()
        return {str(row.id): row for row in rows}

    async def get(self, user_id: UUID) -> User:
        user = await self.session.get(User, user_id)
        if user is None:
            raise NotFound(_("No such account."))
        return user

    async def change_role(self, actor: Actor, user_id: UUID, role: str) -> User:
        """student, professor, or admin (an administrator keeps the kind of account they had)."""
        user = await self.get(user_id)
        if role not in ROLES:
            raise FieldErrors.single("role", _("Choose student, professor or administrator."))
        if user.is_erased:
            raise ConflictError(_("This account was erased."))
        before = role_of(user)
        if before == role:
            return user
        if user.id == actor.id and user.is_admin and role != "admin":
            raise ConflictError(_("You cannot take away your own administrator rights; ask another administrator."))
        if role == "student" and user.is_professor and (slots := await upcoming_slot_count(self.session, user.id)):
            raise ConflictError(
                _(
                    "%(name)s still has %(count)s upcoming slot(s): they must cancel them or hand them over "
                    "before the account can become a student account.",
                    name=user.full_name,
                    count=slots,
                )
            )
        if role == "admin":
            user.is_admin = True
        else:
            user.is_admin = False
            user.user_type = UserType(role).value
        await self.audit.record(
            actor.id, AuditAction.ROLE_CHANGED, user.id, {"from": before, "to": role_of(user)}, actor.ip
        )
        return user

    async def deactivate(self, actor: Actor, user_id: UUID) -> User:
        """The person can no longer sign in: their web sessions end and their API tokens are revoked."""
        user = await self.get(user_id)
        if user.id == actor.id:
            raise ConflictError(_("You cannot deactivate your own account."))
        if not user.is_active:
            return user
        user.is_active = False
        await self.users.sign_out_everywhere(user.id)
        await self.audit.record(actor.id, AuditAction.DEACTIVATED, user.id, {}, actor.ip)
        return user

    async def reactivate(self, actor: Actor, user_id: UUID) -> User:
        user = await self.get(user_id)
        if user.is_erased:
            raise ConflictError(_("This account was erased; it cannot be used again."))
        if user.is_active:
            return user
        user.is_active = True
        await self.audit.record(actor.id, AuditAction.REACTIVATED, user.id, {}, actor.ip)
        return user
