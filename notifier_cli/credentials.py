"""``notifier vapid`` and ``notifier token``: the site's VAPID key and the API tokens of machines."""

from __future__ import annotations

from pathlib import Path

import click

from notifier.errors import NotifierError
from notifier.tokens import TokenStore
from notifier.vapid import VapidKey, generate_private_key, write_private_key
from notifier_cli.common import load_context, load_settings


@click.group()
def vapid() -> None:
    """VAPID key management."""


@vapid.command("generate")
@click.option(
    "--path",
    type=click.Path(path_type=Path),
    help="Where to write the PEM (default: the configured key file).",
)
def vapid_generate(path: Path | None) -> None:
    """Write a new VAPID private key (PEM, mode 0600) and print the public key."""

    settings = load_settings()
    target = path or settings.vapid_key_path
    if target.exists():
        raise click.ClickException(f"{target} exists; refusing to overwrite a key subscribers depend on")
    key = generate_private_key()
    write_private_key(target, key)
    click.echo(f"wrote {target} (mode 0600)")
    click.echo(f"public key: {VapidKey(key, settings.vapid_subject).public_key_b64}")


@click.group()
def token() -> None:
    """API tokens for machines."""


@token.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["editor", "ops", "admin"]), default="editor", show_default=True)
@click.option(
    "--site", "site_ids", multiple=True, help="Only for this site (repeat for several; default: all)."
)
def token_create(name: str, role: str, site_ids: tuple[str, ...]) -> None:
    """Create an API token and print it (only its hash is stored)."""

    c = load_context()
    try:
        sites = [c.site(s).id for s in site_ids]
        click.echo(TokenStore(c.redis, c.keys).create(name, role, sites=sites))
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc


@token.command("revoke")
@click.argument("name")
def token_revoke(name: str) -> None:
    """Revoke an API token by name."""

    c = load_context()
    if not TokenStore(c.redis, c.keys).revoke(name):
        raise click.ClickException(f"no token named {name!r}")
    click.echo(f"revoked {name}")


@token.command("list")
def token_list() -> None:
    """List token names."""

    c = load_context()
    for name in TokenStore(c.redis, c.keys).names():
        click.echo(name)
