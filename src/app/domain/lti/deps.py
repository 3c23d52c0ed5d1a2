"""Dependency providers of the LTI domain."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.lti.services import LaunchService


async def provide_launches(db_session: NamedDependency[AsyncSession]) -> AsyncGenerator[LaunchService, None]:
    yield LaunchService(db_session, get_settings())
