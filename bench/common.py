"""Pieces the load scripts share: accounts through the API, web sign-in, percentiles."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

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


def seed_students(database_url: str, template: Account, prefix: str, count: int) -> list[Account]:
    """`count` more students like `template` (one registered through the API), written straight into the database
    with a bearer token each: registering and signing in hashes a password (0.2 s of CPU), which for a thousand
    students would take minutes. Usernames are `prefix` + a number; each token is its own 'tok-' + username."""
    user_columns, profile_columns = (
        [
            str(row[0])
            for row in conn_execute(
                database_url,
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                (table,),
            )
        ]
        for table in ("user_account", "profile")
    )
    fresh = {"id": "gen_random_uuid()", "created_at": "now()", "updated_at": "now()"}
    users = {**fresh, "username": "%(prefix)s || i", "email": "%(prefix)s || i || %(domain)s", "google_sub": "NULL"}
    profiles = {**fresh, "user_id": "u.id", "ics_feed_token": "md5(random()::text || u.id::text)"}
    ours = "left(u.username, length(%(prefix)s)) = %(prefix)s"
    params = {"prefix": prefix, "domain": f"@{EMAIL_DOMAIN}", "n": count, "template": template.user_id}
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        conn.execute(
            f"INSERT INTO user_account ({', '.join(user_columns)}) "
            f"SELECT {', '.join(users.get(c, 't.' + c) for c in user_columns)} "
            "FROM user_account t, generate_series(0, %(n)s - 1) AS i WHERE t.id = %(template)s",
            params,
        )
        conn.execute(
            f"INSERT INTO profile ({', '.join(profile_columns)}) "
            f"SELECT {', '.join(profiles.get(c, 't.' + c) for c in profile_columns)} "
            f"FROM profile t, user_account u WHERE t.user_id = %(template)s AND {ours}",
            params,
        )
        conn.execute(
            "INSERT INTO api_token (id, user_id, token_hash, name, expires_at, created_at, updated_at) "
            "SELECT gen_random_uuid(), u.id, encode(sha256(convert_to('tok-' || u.username, 'UTF8')), 'hex'), "
            f"'bench', now() + interval '1 day', now(), now() FROM user_account u WHERE {ours}",
            params,
        )
        rows = conn.execute(
            f"SELECT id, username FROM user_account u WHERE {ours} ORDER BY length(username), username",
            params,
        ).fetchall()
    return [Account(username=str(name), user_id=str(user_id), token=f"tok-{name}") for user_id, name in rows]


def conn_execute(database_url: str, query: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def cpu_seconds(pid: int | None) -> float:
    """User and system CPU time a process on this machine has used so far (Linux /proc); 0 without a pid."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
