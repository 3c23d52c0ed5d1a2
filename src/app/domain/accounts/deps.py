"""Dependency providers of the accounts domain."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from advanced_alchemy.extensions.litestar.providers import create_service_provider
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.accounts.services import UserService
from app.domain.accounts.signin import SignInThrottle
from app.domain.accounts.tokens import ApiTokenService

provide_users = create_service_provider(UserService)
provide_tokens = create_service_provider(ApiTokenService)


async def provide_throttle(db_session: NamedDependency[AsyncSession]) -> AsyncGenerator[SignInThrottle, None]:
    yield SignInThrottle(db_session, get_settings())


DEPENDENCIES = {
    "users": Provide(provide_users),
    "tokens": Provide(provide_tokens),
    "throttle": Provide(provide_throttle),
}
