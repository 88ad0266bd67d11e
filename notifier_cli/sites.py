"""``notifier sites``: the publications this deployment serves (list, show, add, remove, check, ...).

Sites live in the sites file (``NOTIFIER_SITES_FILE``, else ``$NOTIFIER_DATA_DIR/sites.json``).
``add`` creates it on first use with the deployment's existing single site (``default``) in it, so
the readers already subscribed keep their site. Every change is validated as a whole, exactly as a
process validates it at start-up, before the file is replaced; processes read it when they start.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import click
import redis

from notifier.errors import ConfigError, NotifierError
from notifier.settings import Settings
from notifier.sites import (
    DEFAULT_SITE_ID,
    SITE_ID,
    SITE_LANGS,
    Site,
    Sites,
    format_quiet_hours,
    implicit_site,
    load_sites,
    parse_sites,
    sites_document,
    sites_path,
    write_sites_file,
)
from notifier.subscriptions import SubscriptionStore
from notifier.vapid import VapidKey, generate_private_key, load_site_keys, load_vapid_key, write_private_key
from notifier_cli.common import load_settings

RESTART = "restart `notifier serve` and the workers (or `notifier up`) to apply"


def _sites(settings: Settings) -> Sites:
    try:
        return load_sites(settings)
    except ConfigError as exc:
        raise click.ClickException(exc.message) from exc


def _counts(settings: Settings, sites: Sites) -> dict[str, int] | None:
    """Subscriptions per site, or None when Redis does not answer (the file commands work without it)."""
    from notifier.keys import Keys
    from notifier.redis_conn import connect

    try:
        client = connect(settings.effective_redis_url)
        try:
            return SubscriptionStore(client, Keys(settings.redis_prefix)).count_by_site(list(sites.ids))
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return None


def snippet(public_url: str, site: Site) -> str:
    """The tag a publisher pastes where the widget should appear."""
    base = public_url.rstrip("/")
    script = f'<script src="{base}/embed.js" data-site="{site.id}" async></script>'
    return f"<div data-notifier-widget></div>\n{script}"


def worker_file(public_url: str, site: Site) -> str:
    """The service-worker file a publisher hosts at its origin's root (``/notifier-sw.js``)."""
    return f'importScripts("{public_url.rstrip("/")}/sw/{site.id}.js");'


@click.group()
def sites() -> None:
    """The sites (publications) this deployment serves."""


@sites.command("list")
def list_sites() -> None:
    """Every site: id, name, origins, language, topics, key and subscribers."""
    settings = load_settings()
    found = _sites(settings)
    counts = _counts(settings, found)
    source = found.source or "no sites file: the single site of the settings"
    click.echo(f"sites from {source}")
    for site in found:
        mark = "*" if site.id == found.default_id else " "
        key = "own key" if site.vapid_key_file else "deployment key"
        subs = "?" if counts is None else str(counts.get(site.id, 0))
        click.echo(
            f"{mark} {site.id}\t{site.name}\t{' '.join(site.origins)}\t{site.lang}\t"
            f"{len(site.topics)} topics\t{key}\t{subs} subscribers"
        )
    if counts is None:
        click.echo("(Redis did not answer: subscriber counts unknown)")


def standing_lines(site: Site, settings: Settings) -> list[str]:
    """The site's reader-standing rules, each saying whether it is the site's own or the deployment's."""
    rules = site.standing_rules(settings)
    whose = {name: "site" if getattr(site, name) is not None else "deployment" for name in rules}
    after, budget, hold = rules["unreachable_after"], rules["reader_budget"], rules["long_hold_after"]
    return [
        "unreachable  "
        + (
            f"after {after} pushes in a row none shown"
            if after
            else "off (no reader is left out as unreachable)"
        )
        + f" [{whose['unreachable_after']}: unreachable_after]",
        "budget       "
        + (
            f"{budget} pushes in a row none clicked, then breaking news only"
            if budget
            else "off (no reader budget)"
        )
        + f" [{whose['reader_budget']}: reader_budget]",
        "long hold    "
        + (
            f"a Retry-After over {hold} s holds that service for the campaign"
            if hold
            else "off (every wait is retried)"
        )
        + f" [{whose['long_hold_after']}: long_hold_after]",
    ]


@sites.command("show")
@click.argument("site_id")
def show(site_id: str) -> None:
    """One site in full, with the tag and the worker file its publisher needs."""
    settings = load_settings()
    found = _sites(settings)
    try:
        site = found.get(site_id)
        deployment = load_vapid_key(settings)
        key: VapidKey = load_site_keys(found, deployment)[site.id]
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    counts = _counts(settings, found)
    click.echo(f"site {site.id}{' (default)' if site.id == found.default_id else ''}: {site.name}")
    click.echo(f"  origins      {', '.join(site.origins)}")
    click.echo(f"  front page   {site.url}")
    click.echo(f"  language     {site.lang}")
    click.echo(f"  topics       {', '.join(f'{t.slug} ({t.name_id} / {t.name_en})' for t in site.topics)}")
    click.echo(f"  VAPID key    {site.vapid_key_file or 'the deployment key'}: {key.public_key_b64}")
    quiet = site.quiet(settings)
    click.echo(f"  quiet hours  {format_quiet_hours(quiet) or 'none'} ({site.zone(settings)})")
    click.echo(f"  cap          {site.freq_cap(settings) or 'none'} non-breaking pushes per reader per hour")
    click.echo(f"  fetches from {', '.join(found.fetch_domains(site, settings)) or 'nowhere (prefill off)'}")
    webhook = (
        f"its own secret ({site.webhook_secret_file})"
        if site.webhook_secret
        else "the deployment's NOTIFIER_WEBHOOK_SECRET"
        if settings.webhook_secret
        else "off (no secret)"
    )
    click.echo(f"  webhook      {webhook}")
    for line in standing_lines(site, settings):
        click.echo(f"  {line}")
    if counts is not None:
        click.echo(f"  subscribers  {counts.get(site.id, 0)}")
    click.echo("\nPaste where the widget should appear:\n")
    click.echo(snippet(settings.public_url, site))
    click.echo("\nHost at the root of each origin, as /notifier-sw.js (docs/embed.md):\n")
    click.echo(worker_file(settings.public_url, site))


@sites.command("add")
@click.argument("site_id")
@click.option("--name", required=True, help="The publication's name readers see.")
@click.option("--origin", "origins", multiple=True, required=True, help="https://host of its pages (repeat).")
@click.option("--lang", type=click.Choice(SITE_LANGS), default="id", show_default=True)
@click.option("--url", default="", help="Its front page (default: the first origin).")
@click.option(
    "--topics-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help='JSON [{"slug", "id", "en"}] (default: the deployment\'s topics).',
)
@click.option("--own-key", is_flag=True, help="Generate a VAPID key of its own (default: the deployment's).")
@click.option("--default", "make_default", is_flag=True, help="Make it the default site.")
def add(
    site_id: str,
    name: str,
    origins: tuple[str, ...],
    lang: str,
    url: str,
    topics_file: Path | None,
    own_key: bool,
    make_default: bool,
) -> None:
    """Declare a site (creating the sites file, with the existing single site in it, on first use)."""
    settings = load_settings()
    if not SITE_ID.match(site_id):
        raise click.ClickException(
            "a site id is 1-32 lower-case letters, digits and dashes, starting with a letter"
        )
    current = _sites(settings)
    path = sites_path(settings)
    base = path.parent
    if current.find(site_id) is not None:
        raise click.ClickException(f"site {site_id!r} exists in {path}")
    document = sites_document(current, base.resolve())
    if current.source is None:
        document = sites_document(Sites((implicit_site(settings),), DEFAULT_SITE_ID), base.resolve())
    entry: dict[str, object] = {"id": site_id, "name": name, "origins": list(origins), "lang": lang}
    if url:
        entry["url"] = url
    if topics_file is not None:
        entry["topics"] = json.loads(topics_file.read_text("utf-8"))
    key_path = base / f"{site_id}-vapid.pem"
    if own_key:
        if key_path.exists():
            raise click.ClickException(f"{key_path} exists; refusing to overwrite a key readers depend on")
        entry["vapid_key_file"] = key_path.name
    document["sites"].append(entry)
    if make_default:
        document["default"] = site_id
    try:
        if own_key:
            write_private_key(key_path, generate_private_key())
        parse_sites(document, settings=settings, base=base, source=path)
    except ConfigError as exc:
        if own_key:
            key_path.unlink(missing_ok=True)
        raise click.ClickException(exc.message) from exc
    write_sites_file(path, document)
    click.echo(f"added site {site_id} to {path}; {RESTART}")
    if own_key:
        click.echo(f"wrote its VAPID key {key_path} (mode 0600): back it up, its readers depend on it")


@sites.command("remove")
@click.argument("site_id")
def remove(site_id: str) -> None:
    """Take a site out of the sites file (its subscriptions and campaigns stay in Redis, unsent)."""
    settings = load_settings()
    current = _sites(settings)
    if current.source is None:
        raise click.ClickException(
            "there is no sites file: the single site of the settings cannot be removed"
        )
    site = current.find(site_id)
    if site is None:
        raise click.ClickException(f"no site {site_id!r} in {current.source}")
    if site.id == current.default_id:
        raise click.ClickException(f"{site_id!r} is the default site: make another one the default first")
    base = current.source.parent
    document = sites_document(current, base.resolve())
    document["sites"] = [s for s in document["sites"] if s["id"] != site_id]
    write_sites_file(current.source, document)
    counts = _counts(settings, current)
    left = "" if counts is None else f"; its {counts.get(site_id, 0)} subscriptions stay in Redis"
    click.echo(f"removed site {site_id} from {current.source}{left}; {RESTART}")


@sites.command("check")
def check() -> None:
    """Validate the sites and their keys as a process does at start-up."""
    settings = load_settings()
    found = _sites(settings)
    try:
        load_site_keys(found, load_vapid_key(settings))
    except ConfigError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"{len(found)} site(s) OK ({', '.join(found.ids)}; default {found.default_id})")


@sites.command("webhook-secret")
@click.argument("site_id")
@click.option(
    "--new", "renew", is_flag=True, help="Replace the site's secret (its CMS must then use the new one)."
)
@click.option(
    "--remove", is_flag=True, help="Drop the site's own secret (the deployment's signs for it again)."
)
def webhook_secret(site_id: str, renew: bool, remove: bool) -> None:
    """Give a site a webhook secret of its own (printed once, for its CMS): the signature decides the site."""
    settings = load_settings()
    current = _sites(settings)
    if current.source is None:
        raise click.ClickException("there is no sites file: `notifier sites add` creates it")
    site = current.find(site_id)
    if site is None:
        raise click.ClickException(f"no site {site_id!r} in {current.source}")
    if renew and remove:
        raise click.ClickException("give --new or --remove, not both")
    base = current.source.parent
    document = sites_document(current, base.resolve())
    entry = next(e for e in document["sites"] if e["id"] == site_id)
    if remove:
        if site.webhook_secret_file is None:
            raise click.ClickException(f"site {site_id!r} has no webhook secret of its own")
        entry.pop("webhook_secret_file", None)
        write_sites_file(current.source, document)
        site.webhook_secret_file.unlink(missing_ok=True)
        click.echo(f"site {site_id} signs with the deployment's NOTIFIER_WEBHOOK_SECRET again; {RESTART}")
        return
    if site.webhook_secret_file is not None and not renew:
        raise click.ClickException(
            f"site {site_id!r} has a webhook secret in {site.webhook_secret_file}; --new replaces it"
        )
    path = site.webhook_secret_file or base / f"{site_id}-webhook.secret"
    value = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    entry["webhook_secret_file"] = os.path.relpath(path.resolve(), base.resolve())
    try:
        os.replace(tmp, path)
        parse_sites(document, settings=settings, base=base, source=current.source)
    except (ConfigError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise click.ClickException(str(exc)) from exc
    write_sites_file(current.source, document)
    click.echo(f"wrote site {site_id}'s webhook secret to {path} (mode 0600); its CMS signs with:")
    click.echo(value)
    click.echo(f"requests signed with it are site {site_id}'s whatever their body says; {RESTART}")
