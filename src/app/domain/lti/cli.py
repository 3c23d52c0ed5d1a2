"""`app lti`: register LMS platforms, list and remove them, rotate the tool's key."""

from __future__ import annotations

import asyncio
from uuid import UUID

import click

from app.config import Settings, get_settings
from app.domain.audit.services import AuditAction, AuditService
from app.domain.lti.keys import RETIRED_KEY_PUBLISHED, ToolKeyService
from app.domain.lti.platforms import PlatformService
from app.domain.lti.schemas import PlatformRegistration
from app.lib.errors import FieldErrors, NotFound
from app.lib.unit_of_work import unit_of_work


def tool_endpoints(settings: Settings) -> list[str]:
    """What the platform's administrator enters for this tool."""
    return [
        f"  Registration URL:   {settings.app_url}/lti/register  (LTI Dynamic Registration: all of the below at once)",
        f"  OIDC login URL:     {settings.app_url}/lti/login",
        f"  Redirect URL:       {settings.app_url}/lti/launch",
        f"  Target link URI:    {settings.app_url}/lti/launch",
        f"  Public JWKS URL:    {settings.app_url}/lti/jwks",
    ]


@click.group(name="lti", help="LTI 1.3: the LMS platforms that may launch this tool, and the tool's key.")
def lti_group() -> None:
    pass


@lti_group.command(name="add-platform", help="Register a platform (its values come from the LMS's tool registration).")
@click.option("--issuer", required=True, help="The platform's issuer, e.g. https://canvas.instructure.com.")
@click.option("--client-id", required=True, help="The client id the platform gave this tool.")
@click.option("--deployment-id", "deployment_ids", multiple=True, required=True, help="Repeat for each deployment.")
@click.option("--auth-url", required=True, help="The platform's OIDC authorization (authentication request) URL.")
@click.option("--jwks-url", required=True, help="The platform's public keyset URL.")
@click.option("--token-url", default="", help="The platform's OAuth2 access token URL.")
@click.option("--name", default="", help="A label for `app lti list`.")
@click.option("--trust-email", is_flag=True, default=False, help="Link launches to existing accounts by email.")
def add_platform(
    issuer: str,
    client_id: str,
    deployment_ids: tuple[str, ...],
    auth_url: str,
    jwks_url: str,
    token_url: str,
    name: str,
    trust_email: bool,
) -> None:
    registration = PlatformRegistration(
        issuer=issuer,
        client_id=client_id,
        deployment_ids=deployment_ids,
        auth_login_url=auth_url,
        jwks_url=jwks_url,
        token_url=token_url,
        name=name,
        trust_email=trust_email,
    )

    async def add() -> str:
        async with unit_of_work() as unit:
            platform = await PlatformService(session=unit.session).register(registration)
            return str(platform.id)

    try:
        platform_id = asyncio.run(add())
    except FieldErrors as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"registered {name or issuer} ({platform_id}); enter these at the platform:")
    for line in tool_endpoints(get_settings()):
        click.echo(line)


@lti_group.command(name="list", help="List the registered platforms.")
def list_platforms() -> None:
    async def show() -> None:
        async with unit_of_work() as unit:
            platforms = await PlatformService(session=unit.session).registered()
        click.echo("This tool:")
        for line in tool_endpoints(get_settings()):
            click.echo(line)
        for platform in platforms:
            trusted = "trusts emails" if platform.trust_email else "emails not trusted"
            state = "approved" if platform.is_approved else "WAITING FOR APPROVAL (app lti approve)"
            click.echo(f"{platform.id}  {platform.name or platform.issuer}  [{platform.registered_via}, {state}]")
            click.echo(f"  issuer {platform.issuer}  client {platform.client_id}  {trusted}")
            click.echo(f"  deployments {', '.join(platform.deployment_ids) or 'any of this client'}")
            click.echo(f"  auth {platform.auth_login_url}  jwks {platform.jwks_url}  token {platform.token_url or '-'}")

    asyncio.run(show())


@lti_group.command(name="approve", help="Accept the launches of a dynamically registered platform (its id).")
@click.argument("platform_id", type=click.UUID)
def approve_platform(platform_id: UUID) -> None:
    async def approve() -> str:
        async with unit_of_work() as unit:
            platform = await PlatformService(session=unit.session).approve(platform_id)
            details = {"name": platform.name, "issuer": platform.issuer}
            await AuditService(unit.session).record(
                None, AuditAction.PLATFORM_APPROVED, platform_id, details, "cli", target_type="lti"
            )
            return platform.name or platform.issuer

    try:
        name = asyncio.run(approve())
    except NotFound as exc:
        raise click.ClickException(f"No platform {platform_id}.") from exc
    click.echo(f"approved {name} ({platform_id})")


@lti_group.command(name="remove", help="Remove a platform (its id from `app lti list`); its launches stop working.")
@click.argument("platform_id", type=click.UUID)
def remove_platform(platform_id: UUID) -> None:
    async def remove() -> None:
        async with unit_of_work() as unit:
            platforms = PlatformService(session=unit.session)
            platform = await platforms.get_one_or_none(id=platform_id)
            details = {"name": platform.name, "issuer": platform.issuer} if platform else {}
            await platforms.remove(platform_id)
            await AuditService(unit.session).record(
                None, AuditAction.PLATFORM_REMOVED, platform_id, details, "cli", target_type="lti"
            )

    try:
        asyncio.run(remove())
    except NotFound as exc:
        raise click.ClickException(f"No platform {platform_id}.") from exc
    click.echo(f"removed {platform_id}")


@lti_group.command(name="rotate-key", help="Make a new signing key; the previous one stays published for a while.")
def rotate_key() -> None:
    async def rotate() -> str:
        async with unit_of_work() as unit:
            key = await ToolKeyService(session=unit.session).rotate(get_settings())
            return key.kid

    kid = asyncio.run(rotate())
    click.echo(f"new key {kid}; the previous one stays in /lti/jwks for {RETIRED_KEY_PUBLISHED.days} days")
