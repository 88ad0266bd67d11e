"""``notifier users``: newsroom accounts (create, list, disable, enable, set a password)."""

from __future__ import annotations

import sys

import click

from notifier.errors import NotifierError
from notifier.users import ROLES, UserStore
from notifier_cli.common import load_context


def _store() -> UserStore:

    context = load_context()
    return UserStore(context.redis, context.keys)


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
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin (scripts)."
)
def create(email: str, role: str, password_stdin: bool) -> None:
    """Create an account; asks for the password twice (hidden)."""
    try:
        user = _store().create(email, _password(password_stdin), role)
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"created {user.email} ({user.role})")


@users.command("list")
def list_users() -> None:
    """Every account with its role and state."""
    accounts = _store().list()
    if not accounts:
        click.echo("no accounts yet: notifier users create EMAIL --role admin")
    for user in accounts:
        state = "disabled" if user.disabled else "active"
        click.echo(f"{user.email}\t{user.role}\t{state}")


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
