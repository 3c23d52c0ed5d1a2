"""Signing in: one rule for the web and the API, with failed attempts slowed, then locked.

Only failures count, so a lecture hall behind one NAT address signing in correctly is never held back. Failures of
one client on one account slow that client down (a growing delay); an account is locked only after many more, and
even then not on a browser where its owner signed in before (the known-device cookie), and its owner is mailed a
link to unlock it: an attacker can neither guess quickly nor lock a student out before an exam slot opens.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import AuthFailure, User
from app.domain.accounts.services import UserService
from app.domain.notifications.services import NotificationService
from app.lib.clock import utcnow
from app.lib.errors import AuthenticationFailed, FieldErrors, TooManyAttempts
from app.lib.i18n import N_
from app.lib.i18n import gettext as _
from app.lib.security import verify_password
from app.lib.unit_of_work import UnitOfWork, unit_of_work

INVALID_CREDENTIALS = N_("Invalid username or password.")
ACCOUNT_LOCKED = N_(
    "This account is locked after many failed sign-ins; its owner was e-mailed a link to unlock it. "
    "Try again in %(minutes)s minutes, or from a device you signed in on before."
)
ACCOUNT_LOCKED_KIND = "account_locked"
DEVICE_COOKIE = "oh_device"
# Session key of a verified Google identity waiting to be linked (by password) or to get an account.
PENDING_GOOGLE_KEY = "google_pending"


def landing_page(user: User) -> str:
    """Where a person goes after signing in."""
    return "/dashboard" if user.is_professor else "/professors"


@dataclass(frozen=True)
class ThrottleKeys:
    """What failures are counted against: the account (by id when it exists), the client address, and the two
    together (which is what slows an attacker down without slowing the account's owner elsewhere)."""

    account: str
    client: str
    pair: str

    @classmethod
    def of(cls, account: str, client: str) -> ThrottleKeys:
        return cls(account=f"account:{account}", client=f"client:{client}", pair=f"pair:{account}:{client}")


def device_token(user_id: UUID, settings: Settings) -> str:
    """The known-device cookie's value for an account: a browser where the person signed in before."""
    return hmac.new(settings.secret_key.encode(), f"device:{user_id}".encode(), hashlib.sha256).hexdigest()


class SignInThrottle:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    async def _failures(self, keys: ThrottleKeys) -> tuple[int, int, int]:
        since = utcnow() - timedelta(seconds=self.settings.login_failure_window_seconds)
        query = select(
            func.count().filter(AuthFailure.key == keys.account),
            func.count().filter(AuthFailure.key == keys.client),
            func.count().filter(AuthFailure.key == keys.pair),
        ).where(AuthFailure.key.in_((keys.account, keys.client, keys.pair)), AuthFailure.created_at > since)
        account, client, pair = (await self.session.execute(query)).one()
        return int(account), int(client), int(pair)

    async def before_attempt(self, keys: ThrottleKeys, *, known_device: bool) -> float:
        """Refuse a locked client, or a locked account unless on a device it signed in on before; else the seconds
        to wait before the password is checked (growing with this client's failures on this account)."""
        window = self.settings.login_failure_window_seconds
        account_failures, client_failures, pair_failures = await self._failures(keys)
        if client_failures >= self.settings.login_failures_lock_client:
            raise TooManyAttempts(
                _("Too many failed sign-ins. Try again in %(minutes)s minutes.", minutes=window // 60),
                retry_after=window,
            )
        if account_failures >= self.settings.login_failures_lock_account and not known_device:
            raise TooManyAttempts(_(ACCOUNT_LOCKED, minutes=window // 60), retry_after=window)
        excess = pair_failures - self.settings.login_failures_slow_after
        return min(0.25 * 2**excess, 4.0) if excess >= 0 else 0.0

    async def refuse_locked(self, key: str) -> None:
        """TooManyAttempts when `key` (a client) has failed as often as a client may in the window."""
        window = self.settings.login_failure_window_seconds
        since = utcnow() - timedelta(seconds=window)
        failures = await self.session.scalar(
            select(func.count()).where(AuthFailure.key == key, AuthFailure.created_at > since)
        )
        if (failures or 0) >= self.settings.login_failures_lock_client:
            raise TooManyAttempts(
                _("Too many failed attempts. Try again in %(minutes)s minutes.", minutes=window // 60),
                retry_after=window,
            )

    @staticmethod
    async def record(*keys: str) -> None:
        """Counted in a unit of work of its own: the failed request's own work is undone, the failure is not."""
        async with unit_of_work() as unit:
            unit.session.add_all([AuthFailure(key=key) for key in keys])

    async def record_failure(self, keys: ThrottleKeys, user: User | None) -> None:
        """Count a failed sign-in; the failure that locks an account sends its owner a link to unlock it."""
        await self.record(keys.account, keys.client, keys.pair)
        if user is None:
            return
        async with unit_of_work() as unit:
            account_failures, _, _ = await SignInThrottle(unit.session, self.settings)._failures(keys)
            if account_failures == self.settings.login_failures_lock_account:
                await NotificationService(session=unit.session).record(
                    user_id=user.id,
                    booking_id=None,
                    kind=ACCOUNT_LOCKED_KIND,
                    variant=utcnow().isoformat(),
                    context={"locked_at": utcnow().isoformat()},
                )

    async def clear_account(self, account: str) -> None:
        """Forget an account's failures (from any client)."""
        await self.session.execute(
            delete(AuthFailure).where(
                (AuthFailure.key == f"account:{account}") | AuthFailure.key.startswith(f"pair:{account}:")
            )
        )


async def sign_in(
    users: UserService, throttle: SignInThrottle, login: str, password: str, client: str, device: str | None = None
) -> User:
    """Throttle, verify, then count the failure or clear the account's failures. `device`: the known-device
    cookie this browser sent, if any."""
    user = await users.find_by_login(login)
    keys = ThrottleKeys.of(str(user.id) if user else login.strip().lower(), client)
    known_device = (
        user is not None
        and device is not None
        and hmac.compare_digest(device, device_token(user.id, throttle.settings))
    )
    delay = await throttle.before_attempt(keys, known_device=known_device)
    # So far only reads: hand the connection back, so that the slow part (the delay, argon2) holds none and neither
    # a lecture hall signing in nor a flood of wrong passwords can drain the pool.
    await UnitOfWork.of(users.repository.session).release()
    await asyncio.sleep(delay)
    # A password is checked for every attempt, against a stand-in hash when there is no such account (or it has no
    # password), so that the answer takes as long either way and does not tell which accounts exist.
    valid = await verify_password(user.password_hash if user is not None else None, password)
    if user is None or not valid or not user.is_active:
        await throttle.record_failure(keys, user)
        raise AuthenticationFailed(_(INVALID_CREDENTIALS))
    await throttle.clear_account(str(user.id))
    return user


async def register_account(users: UserService, throttle: SignInThrottle, data: dict[str, Any], client: str) -> User:
    """Registration throttled per client like sign-in: its refusals ("this address has an account" among them)
    count against the client, so probing which addresses have accounts is as slow as guessing passwords."""
    key = f"register:{client}"
    await throttle.refuse_locked(key)
    try:
        return await users.register(data)
    except FieldErrors:
        await throttle.record(key)
        raise
