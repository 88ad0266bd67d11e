"""``notifier status [--watch]``: queues, workers, campaigns in flight and subscribers as rich tables."""

from __future__ import annotations

import time
from typing import Any

import click
import redis
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from notifier import stats
from notifier.errors import NotifierError
from notifier_cli.common import load_context, redis_problem
from workers import inspect


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def render(c: Any, *, now: float | None = None, site: str | None = None) -> Group:
    """The status tables, read now from Redis and RQ."""

    now = time.time() if now is None else now
    r, raw, keys = c.redis, c.raw_redis, c.keys
    queues = Table(title="Queues")
    for col in ("queue", "waiting", "oldest", "started", "finished", "failed", "scheduled", "deferred"):
        queues.add_column(col, justify="left" if col == "queue" else "right")
    for q in inspect.queue_stats(raw, now=now):
        queues.add_row(
            q["name"],
            str(q["depth"]),
            _age(q["oldest_age"]),
            str(q["started"]),
            str(q["finished"]),
            str(q["failed"]),
            str(q["scheduled"]),
            str(q["deferred"]),
        )

    workers = Table(title="Workers")
    for col in ("worker", "host", "pid", "state", "current job", "last heartbeat", "ok", "failed"):
        workers.add_column(col)
    for w in inspect.worker_rows(raw, r, keys, now=now):
        beat = w["last_heartbeat"]
        state = f"[red]dead[/red] ({w['reason']})" if w["dead"] else w["state"]
        workers.add_row(
            w["name"],
            str(w["host"] or "-"),
            str(w["pid"] or "-"),
            state,
            w["current_job"] or "-",
            _age(now - beat) + " ago" if beat else "-",
            str(w["successful"] if w["successful"] is not None else "-"),
            str(w["failed"] if w["failed"] is not None else "-"),
        )

    tp = stats.throughput(r, keys, now=now, minutes=2)
    campaigns = Table(
        title=(
            f"Campaigns in flight ({tp['rate']} messages/s, {tp['last_minute']} messages in the last 60 s)"
        )
    )
    for col in ("id", "title", "state", "progress", "sent", "gone", "rejected", "failed", "rate/s"):
        campaigns.add_column(col)
    for row in stats.campaigns_in_flight(r, keys, now=now, sites=[site] if site else None):
        k = row["counters"]
        campaigns.add_row(
            row["id"],
            row["title"][:40],
            row["state"],
            f"{row['progress'] * 100:.1f}% ({row['done']}/{row['total']})",
            str(k["sent"]),
            str(k["gone"]),
            str(k["rejected"]),
            str(k["failed"]),
            str(row["rate"]),
        )

    slugs = (
        c.site(site).topic_slugs if site else tuple(dict.fromkeys(t for s in c.sites for t in s.topic_slugs))
    )
    subs = stats.subscribers(r, keys, slugs, now=now, sample=500, site=site)
    whose = f" of {site}" if site else ""
    people = Table(
        title=(
            f"Subscribers{whose}: {subs['total']} ({subs['quarantined']} quarantined, "
            f"{subs['unreachable']} unreachable, {subs['over_budget']} over their budget: breaking news only)"
        )
    )
    people.add_column("topic")
    people.add_column("subscribers", justify="right")
    for slug, n in subs["by_topic"].items():
        people.add_row(slug, str(n))
    parts: list[Any] = [queues, workers, campaigns, people]
    if len(c.sites) > 1 and site is None:
        by_site = Table(title="Sites")
        for col in ("site", "subscribers", "campaigns", "in flight", "sent"):
            by_site.add_column(col, justify="left" if col == "site" else "right")
        for row in stats.sites_summary(r, keys, list(c.sites)):
            by_site.add_row(
                row["id"],
                str(row["subscribers"]),
                str(row["campaigns"]),
                str(row["in_flight"]),
                str(row["sent"]),
            )
        parts.append(by_site)
    failed = inspect.failed_count(raw)
    if failed:
        parts.append(f"[red]{failed} failed jobs[/red]: see /ops/#failed")
    for alert in stats.alerts(r, keys, now=now):
        parts.append(f"[yellow]{alert['message']}[/yellow] — likely cause: {alert['cause']}")
    return Group(*parts)


@click.command()
@click.option("--watch", is_flag=True, help="Refresh every 2 seconds until Ctrl-C.")
@click.option("--interval", type=float, default=2.0, show_default=True, hidden=True)
@click.option("--site", "site_id", default=None, help="Subscribers and campaigns of this site only.")
def status(watch: bool, interval: float, site_id: str | None) -> None:
    """Queues, workers, campaigns in flight and subscribers (read from Redis and RQ)."""

    c = load_context()
    try:
        site = c.site(site_id).id if site_id else None
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    console = Console()
    if not watch:
        try:
            console.print(render(c, site=site))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise click.ClickException(f"{redis_problem(exc)}: no status to show") from exc
        return
    from rich.live import Live

    down_since: float | None = None

    def frame() -> Any:
        """The tables, or why there are none right now (the watch goes on through a failover)."""
        nonlocal down_since
        try:
            tables = render(c, site=site)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            down_since = down_since or time.monotonic()
            return Text(
                f"{redis_problem(exc)} for {time.monotonic() - down_since:.0f} s: a failover or a restart? "
                "Retrying every few seconds; the workers carry on.",
                style="yellow",
            )
        down_since = None
        return tables

    try:
        with Live(frame(), console=console, refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(interval)
                live.update(frame())
    except KeyboardInterrupt:
        pass
