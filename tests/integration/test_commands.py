"""The `app` commands an operator runs: accounts (`users create`, `users promote`) and sample data (`demo`).

Each runs in a child process against the test database, as an operator would run it.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.helpers import PASSWORD, make_user
from tests.integration.test_email_delivery import run_cli

pytestmark = pytest.mark.slow


def account(database_url: str, username: str) -> tuple[Any, ...] | None:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT user_type, is_admin, email, first_name FROM user_account WHERE username = %s", (username,)
        ).fetchone()


async def test_users_create_makes_a_professor_who_can_sign_in(client: Any, database_url: str) -> None:
    done = await run_cli(
        "users", "create", "--username", "hopper", "--email", "hopper@uni.example", "--password", PASSWORD,
        "--first-name", "Grace", "--professor",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("created professor hopper (")
    assert account(database_url, "hopper") == ("professor", False, "hopper@uni.example", "Grace")
    token = await client.post("/api/v1/auth/token", json={"username": "hopper", "password": PASSWORD})
    assert token.status_code == 200


async def test_users_create_with_admin_grants_administrator_rights(database_url: str) -> None:
    done = await run_cli(
        "users", "create", "--username", "root1", "--email", "root1@uni.example", "--password", PASSWORD, "--admin"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("with admin rights")
    assert account(database_url, "root1") == ("student", True, "root1@uni.example", "")


async def test_users_create_refuses_a_taken_username_and_says_why(database_url: str) -> None:
    existing = await make_user()
    done = await run_cli(
        "users", "create", "--username", existing.username, "--email", "other@uni.example", "--password", PASSWORD
    )
    assert done.returncode == 1
    assert "username" in done.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM user_account").fetchone() == (1,)


async def test_users_promote_makes_a_student_a_professor(database_url: str) -> None:
    student = await make_user()
    done = await run_cli("users", "promote", student.email)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{student.username} is now a professor"
    assert account(database_url, student.username)[0] == "professor"  # type: ignore[index]


async def test_users_promote_of_an_unknown_account_fails_and_says_so(database_url: str) -> None:
    done = await run_cli("users", "promote", "nobody-here")
    assert done.returncode == 1
    assert "No account 'nobody-here'." in done.stderr


async def test_demo_loads_sample_people_slots_and_bookings_once(database_url: str) -> None:
    first = await run_cli("demo")
    assert first.returncode == 0, first.stderr

    def counts() -> tuple[int, ...]:
        with psycopg.connect(database_url) as conn:
            return tuple(
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
                for table in ("user_account", "consultation_slot", "booking")
            )

    loaded = counts()
    assert all(count > 0 for count in loaded)
    again = await run_cli("demo")
    assert again.returncode == 0, again.stderr
    assert counts() == loaded  # idempotent


async def test_demo_if_empty_leaves_a_database_with_users_alone(database_url: str) -> None:
    await make_user()
    done = await run_cli("demo", "--if-empty")
    assert done.returncode == 0, done.stderr
    assert "demo data not loaded: the database has users" in done.stdout
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM user_account").fetchone() == (1,)
