"""Recording and reading the audit log."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.audit.models import AuditEntry


class AuditAction(enum.StrEnum):
    ROLE_CHANGED = "user.role_changed"
    DEACTIVATED = "user.deactivated"
    REACTIVATED = "user.reactivated"
    ERASED = "user.erased"
    EXPORTED = "user.data_exported"
    PASSWORD_CHANGED = "user.password_changed"
    SIGNED_OUT_EVERYWHERE = "user.signed_out_everywhere"
    PLATFORM_APPROVED = "lti.platform_approved"
    PLATFORM_REMOVED = "lti.platform_removed"
    RETENTION_RUN = "retention.run"


# What details may hold: ids, roles, counts, flags; never names, addresses or free text about a person.
_ALLOWED_DETAIL_TYPES = (str, int, bool, float, type(None))


class AuditService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        actor: UUID | None,
        action: AuditAction | str,
        target: UUID | str | None = None,
        details: Mapping[str, Any] | None = None,
        ip: str = "",
        *,
        target_type: str = "user",
    ) -> AuditEntry:
        """Append one entry to the current unit of work (it is kept only if the action itself commits)."""
        clean = {key: value for key, value in (details or {}).items() if isinstance(value, _ALLOWED_DETAIL_TYPES)}
        entry = AuditEntry(
            actor_id=actor,
            action=str(action),
            target_type=target_type,
            target_id=str(target or ""),
            details=clean,
            ip=ip[:64],
        )
        self.session.add(entry)
        await self.session.flush()
        return entry

    async def newest(
        self, *, limit: int = 50, offset: int = 0, action: str = "", subject: UUID | None = None
    ) -> tuple[list[AuditEntry], int]:
        """Entries newest first, optionally of one action or about/by one account; with the total."""
        filters = []
        if action:
            filters.append(AuditEntry.action == action)
        if subject is not None:
            filters.append((AuditEntry.actor_id == subject) | (AuditEntry.target_id == str(subject)))
        query = select(AuditEntry).where(*filters).order_by(AuditEntry.created_at.desc(), AuditEntry.id)
        total = await self.session.scalar(select(func.count()).select_from(AuditEntry).where(*filters))
        rows = (await self.session.scalars(query.limit(limit).offset(offset))).all()
        return list(rows), int(total or 0)
