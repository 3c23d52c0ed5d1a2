"""The person's own data on the web (/settings/data) and in the API (/api/v1/me/export)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.openapi import ResponseSpec
from litestar.params import FromQuery
from litestar.status_codes import HTTP_202_ACCEPTED
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.accounts.auth import signed_in_within
from app.domain.privacy.erasure import Erasure
from app.domain.privacy.export import ExportService, download_path
from app.domain.privacy.forms import EraseForm
from app.domain.privacy.models import DataExport
from app.lib.forms import read_form
from app.lib.guards import requires_user
from app.lib.http import client_address
from app.lib.i18n import gettext as _
from app.lib.rendering import flash, form_errors, is_htmx, redirect, render
from app.lib.security import verify_password
from app.lib.sessions import start_session

EXPORT_FILENAME = "office-hours-data.zip"
RETRY_AFTER_SECONDS = 5
OCTET_STREAM = "application/octet-stream"
# An account without a password confirms its erasure by having signed in (with Google) this recently.
FRESH_SIGN_IN_MINUTES = 10
CONFIRM_WORD = "DELETE"
ERASE_FIELDS = tuple(EraseForm.__struct_fields__)


class ExportPending(msgspec.Struct):
    """The export is being built."""

    status: str
    id: UUID
    retry_after: int


def zip_response(content: bytes, media_type: str = "application/zip") -> Response[bytes]:
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{EXPORT_FILENAME}"',
            "Cache-Control": "no-store",
        },
    )


class PrivacyPages(Controller):
    path = "/settings/data"
    guards = [requires_user]
    include_in_schema = False

    async def _page(
        self, request: Request[Any, Any, Any], session: AsyncSession, export: DataExport | None = None, **extra: Any
    ) -> Response[Any]:
        settings = get_settings()
        export = export or await ExportService(session, settings).current(request.user.id)
        link = download_path(export, settings) if export is not None and export.status == "ready" else None
        status_code = extra.pop("status_code", 200)
        context = {"export": export, "download": link, "errors": {}, "fresh_minutes": FRESH_SIGN_IN_MINUTES, **extra}
        return render(request, "pages/my_data.html", context, block="export_status", status_code=status_code)

    @get("/")
    async def page(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Response[Any]:
        """The page; htmx (polling while the ZIP is built) gets the export's state alone."""
        return await self._page(request, db_session)

    @post("/export", status_code=200)
    async def start_export(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        export = await ExportService(db_session, get_settings()).request(request.user, client_address(request))
        if not is_htmx(request):
            flash(request, _("We are preparing your data; the download appears on this page in a moment."), "success")
            return redirect(request, "/settings/data")
        return await self._page(request, db_session, export)

    @get("/download")
    async def download(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], t: FromQuery[str] = ""
    ) -> Response[bytes]:
        """The ZIP behind the signed link; only for the person it was made for (anyone else: 404)."""
        return zip_response(await ExportService(db_session, get_settings()).download(request.user.id, t))

    @post("/delete", status_code=200)
    async def erase(self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]) -> Response[Any]:
        """Delete my account: confirmed by the password (or, without one, a sign-in with Google in the last
        FRESH_SIGN_IN_MINUTES) and by typing DELETE; irreversible."""
        user = request.user
        form = await read_form(request, EraseForm)
        errors: dict[str, str] = {}
        if user.password_hash is not None:
            if not await verify_password(user.password_hash, form.password):
                errors["password"] = _("The password is wrong.")
        elif not signed_in_within(request, FRESH_SIGN_IN_MINUTES * 60):
            errors["confirm"] = _(
                "Sign in with Google again to confirm it is you, then delete the account within %(minutes)s minutes.",
                minutes=FRESH_SIGN_IN_MINUTES,
            )
        if form.confirm.strip().upper() != CONFIRM_WORD:
            errors.setdefault("confirm", _("Type DELETE to confirm."))
        if errors:
            if is_htmx(request):
                return form_errors(request, ERASE_FIELDS, errors, prefix="erase")
            return await self._page(request, db_session, errors=errors, status_code=422)
        await Erasure(db_session, get_settings()).erase(user.id, actor=user.id, ip=client_address(request))
        start_session(request, {})  # signed out, under a new session id that carries only the message below
        flash(request, _("Your account is deleted. Thank you for using office hours."), "success")
        return redirect(request, "/")


class PrivacyApi(Controller):
    path = "/api/v1/me"
    tags = ["accounts"]

    @get(
        "/export",
        guards=[requires_user],
        summary="Your data as a ZIP (202 while it is being prepared)",
        # Bytes for generated clients (openapi-python-client reads no application/zip); the file is a ZIP.
        media_type=OCTET_STREAM,
        response_description="A ZIP archive (office-hours-data.zip): JSON files and bookings.ics",
        responses={
            202: ResponseSpec(
                data_container=ExportPending,
                description="Being prepared (the first call starts it): ask again after `retry_after` seconds",
            )
        },
    )
    async def export(
        self, request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
    ) -> Response[bytes]:
        """Answers the ZIP itself once it is ready: 200, `application/octet-stream`, a ZIP archive named
        office-hours-data.zip (JSON files and `bookings.ics`). Until then it answers 202 with
        `{"status": "pending", "id", "retry_after"}` and a `Retry-After` header: the first call starts the job that
        builds it, later calls while it is being built start nothing new. A ready ZIP stays available for
        EXPORT_LINK_HOURS; after that the next call builds a fresh one."""
        exports = ExportService(db_session, get_settings())
        export = await exports.request(request.user, client_address(request))
        if export.status == "ready":
            return zip_response(await exports.content(request.user.id, export.id), OCTET_STREAM)
        pending = ExportPending(status=export.status, id=export.id, retry_after=RETRY_AFTER_SECONDS)
        return Response(
            msgspec.json.encode(pending),
            status_code=HTTP_202_ACCEPTED,
            media_type=MediaType.JSON,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
