"""Dependency providers of the LTI domain, and how its refusals are answered (an error page in the frame)."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

from litestar import Request, Response
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.lti.launch import LaunchService
from app.domain.lti.platforms import LaunchRefused
from app.lib.exceptions import domain_error

logger = logging.getLogger(__name__)


async def provide_launches(db_session: NamedDependency[AsyncSession]) -> AsyncGenerator[LaunchService, None]:
    yield LaunchService(db_session, get_settings())


def launch_refused(request: Request[Any, Any, Any], exc: LaunchRefused) -> Response[Any]:
    logger.warning("LTI refused at %s: %s", request.scope["path"], exc.message)
    return domain_error(request, exc)
