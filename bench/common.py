"""Pieces the load scripts share: accounts through the API, web sign-in, percentiles."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import httpx
import psycopg

# Registration checks the address's domain in production (PROFESSOR_SIGNUP_DOMAINS); scale_out.py allows this one.
EMAIL_DOMAIN = "bench.example.com"
# In production a professor who registered with a password publishes slots once the address is verified (a mailed
# link). With BENCH_DATABASE_URL (libpq URL of the server's database) the scripts mark their professors verified.
VERIFY_IN_DATABASE = "BENCH_DATABASE_URL"


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class SetupError(RuntimeError):
    """The untimed setup got an answer it cannot go on from."""


@dataclass(frozen=True)
class Account:
    username: str
    user_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def describe(response: httpx.Response) -> str:
    return f"{response.request.method} {response.request.url.path} -> {response.status_code}: {response.text[:300]}"


async def register(client: httpx.AsyncClient, username: str, user_type: str, password: str) -> Account:
    """Register through the API and sign in for a bearer token."""
    response = await client.post(
        "/api/v1/auth/register",
        json={
            "username": username,
            "email": f"{username}@{EMAIL_DOMAIN}",
            "password": password,
            "user_type": user_type,
        },
    )
    if response.status_code != 201:
        raise SetupError(describe(response))
    user_id = str(response.json()["id"])
    if user_type == "professor" and os.environ.get(VERIFY_IN_DATABASE):
        with psycopg.connect(os.environ[VERIFY_IN_DATABASE], autocommit=True) as conn:
            conn.execute("UPDATE user_account SET email_verified_at = now() WHERE id = %s", (user_id,))
    response = await client.post("/api/v1/auth/token", json={"username": username, "password": password})
    if response.status_code != 200:
        raise SetupError(describe(response))
    return Account(username=username, user_id=user_id, token=str(response.json()["token"]))


async def web_session(base_url: str, username: str, password: str) -> httpx.AsyncClient:
    """A client signed in on the web (session and CSRF cookies), as a browser would be."""
    client = httpx.AsyncClient(base_url=base_url, timeout=None)
    await client.get("/login")
    response = await client.post(
        "/login",
        data={"username": username, "password": password},
        headers={"x-csrftoken": client.cookies["csrftoken"]},
    )
    if response.status_code != 303:
        await client.aclose()
        raise RuntimeError(f"sign-in of {username} failed: {response.status_code}")
    return client
