"""Chrome's push limits: a long Retry-After holds that push service for the campaign, the others go on.

From January 2026 Chrome caps a site it judges disruptive (at no less than 1,000 pushes a minute, answered
with 429) for 1 to 14 days. A Retry-After longer than ``NOTIFIER_LONG_HOLD_AFTER`` is not retried batch by
batch (a retry storm) and not failed: the campaign holds its messages to that service, the other services'
readers get the news at once, ops see which service and until when, and when the wait is over one release
sends what was held (or counts it failed when the news has expired meanwhile). Two simulators play two push
services; the jobs run in this process.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notifier import stats
from notifier.browsers import service_id
from notifier.campaigns import CampaignStore, validate_campaign
from notifier.context import Context
from notifier.subscriptions import validate_subscription
from notifier_simulator import SimulatorServer
from tests.factories import run_queued
from workers.jobs import batch_enqueuer, launch, runtime
from workers.queues import PLAN_QUEUE, SEND_QUEUE

DAY = 86400


@pytest.fixture(scope="module")
def capped() -> Iterator[SimulatorServer]:
    """A second push service: the one that caps the site."""
    with SimulatorServer(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def settings_env(settings_env: dict[str, str], capped: SimulatorServer) -> dict[str, str]:
    host = capped.origin.split("://", 1)[1]
    return {**settings_env, "NOTIFIER_PUSH_HOSTS": f"{settings_env['NOTIFIER_PUSH_HOSTS']},{host}"}


def subscribe(context: Context, server: SimulatorServer, n: int) -> None:
    for sub in server.mint(n):
        item = validate_subscription(
            {**sub, "topics": ["breaking"]}, policy=context.policy, topics=context.topics
        )
        context.subscriptions.upsert(item, browser="chrome-desktop")


def campaign(context: Context, **fields: object) -> str:
    data = {
        "title": "Gempa M5,2",
        "body": "Tidak berpotensi tsunami.",
        "url": "https://kabarkini.example/g",
        **fields,
    }
    item = validate_campaign(data, topics=context.topics)
    cid = CampaignStore(context.redis, context.keys).create(item)
    launch(context.raw_redis, cid, None)
    return cid


def test_a_long_retry_after_holds_that_service_for_the_campaign_and_releases_it_once(
    context: Context, simulator: SimulatorServer, capped: SimulatorServer, job_env
) -> None:  # type: ignore[no-untyped-def]
    capped.reset()
    subscribe(context, simulator, 30)
    subscribe(context, capped, 20)
    capped.add_rule(429, retry_after=DAY, count=1)  # every endpoint's first push: "come back tomorrow"
    store = CampaignStore(context.redis, context.keys)
    cid = campaign(context, breaking=True)
    run_queued(context.raw_redis, PLAN_QUEUE, SEND_QUEUE)

    held = store.get(cid)
    service = service_id(capped.origin)
    # The other service's readers have the news; the capped one's wait, deferred, not failed, not retried.
    assert held.counters["sent"] == 30 and held.counters["deferred"] == 20
    assert held.counters["failed"] == 0 and held.counters["retried"] == 0
    assert held.state == "sending" and held.pending == 1  # waiting: the release holds one unit
    assert store.held_count(cid, service) == 20
    assert service in store.holds(cid) and "Retry-After 86400 s" in store.holds(cid)[service]
    [(_, held_service, _release, until)] = store.pending_releases()
    assert held_service == service
    # The wait ends when the service allows, or when the alert would expire (6 h for a breaking one).
    assert until == pytest.approx((held.started or held.created) + held.ttl, abs=1)
    assert capped.stats()["by_status"] == {"429": 20}  # one answer each: no retry storm
    [banner] = [a for a in stats.alerts(context.redis, context.keys) if a["kind"] == "campaign-hold"]
    assert banner["service"] == service and banner["campaign"] == cid and banner["held"] == 20
    assert banner["until"] == until and banner["status"] == 429

    # When the wait is over (the workers' maintenance), one release sends what was held. (The time passes
    # in the test by asking for the releases due later, and by ending the workers' shared hold on the
    # service, which is at most an hour: it would have ended long before.)
    delivery = runtime()
    delivery.sender.holds.clear(service)
    queued = delivery.release_due_holds(lambda c: batch_enqueuer(context.raw_redis, c), now=until + 1)
    assert queued == 20
    run_queued(context.raw_redis, PLAN_QUEUE, SEND_QUEUE)
    done = store.get(cid)
    assert done.state == "done" and done.counters["sent"] == 50 and done.counters["failed"] == 0
    assert capped.stats()["by_status"] == {"201": 20, "429": 20}
    assert store.pending_releases() == [] and store.holds(cid) == {}
    assert not [a for a in stats.alerts(context.redis, context.keys) if a["kind"] == "campaign-hold"]
    # A second release of the same hold finds nothing (one process claims it).
    assert delivery.release_due_holds(lambda c: batch_enqueuer(context.raw_redis, c), now=until + 2) == 0


def test_news_that_expired_while_held_is_counted_failed_not_sent(
    context: Context, simulator: SimulatorServer, capped: SimulatorServer, job_env
) -> None:  # type: ignore[no-untyped-def]
    capped.reset()
    subscribe(context, capped, 10)
    capped.add_rule(429, retry_after=3 * DAY, count=1)
    store = CampaignStore(context.redis, context.keys)
    cid = campaign(context, ttl=3600)
    run_queued(context.raw_redis, PLAN_QUEUE, SEND_QUEUE)
    assert store.get(cid).counters["deferred"] == 10
    [(_, _, _, until)] = store.pending_releases()
    assert until == pytest.approx(store.get(cid).started + 3600, abs=1)  # released at expiry, not in 3 days
    # The hour passes (the test moves the campaign's start back instead of waiting).
    context.redis.hset(context.keys.campaign(cid), "started", repr(store.get(cid).started - 3601))
    runtime().sender.holds.clear(service_id(capped.origin))
    runtime().release_due_holds(lambda c: batch_enqueuer(context.raw_redis, c), now=until + 1)
    run_queued(context.raw_redis, PLAN_QUEUE, SEND_QUEUE)
    done = store.get(cid)
    assert done.state == "done" and done.counters["failed"] == 10 and done.counters["sent"] == 0
    assert capped.stats()["by_status"] == {"429": 10}  # stale news is not sent
