"""``/metrics``: Prometheus text read from Redis at scrape time, matching a real campaign's counters."""

from __future__ import annotations

from notifier.campaigns import CampaignStore
from notifier.context import Context
from notifier.redis_conn import connect, free_port
from tests.factories import by, create, scrape, store_minted, wait_for


def test_metrics_match_a_finished_campaign(client, context: Context, simulator, workers) -> None:  # type: ignore[no-untyped-def]
    subs = simulator.mint(60)
    store_minted(context, subs)
    endpoints = [s["endpoint"] for s in subs]
    for e in endpoints[:5]:
        simulator.add_rule(410, endpoint=e)
    for e in endpoints[5:8]:
        simulator.add_rule(413, endpoint=e)
    for e in endpoints[8:12]:
        simulator.add_rule(500, endpoint=e, count=1)
    before = scrape(client)
    assert before["notifier_redis_up"][()] == 1
    assert before["notifier_subscribers"][()] == 60
    assert by(before["notifier_topic_subscribers"], "topic")["breaking"] == 60

    workers.start(1)
    cid = create(context)
    store = CampaignStore(context.redis, context.keys)
    campaign = wait_for(
        lambda: (c := store.get(cid)).state == "done" and c, timeout=60, message="campaign done"
    )
    k = campaign.counters
    assert (k["sent"], k["gone"], k["rejected"], k["retried"]) == (52, 5, 3, 4)

    m = scrape(client)
    outcomes = by(m["notifier_messages_total"], "outcome")
    assert (
        outcomes["sent"] == k["sent"]
        and outcomes["gone"] == k["gone"]
        and outcomes["rejected"] == k["rejected"]
    )
    assert outcomes["retry"] == k["retried"]
    statuses = by(m["notifier_push_responses_total"], "status")
    assert statuses["410"] == 5 and statuses["413"] == 3 and statuses["500"] == 4
    assert sum(statuses.values()) == sum(outcomes.values())
    # Histogram: cumulative buckets ending at +Inf == count == every response timed.
    buckets = m["notifier_send_latency_seconds_bucket"]
    ordered = sorted(buckets.items(), key=lambda item: float(dict(item[0])["le"]))
    values = [v for _, v in ordered]
    assert values == sorted(values) and dict(ordered[-1][0])["le"] == "+Inf"
    assert values[-1] == m["notifier_send_latency_seconds_count"][()] == sum(outcomes.values())
    assert m["notifier_send_latency_seconds_sum"][()] > 0
    assert m["notifier_subscribers"][()] == 55  # the 410s were pruned
    assert by(m["notifier_campaigns"], "state")["done"] == 1
    assert by(m["notifier_queue_jobs"], "queue") == {
        "notifier-plan": 0,
        "notifier-send": 0,
        "notifier-default": 0,
    }
    assert m["notifier_failed_jobs"][()] == 0
    workers_by_state = by(m["notifier_workers"], "state")
    assert workers_by_state["dead"] == 0 and sum(workers_by_state.values()) == 1


def test_metrics_say_redis_is_down_instead_of_failing(settings) -> None:  # type: ignore[no-untyped-def]
    from web import create_app

    url = f"redis://127.0.0.1:{free_port()}/0"
    down = Context.build(settings, client=connect(url, socket_connect_timeout=0.5, socket_timeout=0.5))
    down.__dict__["raw_redis"] = connect(
        url, decode_responses=False, socket_connect_timeout=0.5, socket_timeout=0.5
    )
    m = scrape(create_app({"TESTING": True}, context=down).test_client())
    assert m == {"notifier_redis_up": {(): 0.0}}


def test_open_breakers_held_deletions_and_holds_are_on_metrics_and_ops_banners(
    client, context: Context
) -> None:  # type: ignore[no-untyped-def]
    import time

    from notifier import stats
    from notifier.breakers import Breakers, Policy, Trip
    from notifier.holds import ServiceHolds

    breakers = Breakers(context.redis, context.keys, Policy())
    pipe = context.redis.pipeline()
    breakers.trip(pipe, Trip("gone", "fcm", 404, 300, 320, 0.94, 0.01, "c1", time.time()))
    breakers.hold_deletions(pipe, "fcm", [("7", "key7", 404, "c1"), ("8", "key8", 410, "c1")], time.time())
    pipe.execute()
    ServiceHolds(context.redis, context.keys).hold("mozilla", 30, 429)

    samples = scrape(client)
    assert samples["notifier_push_breaker_open"] == {(("kind", "gone"), ("service", "fcm")): 1}
    assert samples["notifier_push_held_deletions"] == {(("service", "fcm"),): 2}
    assert 25 < samples["notifier_push_hold_seconds"][(("service", "mozilla"),)] <= 30
    banners = {a["kind"]: a for a in stats.alerts(context.redis, context.keys)}
    assert (
        "fcm" in banners["breaker-gone"]["message"]
        and "held for review" in banners["breaker-gone"]["message"]
    )
    assert banners["hold"]["service"] == "mozilla"
