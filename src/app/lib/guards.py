"""Route guards by role. Whoever authenticates the request puts a person with these three facts in `scope["user"]`.

The guards are coroutines although they never wait: Litestar runs a plain function guard in a worker thread, a
hand-off to another thread and back on every request (found by profiling the grid page)."""

from __future__ import annotations

from typing import Any, Protocol

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from app.lib.i18n import gettext as _


class Person(Protocol):
    @property
    def is_professor(self) -> bool: ...
    @property
    def is_student(self) -> bool: ...
    @property
    def is_admin(self) -> bool: ...


def signed_in(connection: ASGIConnection[Any, Any, Any, Any]) -> Person:
    person: Person | None = connection.scope.get("user")
    if person is None:
        raise NotAuthorizedException(_("Sign in to continue."))
    return person


async def requires_user(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    signed_in(connection)


async def requires_professor(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    if not signed_in(connection).is_professor:
        raise PermissionDeniedException(_("Only professors can do this."))


async def requires_student(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    if not signed_in(connection).is_student:
        raise PermissionDeniedException(_("Only students can do this."))


async def requires_admin(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    if not signed_in(connection).is_admin:
        raise PermissionDeniedException(_("Only administrators can do this."))
