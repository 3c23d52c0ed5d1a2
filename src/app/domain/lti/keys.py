"""The tool's RSA signing keys: created on first use, rotated on demand; only public halves leave the database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import delete, select, update

from app.config import Settings
from app.domain.lti.models import LtiKey
from app.lib.clock import utcnow
from app.lib.crypto import decrypt_json, encrypt_json
from app.lib.errors import INTEGRITY_ERRORS
from app.lib.unit_of_work import savepoint

# After a rotation the previous key stays published this long, for platforms that cached our JWKS.
RETIRED_KEY_PUBLISHED = timedelta(days=7)


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
            async with savepoint(self.repository.session):
                return await self.create(new_tool_key(settings))
        except INTEGRITY_ERRORS:  # another process created the first key meanwhile
            created: LtiKey = await self.repository.get_one(LtiKey.is_current.is_(True))
            return created

    async def rotate(self, settings: Settings) -> LtiKey:
        """A new current key; the previous one stays published for a while, older retired ones are deleted."""
        now = utcnow()
        session = self.repository.session
        await session.execute(delete(LtiKey).where(LtiKey.retired_at < now - RETIRED_KEY_PUBLISHED))
        retire = update(LtiKey).where(LtiKey.is_current.is_(True)).values(is_current=False, retired_at=now)
        await session.execute(retire)
        return await self.create(new_tool_key(settings))

    async def sign(self, claims: dict[str, Any], settings: Settings) -> str:
        """An RS256 JWT signed with the current key (named by its kid): the private half is used here, never sent."""
        key = await self.current(settings)
        private = decrypt_json(key.private_key, settings)
        if private is None:
            raise RuntimeError("The tool's signing key cannot be decrypted: TOKEN_ENCRYPTION_KEYS lost its key.")
        return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, RSAKey.import_key(private))

    async def public_jwks(self, settings: Settings) -> dict[str, list[dict[str, Any]]]:
        current = await self.current(settings)
        since = utcnow() - RETIRED_KEY_PUBLISHED
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
