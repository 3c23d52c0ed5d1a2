"""Errors to responses: JSON for the API, pages or toasts for the web, a sign-in redirect when anonymous."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import asyncpg
from advanced_alchemy.exceptions import NotFoundError as RepositoryNotFound
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.status_codes import HTTP_404_NOT_FOUND, HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from app.lib.database import DatabaseUnavailable
from app.lib.errors import DomainError, FieldErrors, TooManyAttempts
from app.lib.http import is_api
from app.lib.i18n import N_, gettext
from app.lib.rendering import HTML, is_htmx, redirect, render, toast_html

logger = logging.getLogger(__name__)
DATABASE_DOWN = N_("The service is briefly unavailable (database unreachable). Please try again in a moment.")
PAGE_NOT_FOUND = N_("We could not find that page. It may have moved, or the link may be mistyped.")
SERVER_ERROR = N_("Something went wrong on our side.")
NOT_FOUND = N_("Not found.")
# Every JSON error says what kind it is in a word programs can rely on; errors of the domain name themselves.
STATUS_CODES = {
    400: "bad_request",
    401: "not_signed_in",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_fields",
    429: "too_many_attempts",
    500: "server_error",
    503: "unavailable",
}


def _json(
    status_code: int,
    detail: str,
    extra: Any = None,
    headers: dict[str, str] | None = None,
    code: str | None = None,
) -> Response[Any]:
    body: dict[str, Any] = {
        "status_code": status_code,
        "detail": detail,
        "code": code or STATUS_CODES.get(status_code, "error"),
    }
    if extra is not None:
        body["extra"] = extra
    return Response(body, status_code=status_code, media_type=MediaType.JSON, headers=headers)


def _web_error(request: Request[Any, Any, Any], status_code: int, message: str) -> Response[Any]:
    if is_htmx(request):
        # The swap target stays as it is; the reason appears as a toast.
        html = toast_html(request, message, "error")
        return Response(html, status_code=status_code, media_type=HTML, headers={"HX-Reswap": "none"})
    return render(
        request, "pages/error.html", {"status_code": status_code, "message": message}, status_code=status_code
    )


def domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts) else None
    if is_api(request):
        extra = [{"key": f, "message": m} for f, m in exc.errors.items()] if isinstance(exc, FieldErrors) else None
        return _json(exc.status_code, exc.message, extra, headers, code=exc.code)
    # People read fields by their labels, never by their code names.
    message = exc.in_words() if isinstance(exc, FieldErrors) else exc.message
    return _web_error(request, exc.status_code, message)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if is_api(request):
        return _json(exc.status_code, exc.detail, exc.extra or None, exc.headers)
    if isinstance(exc, NotAuthorizedException):
        # The sign-in page says why the person is there (from `next`; no session row is made for a visitor).
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(request, f"/login?next={quote(target)}")
    if exc.status_code == HTTP_404_NOT_FOUND:
        return _web_error(request, exc.status_code, gettext(PAGE_NOT_FOUND))
    return _web_error(request, exc.status_code, exc.detail)


def not_found(request: Request[Any, Any, Any], exc: RepositoryNotFound) -> Response[Any]:
    message = gettext(NOT_FOUND)
    return _json(404, message) if is_api(request) else _web_error(request, 404, message)


def database_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    logger.warning("database unavailable: %s", exc)
    headers = {"Retry-After": "5"}
    if is_api(request):
        return _json(HTTP_503_SERVICE_UNAVAILABLE, gettext(DATABASE_DOWN), headers=headers)
    response = _web_error(request, HTTP_503_SERVICE_UNAVAILABLE, gettext(DATABASE_DOWN))
    response.headers.update(headers)
    return response


# What a lost connection looks like inside a driver error (the driver's own errors; its socket's OSError).
CONNECTION_FAILURES = (
    OSError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
)


def database_error(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[Any]:
    """Lost or refused connections are a 503 (the app recovers when the database is back); the rest is a bug."""
    if (
        exc.connection_invalidated
        or isinstance(exc.orig, CONNECTION_FAILURES)
        or isinstance(getattr(exc.orig, "__cause__", None), CONNECTION_FAILURES)
    ):
        return database_unavailable(request, exc)
    logger.exception("database error", exc_info=exc)
    return _server_error(request)


def _server_error(request: Request[Any, Any, Any]) -> Response[Any]:
    code = HTTP_500_INTERNAL_SERVER_ERROR
    message = gettext(SERVER_ERROR)
    return _json(code, message) if is_api(request) else _web_error(request, code, message)


def unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A bug: logged with its traceback (handled errors are answers, not log lines), a plain 500 to the person."""
    logger.error("unhandled error at %s %s", request.method, request.url.path, exc_info=exc)
    return _server_error(request)


def exception_handlers() -> ExceptionHandlersMap:
    return {
        DomainError: domain_error,
        HTTPException: http_error,
        RepositoryNotFound: not_found,
        OperationalError: database_unavailable,
        InterfaceError: database_unavailable,
        DatabaseUnavailable: database_unavailable,
        DBAPIError: database_error,
        Exception: unexpected,
    }
