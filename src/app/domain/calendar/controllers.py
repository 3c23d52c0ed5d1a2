"""The personal iCalendar feed over HTTP: the secret link is the key."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.models import Profile, User
from app.domain.calendar.feed import build_feed


class CalendarFeed(Controller):
    include_in_schema = True
    tags = ["calendar"]

    @get(
        "/calendar/{feed_name:str}",
        summary="Your consultations as iCalendar (the link is the key)",
        media_type="text/calendar",
        response_description="An iCalendar (RFC 5545) document in UTF-8",
        responses={404: ResponseSpec(data_container=None, description="Unknown or replaced link")},
    )
    async def feed(self, feed_name: FromPath[str], db_session: NamedDependency[AsyncSession]) -> Response[bytes]:
        token = feed_name.removesuffix(".ics")
        if not feed_name.endswith(".ics") or not token:
            raise NotFoundException()
        user_id = await db_session.scalar(select(Profile.user_id).where(Profile.ics_feed_token == token))
        if user_id is None:
            raise NotFoundException()
        user = await db_session.get_one(User, user_id)
        return Response(
            await build_feed(db_session, user),
            media_type="text/calendar",  # Litestar adds "; charset=utf-8" to every text/* type
            headers={"Cache-Control": "private, max-age=300"},
        )
