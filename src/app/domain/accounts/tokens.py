"""API bearer tokens: only a SHA-256 digest is stored; the plain value is shown once."""

from __future__ import annotations

from datetime import timedelta

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import delete

from app.domain.accounts.models import ApiToken, User
from app.lib.clock import utcnow
from app.lib.security import new_token, token_digest

API_TOKEN_LIFETIME = timedelta(days=30)


class ApiTokenService(SQLAlchemyAsyncRepositoryService[ApiToken]):
    class Repository(SQLAlchemyAsyncRepository[ApiToken]):
        model_type = ApiToken

    repository_type = Repository

    async def issue(self, user: User) -> tuple[str, ApiToken]:
        """A new bearer token; only its digest is stored, the plain value is returned once."""
        token = new_token()
        row = await self.create(
            {"user_id": user.id, "token_hash": token_digest(token), "expires_at": utcnow() + API_TOKEN_LIFETIME}
        )
        return token, row

    async def resolve(self, token: str) -> User | None:
        row = await self.repository.get_one_or_none(ApiToken.token_hash == token_digest(token))
        if row is None or row.expires_at <= utcnow() or not row.user.is_active:
            return None
        user: User = row.user
        return user

    async def revoke(self, token: str) -> None:
        await self.repository.session.execute(delete(ApiToken).where(ApiToken.token_hash == token_digest(token)))
