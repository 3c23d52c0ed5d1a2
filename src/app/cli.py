"""Project commands (users, demo, notifications, lti, retention): one unit of work each."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Coroutine
from dataclasses import asdict
from typing import Any, TypeVar
from uuid import UUID

import click

from app.config import get_settings
from app.demo import load_demo
from app.domain.accounts.models import UserType
from app.domain.lti.cli import lti_group
from app.domain.notifications.services import delivery_state
from app.domain.privacy.erasure import Erasure
from app.domain.privacy.retention import Retention
from app.lib.errors import DomainError, FieldErrors
from app.lib.queue import close_queue
from app.services import provide_services
from app.worker import saq_config

T = TypeVar("T")


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's work, then close the queue it may have used (jobs queued after a commit)."""

    async def main() -> T:
        saq_config()  # jobs queued after a commit go to the configured queue
        try:
            return await work
        finally:
            await close_queue()

    return asyncio.run(main())


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
                },
                by_admin=True,
            )
            if admin:
                user.is_admin = True
            click.echo(f"created {user.user_type} {user.username} ({user.id}){' with admin rights' if admin else ''}")

    try:
        run(create())
    except FieldErrors as exc:
        raise click.ClickException(str(exc)) from exc


@users_group.command(name="promote", help="Make an existing account (username or email) a professor.")
@click.argument("login")
def promote_user(login: str) -> None:
    async def promote() -> None:
        async with provide_services() as services:
            user = await services.users.grant_professor(login)
            click.echo(f"{user.username} is now a professor")

    try:
        run(promote())
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc


@users_group.command(
    name="erase", help="Erase an account (username or email) for good; its past bookings stay under a pseudonymous id."
)
@click.argument("login")
@click.option("--yes", is_flag=True, default=False, help="Do not ask for confirmation.")
def erase_user(login: str, yes: bool) -> None:
    if not yes:
        click.confirm(f"Erase {login} for good? This cannot be undone.", abort=True)

    async def erase() -> None:
        async with provide_services() as services:
            user = await services.users.find_by_login(login)
            if user is None:
                raise click.ClickException(f"No account {login!r}.")
            report = await Erasure(services.session, get_settings()).erase(user.id, actor=None, ip="cli")
            click.echo(
                f"erased {user.id}: {report.bookings_cancelled} upcoming booking(s) cancelled, "
                f"{report.waitlist_places_given_up} waitlist place(s) given up, "
                f'{report.bookings_pseudonymised} booking(s) kept as "Former student", '
                f"{report.notifications_deleted} notification(s) deleted"
            )

    try:
        run(erase())
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc


@click.group(name="retention", help="Privacy: pseudonymise and delete old data (also run daily by the workers).")
def retention_group() -> None:
    pass


@retention_group.command(name="run", help="Run the retention sweep now and print what it did (idempotent).")
def retention_run() -> None:
    async def sweep() -> None:
        async with provide_services() as services:
            report = await Retention(services.session, get_settings()).run(ip="cli")
        for name, value in asdict(report).items():
            click.echo(f"{name}: {value}")

    run(sweep())


@click.command(name="demo", help="Load sample professors, students, slots and bookings (idempotent).")
@click.option("--if-empty", is_flag=True, default=False, help="Only when the database has no users yet.")
def demo_command(if_empty: bool) -> None:
    for line in run(load_demo(only_if_empty=if_empty)):
        click.echo(line)


@click.group(name="notifications", help="Inspect and re-send e-mail notifications.")
def notifications_group() -> None:
    pass


@notifications_group.command(name="list", help="List notifications (newest first).")
@click.option("--failed", "status", flag_value="failed", help="Only those that finally failed.")
@click.option("--queued", "status", flag_value="queued", help="Only those waiting or retrying.")
@click.option("--limit", default=50, show_default=True)
def list_notifications_command(status: str | None, limit: int) -> None:
    async def show() -> None:
        async with provide_services() as services:
            for row in await services.notifications.newest(status=status, limit=limit):
                click.echo(
                    f"{row.id}  {row.kind:<18} {delivery_state(row):<9} tries={row.attempts} "
                    f"user={row.user_id} {row.last_error}"
                )

    run(show())


@notifications_group.command(name="resend", help="Queue every failed notification (or the given ids) again.")
@click.argument("ids", nargs=-1)
def resend_command(ids: tuple[str, ...]) -> None:
    async def resend() -> list[UUID]:
        async with provide_services() as services:
            chosen = [UUID(value) for value in ids] or None
            return await services.notifications.retry_failed(chosen)

    click.echo(f"queued again: {len(run(resend()))}")


def register_commands(group: Any) -> None:
    group.add_command(users_group)
    group.add_command(demo_command)
    group.add_command(notifications_group)
    group.add_command(lti_group)
    group.add_command(retention_group)
