"""Dependency providers of the accounts domain."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from advanced_alchemy.extensions.litestar.providers import create_service_provider
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.accounts.services import ApiTokenService, SignInThrottle, UserService

provide_users = create_service_provider(UserService)
provide_tokens = create_service_provider(ApiTokenService)


async def provide_throttle(db_session: NamedDependency[AsyncSession]) -> AsyncGenerator[SignInThrottle, None]:
    yield SignInThrottle(db_session, get_settings())
