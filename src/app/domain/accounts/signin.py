"""Signing in: one rule for the web and the API, with failed attempts slowed, then locked.

Failures are counted per account and per client address. Only failures count: a lecture hall behind one NAT
address signing in correctly is never locked out, and the per-client limit is far above the per-account one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import AuthFailure, User
from app.domain.accounts.services import UserService
from app.lib.clock import utcnow
from app.lib.errors import AuthenticationFailed, TooManyAttempts
from app.lib.security import verify_password
from app.lib.unit_of_work import UnitOfWork, unit_of_work

INVALID_CREDENTIALS = "Invalid username or password."
# Session key of a verified Google identity waiting to be linked (by password) or to get an account.
PENDING_GOOGLE_KEY = "google_pending"


def landing_page(user: User) -> str:
    """Where a person goes after signing in."""
    return "/dashboard" if user.is_professor else "/professors"


@dataclass(frozen=True)
class ThrottleKeys:
    account: str
    client: str

    @classmethod
    def of(cls, login: str, client: str) -> ThrottleKeys:
        return cls(account=f"account:{login.strip().lower()}", client=f"client:{client}")


class SignInThrottle:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    async def _failures(self, key: str) -> int:
        since = utcnow() - timedelta(seconds=self.settings.login_failure_window_seconds)
        query = (
            select(func.count()).select_from(AuthFailure).where(AuthFailure.key == key, AuthFailure.created_at > since)
        )
        return int((await self.session.execute(query)).scalar_one())

    async def before_attempt(self, keys: ThrottleKeys) -> float:
        """Refuse a locked account or client; else the seconds to wait before the password is checked."""
        window = self.settings.login_failure_window_seconds
        account_failures = await self._failures(keys.account)
        client_failures = await self._failures(keys.client)
        if (
            account_failures >= self.settings.login_failures_lock_account
            or client_failures >= self.settings.login_failures_lock_client
        ):
            raise TooManyAttempts(f"Too many failed sign-ins. Try again in {window // 60} minutes.", retry_after=window)
        excess = account_failures - self.settings.login_failures_slow_after
        return min(0.25 * 2**excess, 4.0) if excess >= 0 else 0.0

    @staticmethod
    async def record_failure(keys: ThrottleKeys) -> None:
        """Counted in a unit of work of its own: the failed request's own work is undone, the failure is not."""
        async with unit_of_work() as unit:
            unit.session.add_all([AuthFailure(key=keys.account), AuthFailure(key=keys.client)])

    async def clear_account(self, keys: ThrottleKeys) -> None:
        await self.session.execute(delete(AuthFailure).where(AuthFailure.key == keys.account))


async def sign_in(users: UserService, throttle: SignInThrottle, login: str, password: str, client: str) -> User:
    """Throttle, verify, then count the failure or clear the account's failures."""
    keys = ThrottleKeys.of(login, client)
    delay = await throttle.before_attempt(keys)
    user = await users.find_by_login(login)
    # So far only reads: hand the connection back, so that the slow part (the delay, argon2) holds none and neither
    # a lecture hall signing in nor a flood of wrong passwords can drain the pool.
    await UnitOfWork.of(users.repository.session).release()
    await asyncio.sleep(delay)
    if user is None or not await verify_password(user.password_hash, password) or not user.is_active:
        await throttle.record_failure(keys)
        raise AuthenticationFailed(INVALID_CREDENTIALS)
    await throttle.clear_account(keys)
    return user
