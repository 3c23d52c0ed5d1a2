"""Deep linking inside the LMS frame: the instructor's chooser, and the signed answer posted back to the platform.

Every page here may be shown inside a frame (lib/framing gives them their frame-ancestors and layout).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.domain.accounts.auth import current_user
from app.domain.accounts.models import User
from app.domain.lti.deep_linking import DeepLinkService, PlacementForm
from app.domain.lti.embed import sign_in_gate
from app.domain.lti.platforms import frame_ancestors, origin_of
from app.lib.errors import FieldErrors
from app.lib.forms import read_form
from app.lib.headers import FRAME_ANCESTORS_NONE, content_security_policy
from app.lib.i18n import gettext as _
from app.lib.rendering import render


def instructor(request: Request[Any, Any, Any]) -> User | None:
    """The signed-in professor; None when this frame kept no session (the sign-in gate is shown instead)."""
    user = current_user(request)
    if user is not None and not user.is_professor:
        raise PermissionDeniedException(_("Only instructors place office hours in a course."))
    return user


class DeepLinkPages(Controller):
    path = "/embed/deep-link"
    include_in_schema = False

    @get("/{request_id:uuid}")
    async def chooser(
        self,
        request: Request[User, Any, Any],
        request_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        launch: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """What to place in the course: one professor's office hours, or several in a course-wide view."""
        user = instructor(request)
        if user is None:
            return sign_in_gate(request, launch)
        service = DeepLinkService(db_session, get_settings())
        await service.request_of(user, request_id)
        return await self._chooser(request, service, request_id, PlacementForm(professor_ids=[user.id]), {})

    @post("/{request_id:uuid}", status_code=200)
    async def place(
        self, request: Request[User, Any, Any], request_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> Response[Any]:
        """The signed LtiDeepLinkingResponse, posted on to the platform by the browser."""
        user = instructor(request)
        if user is None:
            raise NotAuthorizedException(_("Sign in to continue."))
        service = DeepLinkService(db_session, get_settings())
        try:
            choice = await read_form(request, PlacementForm)
            answer = await service.respond(user, request_id, choice)
        except FieldErrors as exc:
            typed = PlacementForm(title=str((await request.form()).get("title", "")))
            return await self._chooser(request, service, request_id, typed, exc.errors, status_code=422)
        response = render(request, "pages/lti_deep_link_return.html", {"answer": answer})
        ancestors = " ".join(await frame_ancestors(get_settings())) or FRAME_ANCESTORS_NONE
        response.headers["content-security-policy"] = content_security_policy(
            ancestors, form_targets=(origin_of(answer.return_url),)
        )
        return response

    async def _chooser(
        self,
        request: Request[User, Any, Any],
        service: DeepLinkService,
        request_id: UUID,
        form: PlacementForm,
        errors: dict[str, str],
        status_code: int = 200,
    ) -> Response[Any]:
        context = {
            "request_id": request_id,
            "professors": await service.choosable(),
            "form": form,
            "errors": errors,
        }
        return render(request, "pages/lti_deep_link.html", context, status_code=status_code)
