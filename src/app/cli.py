"""Project commands: `app users create`, `app demo`."""

from __future__ import annotations

import asyncio
import getpass
from typing import Any

import click

from app.domain.accounts.models import UserType
from app.lib.errors import FieldErrors
from app.lib.providers import provide_services


@click.group(name="users", help="Manage user accounts.")
def users_group() -> None:
    pass


@users_group.command(name="create", help="Create a user (asks for the password when not given).")
@click.option("--username", required=True)
@click.option("--email", required=True)
@click.option("--password", default=None, help="Read from a prompt when omitted.")
@click.option("--first-name", default="")
@click.option("--last-name", default="")
@click.option("--professor", "role", flag_value=UserType.PROFESSOR.value)
@click.option("--student", "role", flag_value=UserType.STUDENT.value, default=True)
@click.option("--admin", is_flag=True, default=False, help="Also grant administrator rights.")
def create_user(
    username: str, email: str, password: str | None, first_name: str, last_name: str, role: str, admin: bool
) -> None:
    password = password or getpass.getpass("Password: ")

    async def create() -> None:
        async with provide_services() as services:
            user = await services.users.register(
                {
                    "username": username,
                    "email": email,
                    "password": password,
                    "user_type": role,
                    "first_name": first_name,
                    "last_name": last_name,
                }
            )
            if admin:
                user.is_admin = True
                await services.session.commit()
            click.echo(f"created {user.user_type} {user.username} ({user.id}){' with admin rights' if admin else ''}")

    try:
        asyncio.run(create())
    except FieldErrors as exc:
        raise click.ClickException(str(exc)) from exc


@click.command(name="demo", help="Load sample professors, students, slots and bookings (idempotent).")
@click.option("--if-empty", is_flag=True, default=False, help="Only when the database has no users yet.")
def demo_command(if_empty: bool) -> None:
    from app.demo import load_demo

    for line in asyncio.run(load_demo(only_if_empty=if_empty)):
        click.echo(line)


def register_commands(group: Any) -> None:
    group.add_command(users_group)
    group.add_command(demo_command)
