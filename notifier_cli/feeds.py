"""``notifier feeds``: add, list, remove and poll RSS/Atom feeds."""

from __future__ import annotations

from datetime import datetime

import click

from notifier.articles import ArticleIngest
from notifier.errors import NotifierError
from notifier.feeds import FeedPoller, FeedStore, PollResult, feed_fetcher
from notifier_cli.common import load_context
from workers.jobs import launch


def _parse_map(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        category, sep, topic = pair.partition("=")
        if not sep or not category.strip() or not topic.strip():
            raise click.BadParameter(f"{pair!r} is not category=topic", param_hint="--category-map")
        mapping[category.strip()] = topic.strip()
    return mapping


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "never"


@click.group()
def feeds() -> None:
    """RSS and Atom feeds whose new articles are pushed (or drafted for review)."""


@feeds.command("add")
@click.argument("url")
@click.option(
    "--topics", default="", help="Comma-separated topic slugs for items whose categories map to none."
)
@click.option(
    "--mode",
    type=click.Choice(["auto", "review"]),
    default="auto",
    show_default=True,
    help="auto: push at once; review: create drafts for an editor to approve.",
)
@click.option(
    "--category-map",
    "category_map",
    multiple=True,
    metavar="CATEGORY=TOPIC",
    help="Map a feed category to a topic; repeat for several.",
)
@click.option(
    "--site", "site_id", default=None, help="The site whose readers get its items (default: the default)."
)
def feeds_add(url: str, topics: str, mode: str, category_map: tuple[str, ...], site_id: str | None) -> None:
    """Add a feed of a site; only items published from now on are pushed."""

    c = load_context()
    try:
        site = c.site(site_id)
        feed = FeedStore(c.redis, c.keys).add(
            url,
            topics=[t.strip() for t in topics.split(",") if t.strip()],
            mode=mode,
            category_map=_parse_map(category_map),
            known_topics=site.topic_slugs,
            site=site.id,
            fetcher=feed_fetcher(c.settings, c.fetch_domains(site)),
        )
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(
        f"feed {feed.fid} added for site {site.id}: {feed.url} "
        f"(mode {feed.mode}, topics {','.join(feed.topics) or 'everyone'})"
    )


@feeds.command("list")
def feeds_list() -> None:
    """Every feed with its mode, topics and what its polls did."""

    c = load_context()
    items = FeedStore(c.redis, c.keys).list()
    if not items:
        click.echo("no feeds")
    for feed in items:
        status = (feed.last_status or "not polled yet") + (f": {feed.last_error}" if feed.last_error else "")
        mapping = ", ".join(f"{k}={v}" for k, v in feed.category_map.items()) or "-"
        click.echo(f"{feed.fid}  {feed.mode:6}  {feed.site or c.sites.default_id:10}  {feed.url}")
        click.echo(f"    topics {','.join(feed.topics) or 'everyone'}; category map {mapping}")
        click.echo(
            f"    last poll {_when(feed.last_polled)} ({status}); pushed {feed.pushed}, "
            f"skipped {feed.skipped}, duplicates {feed.duplicates}, invalid {feed.invalid}"
        )


@feeds.command("remove")
@click.argument("fid")
def feeds_remove(fid: str) -> None:
    """Remove a feed by id."""

    c = load_context()
    if not FeedStore(c.redis, c.keys).remove(fid):
        raise click.ClickException(f"no feed {fid}")
    click.echo(f"removed {fid}")


@feeds.command("poll")
def feeds_poll() -> None:
    """Poll every feed now, with progress, and push what is new."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    c = load_context()
    ingest = ArticleIngest(
        c.redis,
        c.keys,
        c.topics,
        lambda cid, at: launch(c.raw_redis, cid, at),
        default_site=c.sites.default_id,
    )
    poller = FeedPoller(c, ingest)
    feeds_now = poller.store.list()
    if not feeds_now:
        click.echo("no feeds; add one with `notifier feeds add URL`")
        return
    lines: list[str] = []
    with Progress(
        TextColumn("[bold]polling feeds"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[url]}")
    ) as progress:
        task = progress.add_task("poll", total=len(feeds_now), url="")

        def advance(result: PollResult) -> None:
            progress.update(task, advance=1, url=result.url)
            detail = f" ({result.error})" if result.error else ""
            lines.append(
                f"{result.fid} {result.status}{detail}: {result.new} new, {result.pushed} pushed, "
                f"{result.skipped} skipped (burst cap), {result.duplicates} duplicates, "
                f"{result.invalid} invalid"
            )

        for feed in feeds_now:
            advance(poller.poll(feed))
    for line in lines:
        click.echo(line)
