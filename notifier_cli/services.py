"""``notifier services``: the push services' holds and breakers, and the deletions held for review.

A breaker (``notifier.breakers``) opens when a push service answers as no set of readers would:
404/410 far above its normal rate (its deletions are then held for review, not done) or 400/401/403
to nearly everything (our key). Campaigns hold their messages to that service back until a sample
of them is answered normally after the cool-down (the breaker closes by itself; held deletions stay
held) or an operator acts:

    notifier services list                  # every service with a hold, an open breaker or held deletions
    notifier services resume SERVICE        # the cause is fixed: close its breakers, send what was held
    notifier services held SERVICE          # the subscriptions it called gone while its breaker was open
    notifier services restore SERVICE       # the service was wrong: keep them all (nothing was deleted)
    notifier services release SERVICE       # they are gone after all: delete them (asks first)
"""

from __future__ import annotations

import time

import click
from rich.console import Console
from rich.table import Table

from notifier.breakers import Breakers, Policy, release_held_deletions
from notifier.campaigns import CampaignStore
from notifier.context import Context
from notifier.delivery import Delivery
from notifier.errors import Conflict
from notifier.holds import ServiceHolds
from notifier.stats import probe_text, recoveries
from notifier_cli.common import load_context
from workers.jobs import batch_enqueuer


def _breakers(c: Context) -> Breakers:
    return Breakers(c.redis, c.keys, Policy.from_settings(c.settings))


def _known(c: Context, breakers: Breakers, service: str) -> None:
    """Refuse a service name nothing knows about (a typo must not look like success)."""
    campaigns = CampaignStore(c.redis, c.keys)
    holding = [x.cid for x in campaigns.active() if service in campaigns.holds(x.cid)]
    if service in breakers.open() or breakers.held_count(service) or holding:
        return
    if any(h.service == service for h in ServiceHolds(c.redis, c.keys).active()):
        return
    raise click.ClickException(
        f"no push service {service!r} is held, has an open breaker or held deletions "
        "(`notifier services list` shows those that do)"
    )


@click.group()
def services() -> None:
    """Push services: holds (429/503), breakers (404/410, key problems) and held deletions."""


@services.command("list")
def services_list() -> None:
    """Every push service with a hold, an open breaker, held deletions or held campaign messages."""
    c = load_context()
    breakers = _breakers(c)
    now = time.time()
    opened = breakers.open()
    holds = {h.service: h for h in ServiceHolds(c.redis, c.keys).active(now)}
    campaigns = CampaignStore(c.redis, c.keys)
    holding: dict[str, list[str]] = {}
    for campaign in campaigns.active():
        for service in campaigns.holds(campaign.cid):
            n = campaigns.held_count(campaign.cid, service)
            holding.setdefault(service, []).append(f"{campaign.cid} ({n} held)")
    names = sorted(set(opened) | set(holds) | set(breakers.held_services()) | set(holding))
    if not names:
        click.echo("no push service is held: every breaker is closed and no deletion waits for review")
        return
    probes = {p.service: p for p in breakers.probes()}
    recovered = recoveries(c.redis, c.keys, now=now)
    names = sorted(set(names) | set(recovered))
    table = Table("service", "429/503 hold", "breakers", "held deletions", "campaigns holding it")
    for name in names:
        hold = holds.get(name)
        state = "\n".join(trip.reason() for trip in opened.get(name, {}).values())
        if state and name in probes:
            state += "\n" + probe_text(probes[name], now)
        elif not state and name in recovered:
            state = f"closed: recovered by itself ({recovered[name]['last']})"
        table.add_row(
            name,
            f"{hold.until - now:.0f} s (HTTP {hold.status})" if hold else "-",
            state or "closed",
            str(breakers.held_count(name)),
            "\n".join(holding.get(name, [])) or "-",
        )
    Console(width=200).print(table)


@services.command("resume")
@click.argument("service")
def services_resume(service: str) -> None:
    """The cause is fixed: close SERVICE's breakers and send what every campaign held back from it."""
    c = load_context()
    breakers = _breakers(c)
    _known(c, breakers, service)
    delivery = Delivery(c)
    queued = delivery.resume_service(service, lambda cid: batch_enqueuer(c.raw_redis, cid))
    total = sum(queued.values())
    click.echo(f"{service}: breakers closed; {total} held messages queued in {len(queued)} campaign(s)")
    for cid, n in sorted(queued.items()):
        click.echo(f"  {cid}: {n}")
    left = breakers.held_count(service)
    if left:
        click.echo(
            f"{left} deletions of {service} still wait for review: "
            f"`notifier services restore {service}` keeps them, `release` deletes them"
        )


@services.command("held")
@click.argument("service")
@click.option("--limit", type=int, default=20, show_default=True, help="Rows to show.")
def services_held(service: str, limit: int) -> None:
    """The subscriptions SERVICE called gone while its breaker was open (nothing was deleted)."""
    c = load_context()
    breakers = _breakers(c)
    total = breakers.held_count(service)
    click.echo(f"{total} deletions of {service} held for review")
    table = Table("subscription", "status", "answered at", "campaign")
    for h in breakers.held_deletions(service, limit=limit):
        table.add_row(h.sid, str(h.status), time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h.at)), h.cid)
    Console(width=200).print(table)


@services.command("restore")
@click.argument("service")
def services_restore(service: str) -> None:
    """The service was wrong: keep every held subscription of SERVICE and send them what they missed.

    Each campaign whose message a held 404/410 stood for is sent again to that reader, once, if it is
    still within its TTL. Refused while a breaker of SERVICE is open (resume it first).
    """
    c = load_context()
    if not _breakers(c).held_count(service):
        raise click.ClickException(f"no deletions of {service!r} are held")
    try:
        done = Delivery(c).restore_service(service, lambda cid: batch_enqueuer(c.raw_redis, cid))
    except Conflict as exc:
        raise click.ClickException(str(exc)) from exc
    resent = sum(done.resent.values())
    click.echo(
        f"{service}: {done.kept} subscriptions kept; {resent} missed messages sent again "
        f"in {len(done.resent)} campaign(s)"
    )
    for cid, n in sorted(done.resent.items()):
        click.echo(f"  {cid}: {n} sent again")
    for cid, n in sorted(done.expired.items()):
        click.echo(f"  {cid}: {n} not sent again (past its TTL: stale news)")
    for cid, n in sorted(done.not_sent.items()):
        click.echo(f"  {cid}: {n} not sent again (the campaign was cancelled or failed)")


@services.command("release")
@click.argument("service")
@click.option("--yes", is_flag=True, help="Do not ask (for scripts); the count is still printed.")
def services_release(service: str, yes: bool) -> None:
    """They are gone after all: delete the held subscriptions of SERVICE. Cannot be undone."""
    c = load_context()
    breakers = _breakers(c)
    n = breakers.held_count(service)
    if not n:
        raise click.ClickException(f"no deletions of {service!r} are held")
    if service in breakers.open() and "gone" in breakers.open()[service]:
        click.echo(f"note: the gone breaker of {service} is still open (`notifier services list`)")
    if not yes:
        click.confirm(f"Delete {n} subscriptions of {service} for good?", abort=True)
    deleted, kept = release_held_deletions(breakers, c.subscriptions, service)
    click.echo(f"{service}: {deleted} subscriptions deleted; {kept} kept (subscribed again since)")
