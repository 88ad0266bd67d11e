"""``notifier send`` following a campaign while Redis goes away and comes back: a message, then it carries on."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from notifier.campaigns import CampaignStore, validate_campaign
from notifier.context import Context
from notifier.redis_conn import EmbeddedRedis, connect
from notifier.settings import Settings
from notifier_cli.campaigns import _follow


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis-own", appendfsync="always")
    server.start()
    yield server
    server.stop()


def _sending(own_redis: EmbeddedRedis, settings_env: dict[str, str]) -> tuple[Context, str]:
    context = Context.build(Settings.from_env({**settings_env, "REDIS_URL": own_redis.url}))
    store = CampaignStore(context.redis, context.keys)
    item = validate_campaign(
        {"title": "Banjir", "body": "Waspada.", "url": "https://k.example/b", "breaking": True},
        topics=context.topics,
    )
    cid = store.create(item)
    assert store.transition(cid, "planning") and store.transition(cid, "sending")
    return context, cid


def test_the_follower_reports_the_outage_and_carries_on_when_back(own_redis, settings_env, capsys) -> None:  # type: ignore[no-untyped-def]
    context, cid = _sending(own_redis, settings_env)
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            _follow(context, cid)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    follower = threading.Thread(target=follow)
    follower.start()
    time.sleep(0.6)
    assert own_redis.process is not None
    own_redis.process.send_signal(signal.SIGKILL)
    own_redis.process.wait(timeout=5)
    time.sleep(3.0)  # the follower meets the outage: several failed polls, not one retried command
    own_redis.start()
    # Back: the campaign finishes while the follower watches, on the follower's own client.
    assert CampaignStore(connect(own_redis.url), context.keys).transition(cid, "done")
    follower.join(timeout=30)
    assert not follower.is_alive() and not errors, errors
    out = capsys.readouterr().out
    assert "Redis unreachable" in out and "The workers carry on" in out
    assert "Redis answers again after" in out
    final = json.loads(out[out.index("{") :])
    assert final["state"] == "done" and final["id"] == cid


def test_the_follower_gives_up_after_its_patience_with_a_way_to_follow_again(own_redis, settings_env) -> None:  # type: ignore[no-untyped-def]
    context, cid = _sending(own_redis, settings_env)
    own_redis.stop()
    started = time.monotonic()
    with pytest.raises(click.ClickException) as caught:
        _follow(context, cid, patience=1.0)
    assert time.monotonic() - started < 20
    assert f"notifier campaigns show {cid} --follow" in caught.value.message
    assert "goes on in the workers" in caught.value.message


def test_status_without_redis_exits_with_the_reason_not_a_traceback(settings_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from notifier.redis_conn import free_port
    from notifier_cli import main

    for name, value in {**settings_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 1
    assert "Redis unreachable" in result.output and "no status to show" in result.output
    assert "Traceback" not in result.output
