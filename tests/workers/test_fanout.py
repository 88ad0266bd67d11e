"""A campaign fanned out by real worker processes to the push service simulator, every outcome counted."""

from __future__ import annotations

import json
import time

from notifier.campaigns import CampaignStore
from tests.factories import create, store_minted, wait_for


def test_outcomes_are_counted_exactly_and_dead_subscriptions_pruned(context, simulator, workers) -> None:  # type: ignore[no-untyped-def]
    subs = simulator.mint(300)
    store_minted(context, subs, browsers=("chrome-android", "firefox"))
    endpoints = [s["endpoint"] for s in subs]
    gone410, gone404 = endpoints[:20], endpoints[20:30]
    limited = endpoints[30:50]
    flaky = endpoints[50:70]
    too_big = endpoints[70:80]
    stalled = endpoints[80:85]
    for e in gone410:
        simulator.add_rule(410, endpoint=e)
    for e in gone404:
        simulator.add_rule(404, endpoint=e)
    limit_rules = {e: simulator.add_rule(429, endpoint=e, count=1, retry_after=1) for e in limited}
    for e in flaky:
        simulator.add_rule(500, endpoint=e, count=2)
    for e in too_big:
        simulator.add_rule(413, endpoint=e)
    for e in stalled:
        simulator.add_rule("stall", endpoint=e, seconds=3)

    workers.start(2)
    started = time.time()
    cid = create(context)
    store = CampaignStore(context.redis, context.keys)
    campaign = wait_for(
        lambda: (c := store.get(cid)).state == "done" and c, timeout=90, message="campaign done"
    )
    k = campaign.counters
    assert k["total"] == 300
    assert k["gone"] == 30
    assert k["rejected"] == 10
    assert k["failed"] == 5, workers.logs()[-3000:]
    assert k["sent"] == 255
    # 20 x one 429, 20 x two 500s, 5 stalls x 3 retries before the 4th attempt fails.
    assert k["retried"] == 20 + 40 + 15
    assert k["sent"] + k["gone"] + k["rejected"] + k["failed"] + k["skipped"] == k["total"]

    # Outcomes by browser are counted per reader (even endpoints Chrome on Android, odd Firefox) and
    # agree with the outcomes by push service and with the counters.
    browsers = store.browsers(cid)
    assert set(browsers) == {"chrome-android", "firefox"}
    assert browsers["chrome-android"]["gone"] == browsers["firefox"]["gone"] == 15
    assert browsers["chrome-android"]["rejected"] == browsers["firefox"]["rejected"] == 5
    by_service = store.services(cid)
    for kind in ("sent", "gone", "rejected", "failed", "retry", "deferred"):
        assert sum(b.get(kind, 0) for b in browsers.values()) == sum(
            v.get(kind, 0) for v in by_service.values()
        ), kind
    assert sum(b.get("sent", 0) for b in browsers.values()) == k["sent"]

    # Gone subscriptions are deleted, nothing else is.
    subs = context.subscriptions
    for e in gone410 + gone404:
        assert subs.sid_of(e) is None
    assert context.subscriptions.count() == 270
    assert context.subscriptions.count("breaking") == 270
    for e in too_big + stalled + flaky:
        assert subs.get_by_endpoint(e).endpoint == e
    # Failures are recorded on the subscription (quarantine after N days of them).
    stalled_sub = subs.get_by_endpoint(stalled[0])
    assert stalled_sub.failures == 1 and stalled_sub.first_failure >= int(started)

    # Every accepted message decrypted to the campaign's payload, with the right headers.
    received = simulator.received()
    # A stalled request may still be recorded by the simulator after the sender gave up on it (as a real
    # push service might deliver it); everything else accepted is exactly the 255 sent ones.
    delivered = {r.endpoint for r in received} - set(stalled)
    assert delivered == set(endpoints) - set(gone410 + gone404 + too_big + stalled)
    sample = next(r for r in received if r.endpoint == flaky[0])
    payload = json.loads(sample.payload)
    assert payload["web_push"] == 8030 and payload["mutable"] is True
    note = payload["notification"]
    assert note["title"] == "Gempa M6,1 guncang Cianjur"
    assert note["navigate"] == "https://kabarkini.example/nasional/gempa-cianjur"
    assert note["data"]["cid"] == cid and note["data"]["sid"] == subs.sid_of(flaky[0])
    assert sample.urgency == "high" and sample.topic == campaign.story and 0 < sample.ttl <= 6 * 3600

    # Retry-After was honoured: each retried 429 came at least a second after its first attempt.
    refused_at = {r.endpoint: r.last_hit for r in simulator.rules() if r.id in limit_rules.values()}
    assert len(refused_at) == len(limited) and all(refused_at.values())
    retried_at = {r.endpoint: r.time for r in received if r.endpoint in limited}
    assert set(retried_at) == set(limited)
    assert min(retried_at[e] - refused_at[e] for e in limited) >= 0.9
    # first/last_sent are when the answers came back: after the simulator received those requests.
    times = [r.time for r in received if r.endpoint not in stalled]
    assert campaign.first_sent and campaign.last_sent
    assert min(times) <= campaign.first_sent <= campaign.last_sent and campaign.last_sent >= max(times)
