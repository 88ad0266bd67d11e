"""Push service faults: a 503 share, a 429 storm on one origin, stalls, service down, 401 everywhere."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from notifier.context import Context
from notifier.settings import Settings
from notifier_simulator import SimulatorServer
from tests.factories import (
    FAST_WORKER_ENV,
    create_campaign,
    final_total,
    mint_and_store,
    report,
    store_bulk,
    wait_for,
    wait_state,
)
from workers.jobs import enqueue_resume
from workers.queues import PLAN_QUEUE, SEND_QUEUE


def failed_jobs(context: Context) -> int:
    """Jobs in the failed registries of the plan and send queues."""
    return sum(
        FailedJobRegistry(name, connection=context.raw_redis, serializer=JSONSerializer).count
        for name in (PLAN_QUEUE, SEND_QUEUE)
    )


def test_503_to_30_percent_then_recovery_completes_with_retries_counted(context, simulator, workers) -> None:  # type: ignore[no-untyped-def]
    audience = 2000
    mint_and_store(context, simulator, audience)
    # No Retry-After: each message is retried with backoff (a 503 *with* Retry-After holds the whole
    # service for every worker, like a 429: test_shared_holds.py).
    rule = simulator.add_rule(503, fraction=0.3)
    workers.start(2, **FAST_WORKER_ENV)
    started = time.monotonic()
    cid = create_campaign(context)
    # The service stays degraded until every subscriber was tried once, then recovers.
    wait_for(lambda: simulator.stats()["requests"] >= audience, timeout=30, message="a first pass")
    simulator.remove_rule(rule)
    campaign = wait_state(context, cid, ["done"], timeout=40, workers=workers)
    k = campaign.counters
    answered_503 = simulator.stats()["by_status"].get("503", 0)
    assert 0.2 * audience < answered_503 < 0.5 * audience
    assert k["sent"] == audience and final_total(campaign) == audience, k
    # Every 503 was retried (none exhausted its attempts), and counted once.
    assert k["retried"] == answered_503
    assert k["failed"] == 0
    assert len({r.endpoint for r in simulator.received()}) == audience
    assert failed_jobs(context) == 0
    report(
        "503 to 30%", audience=audience, answered_503=answered_503, retried=k["retried"],
        duration_s=round(time.monotonic() - started, 1),
    )  # fmt: skip


@pytest.fixture
def second_simulator() -> SimulatorServer:
    """A second push service on its own origin."""
    server = SimulatorServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


def test_429_storm_slows_only_that_origin(settings_env, r, simulator, second_simulator, workers) -> None:  # type: ignore[no-untyped-def]
    limited, healthy = simulator, second_simulator
    hosts = ",".join(s.origin.split("://", 1)[1] for s in (limited, healthy))
    context = Context.build(Settings.from_env({**settings_env, "NOTIFIER_PUSH_HOSTS": hosts}), client=r)
    per_origin = 600
    store_bulk(context, limited.mint(per_origin, shared_keys=True))
    store_bulk(context, healthy.mint(per_origin, shared_keys=True))
    storm = limited.add_rule(429, retry_after=1)
    workers.start(2, **FAST_WORKER_ENV, NOTIFIER_PUSH_HOSTS=hosts)
    started = time.time()
    cid = create_campaign(context)
    # The healthy service gets everything while the other one is still answering 429.
    wait_for(lambda: len(healthy.received()) >= per_origin, timeout=30, message="the healthy origin served")
    healthy_done = time.time()
    storm_429 = limited.stats()["by_status"].get("429", 0)
    assert len(limited.received()) == 0
    limited.remove_rule(storm)
    campaign = wait_state(context, cid, ["done"], timeout=40, workers=workers)
    k = campaign.counters
    assert k["sent"] == 2 * per_origin and final_total(campaign) == 2 * per_origin, k
    assert k["deferred"] > 0, "no message was held back for the rate-limited origin"
    # Held back, not hammered: most held messages were never sent while the origin said 429.
    assert storm_429 < per_origin + 2 * 128, storm_429
    assert max(r.time for r in healthy.received()) <= healthy_done
    assert min(r.time for r in limited.received()) >= healthy_done
    assert failed_jobs(context) == 0
    report(
        "429 storm on one origin", per_origin=per_origin, answered_429=storm_429, deferred=k["deferred"],
        retried=k["retried"], healthy_done_s=round(healthy_done - started, 1),
        limited_done_s=round(max(r.time for r in limited.received()) - started, 1),
    )  # fmt: skip


def test_stalled_requests_time_out_and_retry_bounded(context, simulator, workers) -> None:  # type: ignore[no-untyped-def]
    audience = 200
    minted = mint_and_store(context, simulator, audience)
    stalled = [s["endpoint"] for s in minted[:40]]
    for endpoint in stalled[:20]:  # stalls once, then answers
        simulator.add_rule("stall", endpoint=endpoint, seconds=3, count=1)
    for endpoint in stalled[20:]:  # stalls every time
        simulator.add_rule("stall", endpoint=endpoint, seconds=3)
    workers.start(2, **FAST_WORKER_ENV)
    started = time.monotonic()
    cid = create_campaign(context)
    campaign = wait_state(context, cid, ["done"], timeout=45, workers=workers)
    elapsed = time.monotonic() - started
    k = campaign.counters
    # NOTIFIER_SEND_TIMEOUT=2 < 3 s stall; NOTIFIER_MAX_ATTEMPTS=4.
    assert k["sent"] == audience - 20 and k["failed"] == 20, k
    assert k["retried"] == 20 + 20 * 3, k
    assert final_total(campaign) == audience
    got = Counter(r.endpoint for r in simulator.received())
    # A request the sender gave up on is dropped by the service (it saw a timeout, not a 201): the
    # stalled-once subscribers got the alert exactly once, the always-stalled ones never.
    assert all(got[e] == 1 for e in stalled[:20])
    assert not any(got[e] for e in stalled[20:])
    assert all(got[s["endpoint"]] == 1 for s in minted[40:])
    # Bounded: 4 attempts of 2 s plus 0.3+0.6+1.2 s backoff, with room for a loaded machine.
    assert elapsed < 30, elapsed
    report("stalls", audience=audience, stalled_once=20, stalled_always=20, retried=k["retried"],
           failed=k["failed"], duration_s=round(elapsed, 1))  # fmt: skip


def test_push_service_down_fails_cleanly_without_crash_loop(settings_env, r, workers) -> None:  # type: ignore[no-untyped-def]
    down = SimulatorServer(host="127.0.0.1", port=0)
    down.start()
    host = down.origin.split("://", 1)[1]
    context = Context.build(Settings.from_env({**settings_env, "NOTIFIER_PUSH_HOSTS": host}), client=r)
    audience = 300
    store_bulk(context, down.mint(audience, shared_keys=True))
    down.stop()  # the port is closed: every connection is refused
    procs = workers.start(2, **FAST_WORKER_ENV, NOTIFIER_PUSH_HOSTS=host)
    started = time.monotonic()
    cid = create_campaign(context)
    campaign = wait_state(context, cid, ["done", "failed"], timeout=40, workers=workers)
    elapsed = time.monotonic() - started
    k = campaign.counters
    assert campaign.state == "done"
    assert k["failed"] == audience and k["total"] == audience, k
    assert k["retried"] == audience * 3, k  # NOTIFIER_MAX_ATTEMPTS=4
    assert k["sent"] == 0 and k["gone"] == 0
    assert context.subscriptions.count() == audience, "a refused connection must not delete anyone"
    assert all(p.poll() is None for p in procs), "a worker died"
    assert failed_jobs(context) == 0, "push failures are outcomes, not failed jobs"
    report("push service down", audience=audience, failed=k["failed"], retried=k["retried"],
           duration_s=round(elapsed, 1))  # fmt: skip


def test_401_everywhere_pauses_keeps_subscriptions_and_resumes(context, simulator, workers) -> None:  # type: ignore[no-untyped-def]
    audience = 600
    mint_and_store(context, simulator, audience)
    rule = simulator.add_rule(401)
    workers.start(2, **FAST_WORKER_ENV, NOTIFIER_REJECT_PAUSE_THRESHOLD="20")
    cid = create_campaign(context)
    paused = wait_state(context, cid, ["paused", "done"], timeout=30, workers=workers)
    assert paused.state == "paused"
    assert (
        "VAPID_PRIVATE_KEY" in paused.reason and "VAPID_SUBJECT" in paused.reason and "401" in paused.reason
    )
    alert = context.redis.hget(context.keys.alerts, "config")
    assert alert and cid in alert and "401" in alert
    assert context.subscriptions.count() == audience, "a 401 must never delete a subscription"
    assert paused.counters["rejected"] < audience

    # Resume at once, while paused batches may still be finishing: what they hold back must still be sent.
    simulator.remove_rule(rule)
    enqueue_resume(context.raw_redis, cid)
    campaign = wait_state(context, cid, ["done"], timeout=30, workers=workers)
    k = campaign.counters
    assert k["rejected"] < audience and k["sent"] == audience - k["rejected"], k
    assert final_total(campaign) == audience
    assert context.subscriptions.count() == audience
    report("401 everywhere", audience=audience, rejected=k["rejected"], sent_after_resume=k["sent"])
