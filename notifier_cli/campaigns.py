"""``notifier send`` and ``notifier campaigns``: create a campaign, follow it, list, cancel and resume."""

from __future__ import annotations

import getpass
import json
import time
from typing import Any

import click
import redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from notifier import stats
from notifier.campaigns import FINAL, PAUSED, Campaign, CampaignStore, validate_campaign
from notifier.errors import NotifierError
from notifier_cli.common import load_context, patiently, redis_problem
from workers.jobs import enqueue_resume, launch

#: Seconds a follower waits for a Redis that does not answer before it gives up (the campaign goes on).
FOLLOW_PATIENCE = 600.0


def _follow(c: Any, cid: str, *, patience: float = FOLLOW_PATIENCE, interval: float = 0.25) -> None:
    """Show a live progress bar until the campaign reaches a final state.

    Redis failing over or restarting is not the campaign failing: the bar says Redis is unreachable,
    keeps asking, and carries on once it answers (the workers go on meanwhile). After ``patience``
    seconds without an answer it exits non-zero, saying how to follow the campaign again.
    """

    store = CampaignStore(c.redis, c.keys)
    down_since: float | None = None
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    ) as progress:
        task = progress.add_task(cid, total=None, detail="")
        while True:
            try:
                campaign = store.get(cid)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                now = time.monotonic()
                if down_since is None:
                    down_since = now
                    progress.console.print(
                        f"[yellow]{redis_problem(exc)}: a failover or a restart? The workers carry on; "
                        "following again as soon as Redis answers.[/yellow]"
                    )
                if now - down_since > patience:
                    raise click.ClickException(
                        f"Redis has not answered for {patience:.0f} s; campaign {cid} goes on in the "
                        f"workers. Follow it again with: notifier campaigns show {cid} --follow"
                    ) from exc
                progress.update(task, detail=f"Redis unreachable for {now - down_since:.0f} s, retrying")
                time.sleep(1.0)
                continue
            if down_since is not None:
                progress.console.print(
                    f"Redis answers again after {time.monotonic() - down_since:.1f} s; following {cid}"
                )
                down_since = None
            k = campaign.counters
            progress.update(
                task,
                total=k["total"] or None,
                completed=campaign.done_count,
                description=campaign.state,
                detail=" ".join(f"{n} {k[n]}" for n in ("sent", "gone", "rejected", "failed", "retried")),
            )
            if campaign.state in FINAL or campaign.state == "paused":
                break
            time.sleep(interval)
    click.echo(json.dumps(shown(c, campaign), indent=2, default=str))


@click.command()
@click.option("--title", required=True)
@click.option("--body", required=True)
@click.option("--url", required=True, help="The article URL the notification opens.")
@click.option("--image", default="")
@click.option("--topic", "topics", multiple=True, help="Topic slug; repeat for several; none means everyone.")
@click.option(
    "--ttl",
    type=int,
    default=None,
    help="Seconds the push service keeps it (default 6 h breaking, 24 h otherwise).",
)
@click.option("--urgency", type=click.Choice(["very-low", "low", "normal", "high"]), default=None)
@click.option(
    "--breaking", is_flag=True, help="Breaking news: high urgency, passes frequency cap and quiet hours."
)
@click.option("--at", "send_at", default=None, help="ISO 8601 time with zone, e.g. 2026-12-01T07:00+07:00.")
@click.option("--wait/--no-wait", default=True, help="Follow the campaign with a progress bar.")
@click.option(
    "--site", "site_id", default=None, help="The site whose readers get it (default: the default site)."
)
def send(
    title: str,
    body: str,
    url: str,
    image: str,
    topics: tuple[str, ...],
    ttl: int | None,
    urgency: str | None,
    breaking: bool,
    send_at: str | None,
    wait: bool,
    site_id: str | None,
) -> None:
    """Create a campaign for a site's readers and send it (now or at --at)."""

    c = load_context()
    data: dict[str, Any] = {
        "title": title,
        "body": body,
        "url": url,
        "image": image,
        "breaking": breaking,
        "topics": list(topics) or None,
        "ttl": ttl,
        "urgency": urgency,
        "send_at": send_at,
    }
    try:
        site = c.site(site_id)
        item = validate_campaign(
            data, topics=site.topics, source="cli", created_by=f"cli:{getpass.getuser()}", site=site.id
        )
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    try:
        cid = CampaignStore(c.redis, c.keys).create(item)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise click.ClickException(f"{redis_problem(exc)}: the campaign was not created") from exc
    # Queuing the planning job again is harmless (same job id), so it may wait out a failover.
    patiently(
        f"queue the planning of campaign {cid} (it is stored; if this fails, "
        f"`notifier campaigns cancel {cid}` and send again)",
        lambda: launch(c.raw_redis, cid, item.send_at),
        patience=c.settings.redis_failover_wait,
    )
    click.echo(f"campaign {cid} created for site {site.id}")
    if wait and item.send_at is None:
        _follow(c, cid)


@click.group()
def campaigns() -> None:
    """List, show, cancel and resume campaigns."""


@campaigns.command("list")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--site", "site_ids", multiple=True, help="Only this site's (repeat for several).")
def campaigns_list(limit: int, site_ids: tuple[str, ...]) -> None:
    """Newest campaigns with site, state and counters."""

    c = load_context()
    try:
        sites = [c.site(s).id for s in site_ids] or None
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    table = Table("id", "site", "state", "title", "total", "sent", "gone", "rejected", "failed", "clicked")
    for item in CampaignStore(c.redis, c.keys).list(0, limit, sites=sites):
        k = item.counters
        table.add_row(
            item.cid,
            item.site,
            item.state,
            item.title[:40],
            *(str(k[n]) for n in ("total", "sent", "gone", "rejected", "failed", "clicked")),
        )
    Console().print(table)


@campaigns.command("show")
@click.argument("cid")
@click.option("--follow", is_flag=True, help="Follow with a progress bar until it ends.")
def campaigns_show(cid: str, follow: bool) -> None:
    """A campaign's state and counters (JSON)."""

    c = load_context()
    try:
        campaign = CampaignStore(c.redis, c.keys).get(cid)
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    if follow:
        _follow(c, cid)
    else:
        click.echo(json.dumps(shown(c, campaign), indent=2, default=str))


def shown(c: Any, campaign: Campaign) -> dict[str, Any]:
    """The campaign's JSON, with its audience and the readers its planning left out beside it."""
    figures = stats.left_out(c.subscriptions, campaign, c.sites, c.settings)
    if figures["shown"]:
        line = stats.left_out_text(figures) + ("" if figures["planned"] else " (if it were sent now)")
    elif figures["urgent"]:
        line = "none: an urgent alert reaches unreachable and over-budget readers too"
    else:
        line = "none: a test send goes to the editor's own browsers"
    readers = {k: figures[k] for k in ("readers", "unreachable", "over_budget", "planned")}
    return {**campaign.info(), "readers": {**readers, "left_out": line}}


@campaigns.command("cancel")
@click.argument("cid")
def campaigns_cancel(cid: str) -> None:
    """Cancel a campaign in flight."""

    c = load_context()
    try:
        campaign = CampaignStore(c.redis, c.keys).cancel(cid)
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{cid}: {campaign.state}")


@campaigns.command("resume")
@click.argument("cid")
def campaigns_resume(cid: str) -> None:
    """Resume a campaign that paused itself (after fixing the VAPID key or subject)."""

    c = load_context()
    store = CampaignStore(c.redis, c.keys)
    try:
        campaign = store.get(cid)
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    holds = store.holds(cid)
    if campaign.state != PAUSED and not holds:
        raise click.ClickException(
            f"campaign {cid} is {campaign.state}: only a paused campaign, or one holding messages back "
            "from a push service, can be resumed"
        )
    job_id = enqueue_resume(c.raw_redis, cid)
    held = f" (held back from {', '.join(sorted(holds))})" if holds else ""
    click.echo(f"resume of {cid}{held} queued as job {job_id}")
