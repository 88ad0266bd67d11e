"""``notifier users``: newsroom accounts (create, list, disable, enable, set a password)."""

from __future__ import annotations

import sys

import click

from notifier.errors import NotifierError
from notifier.users import ROLES, User, UserStore
from notifier_cli.common import load_context


def _store() -> UserStore:
    return load_context().users


def _password(password_stdin: bool) -> str:
    """The new password: one line from stdin, or typed twice at a hidden prompt."""
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@click.group()
def users() -> None:
    """Newsroom accounts (editor, ops, admin)."""


@users.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="editor", show_default=True)
@click.option(
    "--site",
    "site_ids",
    multiple=True,
    help="A site the account works on (repeat; default: the default site).",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin (scripts)."
)
def create(email: str, role: str, site_ids: tuple[str, ...], password_stdin: bool) -> None:
    """Create an account; asks for the password twice (hidden). An admin works on every site."""
    c = load_context()
    try:
        sites = [c.site(s).id for s in site_ids]
        user = c.users.create(email, _password(password_stdin), role, sites=sites)
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    several = len(c.sites) > 1
    click.echo(f"created {user.email} ({_describe(user) if several else user.role})")


def _describe(user: User) -> str:
    if user.role == "admin" or user.site_roles is None:
        return f"{user.role} on every site"
    return ", ".join(f"{role} on {site}" for site, role in sorted(user.site_roles.items())) or "no site"


@users.command("grant")
@click.argument("email")
@click.argument("site_id")
@click.option("--role", type=click.Choice(["editor", "ops"]), default="editor", show_default=True)
def grant(email: str, site_id: str, role: str) -> None:
    """Give an account a role on a site (its other sites stay)."""
    c = load_context()
    try:
        user = c.users.grant(email, c.site(site_id).id, role)
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{user.email}: {_describe(user)}")


@users.command("revoke")
@click.argument("email")
@click.argument("site_id")
def revoke(email: str, site_id: str) -> None:
    """Take a site away from an account."""
    c = load_context()
    try:
        user = c.users.revoke(email, c.site(site_id).id)
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{user.email}: {_describe(user)}")


@users.command("list")
def list_users() -> None:
    """Every account with its role, state (and its sites, when the deployment has several)."""
    c = load_context()
    several = len(c.sites) > 1
    accounts = c.users.list()
    if not accounts:
        click.echo("no accounts yet: notifier users create EMAIL --role admin")
    for user in accounts:
        state = "disabled" if user.disabled else "active"
        sites = f"\t{_describe(user)}" if several else ""
        click.echo(f"{user.email}\t{user.role}\t{state}{sites}")


@users.command("disable")
@click.argument("email")
def disable(email: str) -> None:
    """Disable an account (its open sessions stop working at once)."""
    try:
        user = _store().set_disabled(email, True)
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"disabled {user.email}")


@users.command("enable")
@click.argument("email")
def enable(email: str) -> None:
    """Re-enable a disabled account."""
    try:
        user = _store().set_disabled(email, False)
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"enabled {user.email}")


@users.command("password")
@click.argument("email")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin (scripts)."
)
def password(email: str, password_stdin: bool) -> None:
    """Set a new password for an account."""
    try:
        _store().set_password(email, _password(password_stdin))
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"password changed for {email.strip().lower()}")
