"""API bearer tokens: only a SHA-256 digest is stored; the plain value is shown once."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import bindparam, delete, or_, select, update

from app.domain.accounts.models import ApiToken, User
from app.lib.clock import utcnow
from app.lib.errors import FieldErrors, NotFound
from app.lib.i18n import gettext as _
from app.lib.security import new_token, token_digest
from app.lib.text import control_character_problem

DEFAULT_LIFETIME_DAYS = 30
LIFETIME_DAYS = (1, 365)
NAME_LIMIT = 100
# "Last used" is shown to the minute or so: writing it on every request would cost a write per API call.
LAST_USED_PRECISION = timedelta(minutes=10)
# Marks a live token used, unless it was within LAST_USED_PRECISION (`stale`): in the same statement as reading it,
# not as a change to the loaded row, whose flush (the unit of work's machinery) was a third of a refused booking.
_TOUCH_TOKEN = (
    update(ApiToken)
    .where(
        ApiToken.token_hash == bindparam("digest"),
        ApiToken.expires_at > bindparam("now"),
        or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= bindparam("stale")),
    )
    .values(last_used_at=bindparam("now"))
    .returning(ApiToken.id)
    .cte("touched")
)
# The active user a live token belongs to, built once and run with the digest and the moment: building it anew was
# a tenth of a refused booking, and loading the token's row as an object beside the user's, another tenth.
# PostgreSQL runs the touch whether or not the select reads it.
USER_BY_TOKEN = (
    select(User)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(ApiToken.token_hash == bindparam("digest"), ApiToken.expires_at > bindparam("now"), User.is_active)
    .add_cte(_TOUCH_TOKEN)
)


def token_problems(name: str, days: int) -> dict[str, str]:
    errors = {}
    if not name:
        errors["name"] = _('Name the token after what uses it, e.g. "Timetable script".')
    elif len(name) > NAME_LIMIT:
        errors["name"] = _("Use at most %(limit)s characters.", limit=NAME_LIMIT)
    elif problem := control_character_problem(name):
        errors["name"] = problem
    if not LIFETIME_DAYS[0] <= days <= LIFETIME_DAYS[1]:
        errors["expires_in_days"] = _(
            "Choose from %(low)s to %(high)s days.", low=LIFETIME_DAYS[0], high=LIFETIME_DAYS[1]
        )
    return errors


class ApiTokenService(SQLAlchemyAsyncRepositoryService[ApiToken]):
    class Repository(SQLAlchemyAsyncRepository[ApiToken]):
        model_type = ApiToken

    repository_type = Repository

    async def issue(
        self, user: User, name: str = "API token", days: int = DEFAULT_LIFETIME_DAYS
    ) -> tuple[str, ApiToken]:
        """A new named bearer token living `days`; only its digest is stored, the plain value is returned once."""
        name = name.strip()
        if errors := token_problems(name, days):
            raise FieldErrors(errors)
        token = new_token()
        row = await self.create(
            {
                "user_id": user.id,
                "name": name,
                "token_hash": token_digest(token),
                "expires_at": utcnow() + timedelta(days=days),
            }
        )
        return token, row

    async def resolve(self, token: str) -> User | None:
        """The active user of a live token (marking it used), else None."""
        now = utcnow()
        parameters = {"digest": token_digest(token), "now": now, "stale": now - LAST_USED_PRECISION}
        user: User | None = (await self.repository.session.scalars(USER_BY_TOKEN, parameters)).first()
        return user

    async def of_user(self, user_id: UUID) -> list[ApiToken]:
        """The account's tokens still valid, newest first."""
        query = (
            select(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.expires_at > utcnow())
            .order_by(ApiToken.created_at.desc(), ApiToken.id)
        )
        return list((await self.repository.session.scalars(query)).unique().all())

    async def revoke(self, token: str) -> None:
        await self.repository.session.execute(delete(ApiToken).where(ApiToken.token_hash == token_digest(token)))

    async def revoke_by_id(self, user_id: UUID, token_id: UUID) -> None:
        """Revoke one of the account's tokens; someone else's is not found."""
        result = await self.repository.session.execute(
            delete(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id).returning(ApiToken.id)
        )
        if result.first() is None:
            raise NotFound(_("Token not found."))

    async def revoke_all(self, user_id: UUID, keep: str | None = None) -> None:
        """Revoke every token of the account but `keep` (the one making the request, if any)."""
        statement = delete(ApiToken).where(ApiToken.user_id == user_id)
        if keep is not None:
            statement = statement.where(ApiToken.token_hash != token_digest(keep))
        await self.repository.session.execute(statement)
