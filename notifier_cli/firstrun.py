"""What ``notifier up`` tells a newcomer: where everything is, and on the first start a way in.

On the first start in development (no newsroom account at all) an admin account is created with a
generated password, printed once: the newcomer can open ``/newsroom`` and ``/ops`` straight away and
changes it with ``notifier users password``. The password is stored only as its argon2 hash; it is
never written anywhere else, never shown again, and never made in production (where the first
account is made with ``notifier users create EMAIL --role admin``). Once any account exists,
nothing is created.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis
from rich.console import Console
from rich.text import Text

from notifier.errors import Conflict
from notifier.keys import Keys
from notifier.settings import Settings
from notifier.users import UserStore

#: The first admin's email (``.localhost`` is reserved: it can never be someone's real address).
ADMIN_EMAIL = "admin@notifier.localhost"


@dataclass(frozen=True)
class WayIn:
    """How the newcomer signs in: the account, and its password only when it was just made."""

    email: str
    password: str | None
    accounts: int


def first_admin(settings: Settings, redis_url: str) -> WayIn | None:
    """Create the first admin in development when there is no account yet; None in production or test.

    Returns the way in: the new account with its password, or (accounts exist) how many there are.
    """
    if settings.env != "development":
        return None
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        store = UserStore(client, Keys(settings.redis_prefix))
        existing = store.list()
        if existing:
            admins = [u.email for u in existing if u.role == "admin" and not u.disabled]
            return WayIn(admins[0] if admins else existing[0].email, None, len(existing))
        password = secrets.token_urlsafe(12)  # 16 characters, 96 bits
        try:
            store.create(ADMIN_EMAIL, password, "admin")
        except Conflict:  # another `notifier up` made it a moment ago: its terminal shows the password
            return WayIn(ADMIN_EMAIL, None, 1)
        return WayIn(ADMIN_EMAIL, password, 1)
    finally:
        client.close()


def welcome(
    console: Console,
    *,
    site: str,
    simulator: str | None,
    way_in: WayIn | None,
) -> None:
    """Print where everything is and, when there is one, the way in (one write: no other line inside)."""
    with console.capture() as captured:
        _welcome(console, site=site, simulator=simulator, way_in=way_in)
    console.file.write(captured.get())
    console.file.flush()


def _welcome(console: Console, *, site: str, simulator: str | None, way_in: WayIn | None) -> None:
    base = site.rstrip("/")
    rows = [("site", f"{base}/"), ("newsroom", f"{base}/newsroom/"), ("ops", f"{base}/ops/")]
    if simulator:
        rows.append(("simulator", f"{simulator.rstrip('/')}/_sim/stats"))
    console.print()
    console.print(
        Text.assemble(("notifier is running", "bold green"), ("  (Ctrl-C stops everything)", "dim"))
    )
    for name, url in rows:
        console.print(Text.assemble((f"  {name:<11}", "bold"), (url, "cyan")))
    if way_in is None:
        console.print()
        return
    if way_in.password is not None:
        console.print(
            Text("first start: created an admin account for the newsroom and ops", style="bold yellow")
        )
        console.print(Text.assemble((f"  {'email':<11}", "bold"), way_in.email))
        console.print(Text.assemble((f"  {'password':<11}", "bold"), (way_in.password, "bold yellow")))
        console.print(
            Text(
                f"  shown this once: sign in at {base}/login, then set your own with "
                f"`notifier users password {way_in.email}`",
                style="dim",
            )
        )
    else:
        count = f"{way_in.accounts} account" + ("s" if way_in.accounts != 1 else "")
        console.print(
            Text(
                f"  sign in as {way_in.email} ({count}; forgot the password? "
                f"`notifier users password {way_in.email}`)",
                style="dim",
            )
        )
    console.print()
