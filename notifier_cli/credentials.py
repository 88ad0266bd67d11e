"""``notifier vapid`` and ``notifier token``: the site's VAPID key and the API tokens of machines."""

from __future__ import annotations

import time
from pathlib import Path

import click

from notifier.context import Context
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


def _ring_site(site: str | None) -> tuple[Context, str]:
    c = load_context()
    try:
        return c, c.site(site).id
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc


def _key_lines(c: Context, site: str) -> list[str]:
    infos = c.keyring.keys_of(site)
    current = next((i.key_id for i in infos if i.current), None)
    readers = c.subscriptions.count_by_key([i.key_id for i in infos], site=site, unbound_to=current)
    lines = []
    for info in infos:
        state = "current" if info.current else ("retired" if info.retired else "signing for its readers")
        made = (
            "configured"
            if info.configured
            else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(info.created))
        )
        lines.append(f"{info.key_id}  {state:<23}  {readers[info.key_id]:>9,} readers  ({made})")
    return lines


@vapid.command("list")
@click.option("--site", default=None, help="The site (default: the default site).")
def vapid_list(site: str | None) -> None:
    """The site's VAPID keys: which is current, which are retired, how many readers each still holds."""
    c, site_id = _ring_site(site)
    click.echo(f"site {site_id}:")
    for line in _key_lines(c, site_id):
        click.echo("  " + line)


@vapid.command("rotate")
@click.option("--site", default=None, help="The site whose key rotates (default: the default site).")
def vapid_rotate(site: str | None) -> None:
    """Make a new VAPID key current for the site's new readers.

    Every reader keeps being reached with the key it subscribed with; the site's pages and the embed move
    a reader bound to an old key to the new one on their next visit (one reader, never two).
    """
    c, site_id = _ring_site(site)
    key = c.keyring.rotate(site_id)
    click.echo(f"site {site_id}: new current VAPID key {key.key_id}")
    click.echo(f"public key: {key.public_key_b64}")
    for line in _key_lines(c, site_id):
        click.echo("  " + line)
    click.echo(
        "readers on older keys move to the new one on their next visit; retire an old key once it holds none"
    )


@vapid.command("retire")
@click.argument("key_id")
@click.option("--site", default=None, help="The site (default: the default site).")
@click.option(
    "--force", is_flag=True, help="Retire it although readers use it (they get nothing until they visit)."
)
def vapid_retire(key_id: str, site: str | None, force: bool) -> None:
    """Stop signing with an old VAPID key (refused while readers use it, unless --force)."""
    c, site_id = _ring_site(site)
    readers = c.subscriptions.count_by_key([key_id], site=site_id)[key_id]
    if readers and not force:
        raise click.ClickException(
            f"{readers:,} readers of site {site_id} are still bound to {key_id}: pushes to them are signed "
            "with it, and retiring it would leave them without news until they visit the site again. Wait "
            "until they have moved (`notifier vapid list`), or retire it anyway with --force"
        )
    try:
        c.keyring.retire(site_id, key_id)
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    extra = f"; {readers:,} readers bound to it get nothing until their next visit" if readers else ""
    click.echo(f"site {site_id}: retired {key_id}{extra}")


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
