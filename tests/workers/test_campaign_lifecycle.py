"""Campaign lifecycle with real workers: topic audiences counted once, cancel in flight, send_at scheduling."""

from __future__ import annotations

import time
from collections import Counter

from notifier.campaigns import CampaignStore
from tests.factories import create, store_minted, wait_for


def test_topic_audience_reaches_each_subscriber_once(context, simulator, workers) -> None:  # type: ignore[no-untyped-def]
    both = simulator.mint(40)
    store_minted(context, both, topics=("nasional", "ekonomi"))
    only_ekonomi = simulator.mint(30)
    store_minted(context, only_ekonomi, topics=("ekonomi",))
    other = simulator.mint(25)
    store_minted(context, other, topics=("olahraga",))
    assert context.subscriptions.audience_size(["nasional", "ekonomi"]) == 70
    workers.start(1)
    cid = create(context, topics=["nasional", "ekonomi"], breaking=False)
    store = CampaignStore(context.redis, context.keys)
    campaign = wait_for(lambda: (c := store.get(cid)).state == "done" and c, timeout=60, message="done")
    assert campaign.counters["total"] == 70 and campaign.counters["sent"] == 70
    per_endpoint = Counter(r.endpoint for r in simulator.received())
    assert set(per_endpoint) == {s["endpoint"] for s in both + only_ekonomi}
    assert set(per_endpoint.values()) == {1}


def test_cancel_stops_a_campaign_in_flight_within_two_seconds(context, simulator, workers) -> None:  # type: ignore[no-untyped-def]
    store_minted(context, simulator.mint(1500, shared_keys=True))
    simulator.add_rule("stall", fraction=1.0, seconds=0.25)  # every push takes a quarter second
    workers.start(1, NOTIFIER_CONCURRENCY="20")
    cid = create(context)
    store = CampaignStore(context.redis, context.keys)
    wait_for(lambda: store.get(cid).counters["sent"] > 0, timeout=30, message="first sends")
    store.cancel(cid)
    cancelled_at = time.monotonic()
    time.sleep(2.0)
    settled = len(simulator.received())
    time.sleep(1.5)
    assert len(simulator.received()) == settled, "messages were still sent more than 2 s after the cancel"
    campaign = store.get(cid)
    assert campaign.state == "cancelled"
    assert campaign.counters["sent"] < 1500
    assert time.monotonic() - cancelled_at < 10


def test_send_at_waits_for_its_time(context, simulator, workers) -> None:  # type: ignore[no-untyped-def]
    store_minted(context, simulator.mint(10))
    workers.start(1)
    at = time.time() + 3
    cid = create(context, send_at=at)
    store = CampaignStore(context.redis, context.keys)
    time.sleep(1.5)
    assert store.get(cid).state == "scheduled" and not simulator.received()
    campaign = wait_for(
        lambda: (c := store.get(cid)).state == "done" and c, timeout=30, message="scheduled send"
    )
    assert campaign.counters["sent"] == 10
    assert min(r.time for r in simulator.received()) >= at


def test_a_subscription_failing_for_days_is_quarantined_not_sent(context, simulator, workers) -> None:  # type: ignore[no-untyped-def]
    subs = simulator.mint(5)
    store_minted(context, subs)
    long_failing = context.subscriptions.sid_of(subs[0]["endpoint"])
    recently_failing = context.subscriptions.sid_of(subs[1]["endpoint"])
    days = context.settings.quarantine_days
    keys = context.keys
    context.redis.hset(keys.subs_failures, mapping={long_failing: 9, recently_failing: 2})
    context.redis.hset(
        keys.subs_first_failure,
        mapping={
            long_failing: int(time.time()) - (days + 1) * 86400,
            recently_failing: int(time.time()) - 3600,
        },
    )
    workers.start(1)
    cid = create(context)
    store = CampaignStore(context.redis, context.keys)
    campaign = wait_for(lambda: (c := store.get(cid)).state == "done" and c, timeout=30, message="done")
    assert campaign.counters["sent"] == 4 and campaign.counters["skipped"] == 1
    assert context.redis.getbit(keys.subs_quarantined, int(long_failing)) == 1
    assert context.subscriptions.quarantined_count() == 1
    assert {r.endpoint for r in simulator.received()} == {s["endpoint"] for s in subs[1:]}
    # Kept, not deleted: the reader may come back (a re-subscribe lifts the quarantine).
    assert context.subscriptions.get(long_failing).failures == 9
    # A success resets the failure run of the one that failed recently.
    fresh = context.subscriptions.get(recently_failing)
    assert (fresh.failures, fresh.first_failure) == (0, 0)
