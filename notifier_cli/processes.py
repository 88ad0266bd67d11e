"""``notifier worker``, ``serve``, ``simulator`` and ``up``: the processes of the service."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import click
from rich.console import Console

from notifier.errors import ConfigError
from notifier.redis_conn import EmbeddedRedis, redis_answers
from notifier.settings import DEFAULT_REDIS_URL, Settings
from notifier.vapid import load_vapid_key
from notifier_cli.common import load_settings
from notifier_cli.firstrun import first_admin, welcome
from workers.logging import TAG_ENV, ConsoleHandler, wants_json


@click.command()
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


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
def serve(host: str, port: int) -> None:
    """Run the site (development server; use gunicorn in production, see README)."""
    import logging

    from werkzeug.serving import WSGIRequestHandler, make_server

    from web import create_app
    from web.logging import setup_site_logging

    class QuietRequestHandler(WSGIRequestHandler):
        """No werkzeug access line: the site logs every request itself, one line with its request id."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return

    settings = load_settings()
    level = logging.getLevelName(settings.log_level.upper())
    setup_site_logging(
        settings.log_json, production=settings.production, level=level, tag=settings.log_tag or "site"
    )
    try:
        app = create_app()
    except ConfigError as exc:
        raise click.ClickException(exc.message) from exc

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # `notifier up` stops its children with SIGTERM: end cleanly
    # make_server, not app.run: no banner of Flask's and werkzeug's beside the site's own lines.
    server = make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)
    log = logging.getLogger("web.serve")
    log.info("site up on http://%s:%d/ (development server)", host, server.server_port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        log.info("site down")


@click.command()
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
@click.option(
    "--http2/--no-http2",
    default=True,
    show_default=True,
    help="With --tls, offer HTTP/2 by ALPN (push POSTs on streams) beside HTTP/1.1.",
)
@click.option(
    "--h2-max-streams",
    type=click.IntRange(1, 100_000),
    default=100,
    show_default=True,
    help="SETTINGS_MAX_CONCURRENT_STREAMS of each HTTP/2 connection.",
)
def simulator(
    host: str, port: int, tls: bool, verify_fraction: float, http2: bool, h2_max_streams: int
) -> None:
    """Run the push service simulator (HTTP/1.1 and, over TLS, HTTP/2; Mozilla's WebSocket protocol)."""
    from notifier_simulator.server import Http2Options
    from notifier_simulator.server import serve as serve_simulator

    serve_simulator(
        host=host,
        port=port,
        tls=tls,
        verify_fraction=verify_fraction,
        http2=Http2Options(http2, h2_max_streams),
    )


@click.command()
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

    env = dict(os.environ)
    settings = load_settings()
    procs: list[subprocess.Popen[bytes]] = []
    started: list[EmbeddedRedis] = []

    def stop_on_signal(signum: int, frame: object) -> None:
        # systemd, Docker and `kill` stop with SIGTERM, a closed terminal sends SIGHUP: end like Ctrl-C,
        # children and the embedded Redis included (Python's default would end this process alone and
        # leave the site, workers, simulator and Redis running).
        raise KeyboardInterrupt

    # From the very start: a signal while the embedded Redis starts must stop it too.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop_on_signal)
    try:
        _run_stack(env, settings, host, port, n_workers, simulator_port, embedded_redis, procs, started)
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
        for embedded in started:
            embedded.stop()


def _run_stack(
    env: dict[str, str],
    settings: Settings,
    host: str,
    port: int,
    n_workers: int,
    simulator_port: int,
    embedded_redis: bool,
    procs: list[subprocess.Popen[bytes]],
    started: list[EmbeddedRedis],
) -> None:
    """Start Redis (embedded when none answers), the key, the simulator, workers and site; watch them.

    Every process it starts goes into ``procs`` / ``started`` as it starts, so the caller stops
    whatever is running whenever this ends (a signal, a child's exit, an error).
    """
    if settings.redis_url:
        if not redis_answers(settings.redis_url):
            raise click.ClickException(f"REDIS_URL={settings.redis_url} does not answer")
    elif not embedded_redis and redis_answers(DEFAULT_REDIS_URL):
        click.echo(f"using the Redis at {DEFAULT_REDIS_URL}")
        env["REDIS_URL"] = DEFAULT_REDIS_URL
    else:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        started.append(embedded)
        try:
            env["REDIS_URL"] = embedded.start()
        except ConfigError as exc:  # the folder in use by another embedded Redis, or it would not start
            raise click.ClickException(exc.message) from exc
        click.echo(f"started an embedded Redis at {env['REDIS_URL']} (data in {settings.data_dir / 'redis'})")
    if not settings.vapid_private_key and not settings.vapid_key_path.exists():
        if settings.production:
            raise click.ClickException(
                "production needs a VAPID key: run `notifier vapid generate` once and keep it"
            )

        load_vapid_key(settings, generate=True)
        click.echo(f"generated a VAPID key in {settings.vapid_key_path}")
    if simulator_port:
        hosts = ",".join(filter(None, [env.get("NOTIFIER_PUSH_HOSTS", ""), f"127.0.0.1:{simulator_port}"]))
        env["NOTIFIER_PUSH_HOSTS"] = hosts
    env.setdefault("NOTIFIER_PUBLIC_URL", f"http://{host}:{port}")
    # Each child tags its lines (site / worker-1 / sim); on a terminal they share it, inherited.
    readable = not wants_json(settings.log_json, production=settings.production, stream=sys.stderr)
    way_in = first_admin(settings, env["REDIS_URL"])
    exe = [sys.executable, "-m", "notifier_cli"]
    if simulator_port:
        sim_env = {**env, TAG_ENV: "sim"}
        if readable:  # the simulator prints plain lines: tagged here, like the others' lines
            sim = subprocess.Popen(
                [*exe, "simulator", "--port", str(simulator_port)],
                env=sim_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            threading.Thread(target=_relay, args=(sim, "sim"), name="sim-lines", daemon=True).start()
        else:
            sim = subprocess.Popen([*exe, "simulator", "--port", str(simulator_port)], env=sim_env)
        procs.append(sim)
    for i in range(n_workers):
        procs.append(
            subprocess.Popen(
                [*exe, "worker", "--name", f"up-{os.getpid()}-{i}"],
                env={**env, TAG_ENV: f"worker-{i + 1}"},
            )
        )
    procs.append(
        subprocess.Popen([*exe, "serve", "--host", host, "--port", str(port)], env={**env, TAG_ENV: "site"})
    )
    site = f"http://{host}:{port}"
    announce_by = time.monotonic() + 60
    listening = False
    while all(p.poll() is None for p in procs):
        # Once the site listens, one more turn: the children's start lines come first, then the welcome.
        if announce_by and (listening or time.monotonic() > announce_by):
            simulator_url = f"http://127.0.0.1:{simulator_port}" if simulator_port else None
            welcome(
                Console(highlight=False, soft_wrap=True),
                site=site,
                simulator=simulator_url,
                way_in=way_in,
            )
            announce_by = 0.0
        listening = listening or _listening(host, port)
        time.sleep(0.5)
    failed = [p for p in procs if p.poll() not in (None, 0)]
    if failed:
        raise click.ClickException(f"a process exited with code {failed[0].returncode}; stopping")


def _listening(host: str, port: int) -> bool:
    """True when the site accepts connections (a TCP connect: no request line of its own in the log)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _relay(proc: subprocess.Popen[bytes], tag: str) -> None:
    """Copy a child's plain output lines to this terminal as tagged lines."""
    handler = ConsoleHandler(tag, sys.stderr)
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace").rstrip()
        if line:
            handler.handle(logging.makeLogRecord({"msg": line, "levelno": logging.INFO, "levelname": "INFO"}))
