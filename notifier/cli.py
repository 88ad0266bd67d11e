"""The ``notifier`` command. Every subcommand reads the same environment (see ``.env.example``).

Flask and RQ are imported inside the commands that need them, so that
``import notifier`` stays free of both.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from notifier.errors import ConfigError, NotifierError
from notifier.settings import Settings


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, or a clean exit with the reason."""
    try:
        return Settings.from_env(**overrides)
    except ConfigError as exc:
        raise click.ClickException(exc.message) from exc


def load_context(settings: Settings | None = None, *, generate_key: bool = False):  # type: ignore[no-untyped-def]
    """A Context for CLI commands, failing with a clear message."""
    from notifier.context import Context

    try:
        return Context.build(settings or load_settings(), generate_key=generate_key)
    except ConfigError as exc:
        raise click.ClickException(exc.message) from exc


@click.group()
@click.version_option(package_name="notifier")
def main() -> None:
    """notifier: self-hosted web push for news publishers."""


# -- keys and tokens ------------------------------------------------------------------------------


@main.group()
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
    from notifier.vapid import VapidKey, generate_private_key, write_private_key

    settings = load_settings()
    target = path or settings.vapid_key_path
    if target.exists():
        raise click.ClickException(f"{target} exists; refusing to overwrite a key subscribers depend on")
    key = generate_private_key()
    write_private_key(target, key)
    click.echo(f"wrote {target} (mode 0600)")
    click.echo(f"public key: {VapidKey(key, settings.vapid_subject).public_key_b64}")


@main.group()
def token() -> None:
    """API tokens for machines."""


@token.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["editor", "ops", "admin"]), default="editor", show_default=True)
def token_create(name: str, role: str) -> None:
    """Create an API token and print it (only its hash is stored)."""
    from notifier.tokens import TokenStore

    c = load_context()
    try:
        click.echo(TokenStore(c.redis, c.keys).create(name, role))
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc


@token.command("revoke")
@click.argument("name")
def token_revoke(name: str) -> None:
    """Revoke an API token by name."""
    from notifier.tokens import TokenStore

    c = load_context()
    if not TokenStore(c.redis, c.keys).revoke(name):
        raise click.ClickException(f"no token named {name!r}")
    click.echo(f"revoked {name}")


@token.command("list")
def token_list() -> None:
    """List token names."""
    from notifier.tokens import TokenStore

    c = load_context()
    for name in TokenStore(c.redis, c.keys).names():
        click.echo(name)


# -- campaigns ------------------------------------------------------------------------------------


def _follow(c: Any, cid: str) -> None:
    """Show a live progress bar until the campaign reaches a final state."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from notifier.campaigns import FINAL, CampaignStore

    store = CampaignStore(c.redis, c.keys)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    ) as progress:
        task = progress.add_task(cid, total=None, detail="")
        while True:
            campaign = store.get(cid)
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
            time.sleep(0.25)
    click.echo(json.dumps(store.get(cid).info(), indent=2, default=str))


@main.command()
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
) -> None:
    """Create a campaign and send it (now or at --at)."""
    from notifier.campaigns import CampaignStore, validate_campaign
    from workers.queues import launch

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
        item = validate_campaign(data, topics=c.topics, source="cli", created_by=f"cli:{getpass.getuser()}")
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    cid = CampaignStore(c.redis, c.keys).create(item)
    launch(c.raw_redis, cid, item.send_at)
    click.echo(f"campaign {cid} created")
    if wait and item.send_at is None:
        _follow(c, cid)


@main.group()
def campaigns() -> None:
    """List, show, cancel and resume campaigns."""


@campaigns.command("list")
@click.option("--limit", type=int, default=20, show_default=True)
def campaigns_list(limit: int) -> None:
    """Newest campaigns with state and counters."""
    from rich.console import Console
    from rich.table import Table

    from notifier.campaigns import CampaignStore

    c = load_context()
    table = Table("id", "state", "title", "total", "sent", "gone", "rejected", "failed", "clicked")
    for item in CampaignStore(c.redis, c.keys).list(0, limit):
        k = item.counters
        table.add_row(
            item.cid,
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
    from notifier.campaigns import CampaignStore

    c = load_context()
    try:
        campaign = CampaignStore(c.redis, c.keys).get(cid)
    except NotifierError as exc:
        raise click.ClickException(exc.message) from exc
    if follow:
        _follow(c, cid)
    else:
        click.echo(json.dumps(campaign.info(), indent=2, default=str))


@campaigns.command("cancel")
@click.argument("cid")
def campaigns_cancel(cid: str) -> None:
    """Cancel a campaign in flight."""
    from notifier.campaigns import CampaignStore

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
    from workers.queues import PLAN_QUEUE, queue

    c = load_context()
    job = queue(PLAN_QUEUE, c.raw_redis).enqueue("workers.jobs.resume_campaign", cid)
    click.echo(f"resume of {cid} queued as job {job.id}")


# -- processes ------------------------------------------------------------------------------------


@main.command()
@click.option("--burst", is_flag=True, help="Work until the queues are empty, then exit (for cron).")
@click.option("--name", default=None, help="Worker name (default host.pid).")
@click.option("--scheduler/--no-scheduler", default=True, show_default=True, help="Run RQ's scheduler too.")
def worker(burst: bool, name: str | None, scheduler: bool) -> None:
    """Run an RQ worker on every queue (many can run, on many machines)."""
    try:
        from workers.worker import main as run_worker

        run_worker(burst=burst, with_scheduler=scheduler, name=name)
    except ConfigError as exc:
        raise click.ClickException(exc.message) from exc


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
def serve(host: str, port: int) -> None:
    """Run the site (development server; use gunicorn in production, see README)."""
    from werkzeug.serving import WSGIRequestHandler

    from web import create_app

    class QuietRequestHandler(WSGIRequestHandler):
        """No werkzeug access line: the site logs every request itself, one JSON line with its request id."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return

    try:
        app = create_app()
    except ConfigError as exc:
        raise click.ClickException(exc.message) from exc
    app.run(host=host, port=port, threaded=True, use_reloader=False, request_handler=QuietRequestHandler)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8090, show_default=True)
@click.option("--tls", is_flag=True, help="Serve HTTPS with a self-signed certificate.")
@click.option(
    "--verify-fraction",
    type=float,
    default=1.0,
    show_default=True,
    help="Share of messages decrypted and checked.",
)
def simulator(host: str, port: int, tls: bool, verify_fraction: float) -> None:
    """Run the push service simulator (HTTP endpoints and Mozilla's WebSocket protocol)."""
    from notifier.simulator import serve as serve_simulator

    serve_simulator(host=host, port=port, tls=tls, verify_fraction=verify_fraction)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", "n_workers", type=int, default=1, show_default=True)
@click.option(
    "--simulator-port", type=int, default=0, help="Also run the push simulator on this port (demo)."
)
@click.option(
    "--embedded-redis", is_flag=True, help="Start the embedded Redis even when 127.0.0.1:6379 answers."
)
def up(host: str, port: int, n_workers: int, simulator_port: int, embedded_redis: bool) -> None:
    """The whole stack for a newcomer: Redis (embedded if none), VAPID key, site and worker(s)."""
    from notifier.redis_conn import EmbeddedRedis, redis_answers
    from notifier.settings import DEFAULT_REDIS_URL

    env = dict(os.environ)
    settings = load_settings()
    embedded: EmbeddedRedis | None = None
    if settings.redis_url:
        if not redis_answers(settings.redis_url):
            raise click.ClickException(f"REDIS_URL={settings.redis_url} does not answer")
    elif not embedded_redis and redis_answers(DEFAULT_REDIS_URL):
        click.echo(f"using the Redis at {DEFAULT_REDIS_URL}")
        env["REDIS_URL"] = DEFAULT_REDIS_URL
    else:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        env["REDIS_URL"] = embedded.start()
        click.echo(f"started an embedded Redis at {env['REDIS_URL']} (data in {settings.data_dir / 'redis'})")
    if not settings.vapid_private_key and not settings.vapid_key_path.exists():
        if settings.production:
            raise click.ClickException(
                "production needs a VAPID key: run `notifier vapid generate` once and keep it"
            )
        from notifier.vapid import load_vapid_key

        load_vapid_key(settings, generate=True)
        click.echo(f"generated a VAPID key in {settings.vapid_key_path}")
    if simulator_port:
        hosts = ",".join(filter(None, [env.get("NOTIFIER_PUSH_HOSTS", ""), f"127.0.0.1:{simulator_port}"]))
        env["NOTIFIER_PUSH_HOSTS"] = hosts
    env.setdefault("NOTIFIER_PUBLIC_URL", f"http://{host}:{port}")
    exe = [sys.executable, "-m", "notifier.cli"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if simulator_port:
            procs.append(subprocess.Popen([*exe, "simulator", "--port", str(simulator_port)], env=env))
        for i in range(n_workers):
            procs.append(subprocess.Popen([*exe, "worker", "--name", f"up-{os.getpid()}-{i}"], env=env))
        procs.append(subprocess.Popen([*exe, "serve", "--host", host, "--port", str(port)], env=env))
        click.echo(f"site on http://{host}:{port}/  (Ctrl-C stops everything)")
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        failed = [p for p in procs if p.poll() not in (None, 0)]
        if failed:
            raise click.ClickException(f"a process exited with code {failed[0].returncode}; stopping")
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        if embedded:
            embedded.stop()


# Command groups of other areas register themselves here, one line each.
main.add_command(
    __import__("notifier.cli_status").cli_status.status
)  # status [--watch] (queues, workers, ...)
main.add_command(__import__("notifier.cli_feeds").cli_feeds.feeds)  # feeds add|list|remove|poll
main.add_command(__import__("notifier.cli_bench").cli_bench.bench)  # bench (end-to-end fan-out benchmark)
main.add_command(
    __import__("notifier.cli_users").cli_users.users
)  # users create|list|disable|enable|password
__import__("notifier.cli_data").cli_data.register(main)  # export [--out FILE], import FILE (JSON lines)


if __name__ == "__main__":
    main()
