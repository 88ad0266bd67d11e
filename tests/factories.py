"""Helpers the tests share. A test imports helpers from here (or takes a fixture), never from another test
module or a conftest: ``tests/test_no_test_imports.py`` holds every test to that.

Specialised drivers keep their own modules beside the tests that use them (``tests/e2e/bidi.py``,
``chromium.py``, ``publisher.py``; ``tests/reliability/topology.py``, ``netns.py``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client.parser import text_string_to_metric_families
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from werkzeug.serving import BaseWSGIServer

from notifier.campaigns import Campaign, CampaignStore, validate_campaign
from notifier.context import Context
from notifier.crypto import b64url_encode
from notifier.polling import wait_for
from notifier.subscriptions import validate_subscription
from notifier.users import UserStore
from notifier.vapid import generate_private_key, write_private_key
from notifier_simulator import SimulatorServer
from workers.jobs import launch
from workers.queues import queue

__all__ = ["wait_for"]  # the one polling loop (notifier.polling), re-exported for the tests

FCM = "https://fcm.googleapis.com/fcm/send/"


def as_on_a_terminal() -> None:
    """``preexec_fn`` for a child that a test stops with SIGINT, as Ctrl-C would on a terminal.

    A shell without job control starts its background commands with SIGINT ignored, and the children
    inherit that (CI run as ``cmd &`` does): Python then never raises KeyboardInterrupt, and a Ctrl-C
    test would wait for nothing. On a terminal SIGINT has its default action; this gives it back.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def make_sub(endpoint: str | None = None, **extra: Any) -> dict[str, Any]:
    """A browser-shaped PushSubscription.toJSON() with real P-256 keys (an FCM endpoint unless given)."""
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    body: dict[str, Any] = {
        "endpoint": endpoint
        or FCM
        + "dXNlcjEyMzQ1Njc4OTA:APA91bH"
        + b64url_encode(key.private_numbers().private_value.to_bytes(32, "big")),
        "expirationTime": None,
        "keys": {"p256dh": b64url_encode(point), "auth": b64url_encode(b"0123456789abcdef")},
    }
    body.update(extra)
    return body


def run_queued(connection: redis.Redis, *names: str) -> None:
    """Run every job waiting on the queues ``names`` in this process (needs the ``job_env`` fixture)."""
    worker = SimpleWorker(
        [queue(name, connection) for name in names], connection=connection, serializer=JSONSerializer
    )
    worker.work(burst=True, with_scheduler=False)


def store_minted(
    context: Context,
    subs: Sequence[dict[str, Any]],
    topics: Sequence[str] = ("breaking",),
    browsers: Sequence[str] = ("chrome-desktop",),
) -> None:
    """Store simulator-minted subscriptions the way the API does (browser families taken in turn)."""
    for i, sub in enumerate(subs):
        item = validate_subscription(
            {**sub, "topics": list(topics)}, policy=context.policy, topics=context.topics
        )
        context.subscriptions.upsert(item, browser=browsers[i % len(browsers)])


def require_browsers() -> bool:
    """CI sets NOTIFIER_REQUIRE_BROWSERS=1 so a missing browser fails instead of skipping."""
    return os.environ.get("NOTIFIER_REQUIRE_BROWSERS") == "1"


def browser_or_skip(path: str) -> str:
    """The browser binary, or skip (fail in CI) when it is not installed."""
    if Path(path).exists() or shutil.which(path):
        return path
    if require_browsers():
        pytest.fail(f"{path} is required (NOTIFIER_REQUIRE_BROWSERS=1) but not installed")
    pytest.skip(f"{path} is not installed (scripts/bootstrap --browsers installs it)")
    raise AssertionError("unreachable")


class Workers:
    """Real ``python -m workers`` processes for a test, stopped (or killed) at teardown."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, n: int = 1, **extra_env: str) -> list[subprocess.Popen[bytes]]:
        started = []
        for _ in range(n):
            index = len(self.procs)
            with open(self.log_dir / f"worker-{index}.log", "wb") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "workers"],
                    env={**self.env, **extra_env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            self.procs.append(proc)
            started.append(proc)
        return started

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("worker-*.log")))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


#: Two publications of one media group, for tests of several sites in one deployment: ``kabar`` (the
#: default, Indonesian, the deployment's key and topics) and ``warta`` (English, its own key and topics).
TWO_SITES: dict[str, Any] = {
    "default": "kabar",
    "sites": [
        {
            "id": "kabar",
            "name": "Kabar Kini",
            "origins": ["https://www.kabarkini.example", "https://m.kabarkini.example"],
            "lang": "id",
        },
        {
            "id": "warta",
            "name": "Warta Timur",
            "origins": ["https://warta.example"],
            "lang": "en",
            "vapid_key_file": "warta-vapid.pem",
            "topics": [
                {"slug": "nasional", "id": "Nasional", "en": "National"},
                {"slug": "ekonomi", "id": "Ekonomi", "en": "Business"},
                {"slug": "sepakbola", "id": "Sepak bola", "en": "Football"},
            ],
            "freq_cap_per_hour": 0,
        },
    ],
}


def write_sites(directory: Path, document: dict[str, Any]) -> Path:
    """Write a sites file (and a fresh VAPID key for each site naming a key file) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in document["sites"]:
        name = entry.get("vapid_key_file")
        if name and not (directory / name).exists():
            write_private_key(directory / name, generate_private_key())
    path = directory / "sites.json"
    path.write_text(json.dumps(document, indent=2))
    return path


def post(client, body: Any, **kw: Any):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/subscriptions", data=json.dumps(body), content_type="application/json", **kw)


def count_view_calls(app: Any, endpoint: str) -> list[int]:
    """Wrap a Flask view so each call through Flask appends to the returned list."""
    calls: list[int] = []
    view = app.view_functions[endpoint]

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return view(*args, **kwargs)

    app.view_functions[endpoint] = counting
    return calls


def create(context, **fields):  # type: ignore[no-untyped-def]
    data = {
        "title": "Gempa M6,1 guncang Cianjur",
        "body": "BMKG: tidak berpotensi tsunami.",
        "url": "https://kabarkini.example/nasional/gempa-cianjur",
        "breaking": True,
        **fields,
    }
    item = validate_campaign(data, topics=context.topics)
    cid = CampaignStore(context.redis, context.keys).create(item)
    launch(context.raw_redis, cid, item.send_at)
    return cid


#: Worker settings for fault tests: a dead worker's job expires after 3 s, maintenance every 2 s.
FAST_WORKER_ENV = {"NOTIFIER_WORKER_TTL": "3", "NOTIFIER_WORKER_MAINTENANCE": "2"}


def store_bulk(
    context: Context,
    subs: Sequence[dict[str, Any]],
    topics: Iterable[str] = ("breaking",),
    *,
    browser: str = "chrome-desktop",
    chunk: int = 2000,
    now: float | None = None,
) -> list[str]:
    """Store subscriptions with ``SubscriptionStore.upsert_many`` (the API's upsert, pipelined); returns ids."""
    topics = tuple(topics)
    sids: list[str] = []
    for start in range(0, len(subs), chunk):
        items = [
            validate_subscription(
                {**raw, "topics": list(topics)}, policy=context.policy, topics=context.topics
            )
            for raw in subs[start : start + chunk]
        ]
        sids += [sid for sid, _ in context.subscriptions.upsert_many(items, browser=browser, now=now)]
    return sids


def mint_and_store(
    context: Context, simulator: SimulatorServer, n: int, *, chunk: int = 5000
) -> list[dict[str, Any]]:
    """Mint ``n`` simulator subscriptions (shared keys, in chunks) and store them; returns them."""
    minted: list[dict[str, Any]] = []
    for start in range(0, n, chunk):
        part = simulator.mint(min(chunk, n - start), shared_keys=True)
        store_bulk(context, part)
        minted += part
    return minted


def create_campaign(context: Context, **fields: Any) -> str:
    """Create and launch a breaking campaign to the ``breaking`` topic."""
    data = {
        "title": "Banjir rob di pesisir utara",
        "body": "BPBD: warga diminta waspada.",
        "url": "https://kabarkini.example/nasional/banjir-rob",
        "breaking": True,
        "topics": ["breaking"],
        **fields,
    }
    item = validate_campaign(data, topics=context.topics)
    cid = CampaignStore(context.redis, context.keys).create(item)
    launch(context.raw_redis, cid, item.send_at)
    return cid


def wait_state(
    context: Context, cid: str, states: Sequence[str], timeout: float, workers: Any = None
) -> Campaign:
    """Poll until the campaign is in one of ``states``; fail with the worker logs' tail otherwise."""
    store = CampaignStore(context.redis, context.keys)

    def reached() -> Campaign | None:
        campaign = store.get(cid)
        return campaign if campaign.state in states else None

    try:
        return wait_for(reached, timeout=timeout, interval=0.1, message=f"campaign {cid} in {states}")
    except TimeoutError:
        campaign = store.get(cid)
        tail = workers.logs()[-4000:] if workers is not None else ""
        pytest.fail(
            f"campaign {cid} stuck in {campaign.state} with {campaign.counters} "
            f"pending={campaign.pending}\n{tail}"
        )


def final_total(campaign: Campaign) -> int:
    """sent + gone + rejected + failed + skipped: every subscriber's final outcome, counted once."""
    k = campaign.counters
    return k["sent"] + k["gone"] + k["rejected"] + k["failed"] + k["skipped"]


def report(name: str, **figures: Any) -> None:
    """Print a scenario's figures (shown with ``pytest -s``; quoted in docs/reliability.md)."""
    print(f"\n[reliability] {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def snapshot(r: redis.Redis) -> dict[str, Any]:
    """Every key with its type, for "nothing was stored" assertions."""
    return {key: r.type(key) for key in r.scan_iter(count=1000)}


def subscribe(client, remote: str = "203.0.113.7", body: dict | None = None):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/subscriptions",
        data=json.dumps(body or make_sub()),
        content_type="application/json",
        environ_base={"REMOTE_ADDR": remote},
    )


#: Password of the accounts the fixtures create.
PASSWORD = "kata-sandi-rahasia-123"


_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token embedded in a rendered newsroom page."""
    match = _CSRF_FIELD.search(html)
    assert match, "no csrf_token field in the page"
    return match.group(1)


class AuthActions:
    """Log a test client in and out of the newsroom (flaskr's AuthActions, with CSRF)."""

    def __init__(self, client, context: Context) -> None:  # type: ignore[no-untyped-def]
        self.client = client
        self.context = context
        self.users = UserStore(context.redis, context.keys)

    def create(self, email: str, role: str = "editor", password: str = PASSWORD) -> str:
        """Create an account (if absent) and return its email."""
        if self.users.find(email) is None:
            self.users.create(email, password, role)
        return email.lower()

    def csrf(self, path: str = "/login") -> str:
        """The session's CSRF token, read from a page the way a browser gets it."""
        return csrf_from(self.client.get(path).get_data(as_text=True))

    def login(self, email: str, password: str = PASSWORD, *, follow: bool = False):  # type: ignore[no-untyped-def]
        """POST the login form (with a valid CSRF token); returns the response."""
        return self.client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": self.csrf()},
            follow_redirects=follow,
        )

    def logout(self):  # type: ignore[no-untyped-def]
        """POST the logout form."""
        return self.client.post("/logout", data={"csrf_token": self.csrf("/newsroom/campaigns")})

    def post(self, path: str, data: dict | None = None, **kwargs):  # type: ignore[no-untyped-def, type-arg]
        """POST a newsroom form with the session's CSRF token added."""
        return self.client.post(
            path, data={**(data or {}), "csrf_token": self.csrf("/newsroom/campaigns")}, **kwargs
        )


def login(app, client, role: str) -> str:  # type: ignore[no-untyped-def]
    """Open a real newsroom session for a new account with ``role``; returns its CSRF token."""
    c = app.extensions["notifier"]
    email = f"{role}-{time.monotonic_ns()}@kabarkini.example"
    UserStore(c.redis, c.keys).create(email, "correct horse battery staple", role)
    token = UserStore(c.redis, c.keys).open_session(email)
    with client.session_transaction() as session:
        session["sid"] = token
        session["csrf"] = "c" * 43
    return "c" * 43


def loader_parts(body: str) -> tuple[dict[str, Any], str]:
    """The configuration and the imported code URL of a service-worker loader (web/serviceworker.py)."""
    comment, config_line, import_line, *rest = body.split("\n")
    assert comment.startswith("// notifier service worker") and rest == [""]
    assert config_line.startswith("self.NOTIFIER_CONFIG = ") and config_line.endswith(";")
    assert import_line.startswith("importScripts(") and import_line.endswith(");")
    return json.loads(config_line[len("self.NOTIFIER_CONFIG = ") : -1]), json.loads(import_line[14:-2])


CHROMIUM = "/usr/bin/chromium"


#: Flags for a quiet, offline, container-friendly Chromium.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@dataclass
class LiveServer:
    """A running app: its base URL, the app and the context it serves."""

    url: str
    app: Any
    context: Context
    server: BaseWSGIServer

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>`` (a secure context for service workers, like localhost)."""
        return self.url


def scrape(client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:  # type: ignore[no-untyped-def]
    """``/metrics`` of a Flask test client: samples by name, then by sorted labels."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def by(samples: dict[tuple[tuple[str, str], ...], float], label: str) -> dict[str, float]:
    """Sum samples by one label."""
    totals: dict[str, float] = {}
    for labels, value in samples.items():
        key = dict(labels)[label]
        totals[key] = totals.get(key, 0) + value
    return totals
