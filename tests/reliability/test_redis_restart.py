"""Redis killed and restarted mid-campaign: site and workers reconnect by themselves, nothing lost."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from notifier.context import Context
from notifier.redis_conn import EmbeddedRedis, connect
from notifier.settings import Settings
from tests.factories import (
    FAST_WORKER_ENV,
    Workers,
    create_campaign,
    final_total,
    mint_and_store,
    report,
    wait_for,
    wait_state,
)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A dedicated AOF Redis (fsync on every write) on its own port; the session server is untouched."""
    server = EmbeddedRedis(tmp_path / "redis-own", appendfsync="always")
    server.start()
    yield server
    server.stop()


def test_redis_sigkilled_and_restarted_mid_campaign(own_redis, settings_env, simulator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from web import create_app

    env = {**settings_env, "REDIS_URL": own_redis.url}
    client = connect(own_redis.url)
    context = Context.build(Settings.from_env(env), client=client)
    audience = 4000
    mint_and_store(context, simulator, audience)
    before = {sid for page in context.subscriptions.scan_ids() for sid in page}
    assert len(before) == audience
    site = create_app({"TESTING": True}, context=Context.build(Settings.from_env(env))).test_client()

    group = Workers({**env, **FAST_WORKER_ENV, "NOTIFIER_BATCH_SIZE": "200"}, tmp_path)
    try:
        procs = group.start(2)
        cid = create_campaign(context)
        wait_for(lambda: simulator.stats()["received"] >= audience // 4, timeout=30, message="a quarter sent")
        assert own_redis.process is not None
        own_redis.process.send_signal(signal.SIGKILL)
        own_redis.process.wait(timeout=5)
        down_at = time.monotonic()
        with pytest.raises(redis.ConnectionError):
            connect(own_redis.url, socket_connect_timeout=0.2).ping()
        # Stay down until the workers have run into the outage (not merely a retried command).
        wait_for(
            lambda: "Connection refused" in group.logs() or "Error 111" in group.logs(),
            timeout=15,
            interval=0.1,
            message="workers noticing the outage",
        )
        own_redis.start()
        outage = time.monotonic() - down_at

        campaign = wait_state(context, cid, ["done"], timeout=45, workers=group)
        k = campaign.counters
        assert k["total"] == audience and final_total(campaign) == audience, k
        assert k["sent"] == audience, k
        received = {r.endpoint for r in simulator.received()}
        assert len(received) == audience
        assert all(p.poll() is None for p in procs), (
            "a worker exited instead of reconnecting:\n" + group.logs()[-3000:]
        )
        after = {sid for page in context.subscriptions.scan_ids() for sid in page}
        assert after == before, "a stored subscription was lost"
        assert context.subscriptions.count("breaking") == audience

        # The site answers on the same client objects it had before the restart.
        new_sub = simulator.mint(1)[0]
        resp = site.post("/api/v1/subscriptions", json={**new_sub, "topics": ["breaking"]})
        assert resp.status_code in (200, 201), resp.get_data(as_text=True)
        assert context.subscriptions.count() == audience + 1
        report("redis SIGKILL + restart", audience=audience, outage_s=round(outage, 2), sent=k["sent"],
               retried=k["retried"], duplicates=len(simulator.received()) - audience)  # fmt: skip
    finally:
        group.stop()
