"""The subscription store: atomic upsert, topic bitmaps kept in step, streamed audiences, compact records."""

from __future__ import annotations

import threading
import time

from bench.audience import stored_bytes
from notifier.redis_conn import connect
from notifier.subscriptions import (
    SubscriptionStore,
    decode_endpoint,
    encode_endpoint,
    ids_in_bitmap,
    iter_audience,
    migrate_legacy,
    validate_subscription,
)
from tests.factories import make_sub


def test_racing_upserts_of_one_endpoint_count_one_new_subscriber(context, redis_url) -> None:  # type: ignore[no-untyped-def]
    item = validate_subscription(make_sub(topics=["nasional"]), policy=context.policy, topics=context.topics)
    results: list[bool] = []
    barrier = threading.Barrier(12)

    def subscribe() -> None:
        store = SubscriptionStore(connect(redis_url), context.keys)
        barrier.wait()
        results.append(store.upsert(item)[1])

    threads = [threading.Thread(target=subscribe) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    day = time.strftime("%Y-%m-%d", time.gmtime())
    assert context.redis.hget(context.keys.subs_daily("added"), day) == "1"
    assert context.subscriptions.count() == 1 and context.subscriptions.count("nasional") == 1


def test_changing_topics_moves_the_id_between_sets_and_keeps_created(context) -> None:  # type: ignore[no-untyped-def]
    store = context.subscriptions
    body = make_sub(topics=["nasional", "ekonomi"])
    sid, created = store.upsert(
        validate_subscription(body, policy=context.policy, topics=context.topics), now=1000
    )
    assert created
    body["topics"] = ["ekonomi", "olahraga"]
    assert store.upsert(
        validate_subscription(body, policy=context.policy, topics=context.topics), now=2000
    ) == (sid, False)
    sub = store.get(sid)
    assert sub.topics == ("ekonomi", "olahraga") and sub.created == 1000 and sub.seen == 2000
    assert store.count("nasional") == 0 and store.count("ekonomi") == 1 and store.count("olahraga") == 1
    pages = list(iter_audience(context.redis, context.keys, ["ekonomi", "olahraga"], page_size=10))
    assert [s for page in pages for s in page] == [sid]


def _items(context, n: int, topics=("nasional",), prefix: str = "https://fcm.googleapis.com/fcm/send/"):  # type: ignore[no-untyped-def]
    """``n`` valid subscriptions with realistic endpoints (one key pair shared: validation is per item)."""
    body = make_sub()
    return [
        validate_subscription(
            {**body, "endpoint": f"{prefix}tok{i:06d}-" + "x" * 110, "topics": list(topics)},
            policy=context.policy,
            topics=context.topics,
        )
        for i in range(n)
    ]


def test_endpoint_codes_round_trip_and_leave_other_endpoints_verbatim() -> None:
    for endpoint in (
        "https://fcm.googleapis.com/fcm/send/dXNlcjEy:APA91b",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAAA",
        "https://web.push.apple.com/QGx1c3Q",
        "https://wns2-bn3p.notify.windows.com/w/?token=AwYAAAB",
        "https://push.example.net/9/abc",
        "http://127.0.0.1:8080/push/1",
    ):
        stored = encode_endpoint(endpoint)
        assert decode_endpoint(stored) == endpoint
        assert len(stored) <= len(endpoint)
    assert encode_endpoint("https://fcm.googleapis.com/fcm/send/x") == "0x"
    assert encode_endpoint("http://127.0.0.1/p") == "http://127.0.0.1/p"


def test_ids_in_bitmap_match_redis_bit_order(context) -> None:  # type: ignore[no-untyped-def]
    r = context.redis
    key = context.keys.prefix + "test:bits"
    chosen = [0, 1, 7, 8, 15, 200, 1023, 1024, 5000, 70_001]
    for n in chosen:
        r.setbit(key, n, 1)
    raw = r.execute_command("GET", key, NEVER_DECODE=True)
    assert ids_in_bitmap(raw) == chosen
    assert ids_in_bitmap(raw[128:], 1024) == [1024, 5000, 70_001]
    # Read back in small chunks, resumably.
    store = context.subscriptions
    chunks = list(store.iter_bitmap(key, chunk_bytes=16))
    assert [int(s) for _, ids in chunks for s in ids] == chosen
    resume_at = chunks[2][0]
    assert [
        int(s) for _, ids in store.iter_bitmap(key, start_byte=resume_at, chunk_bytes=16) for s in ids
    ] == [n for n in chosen if n >= resume_at * 8]


def test_many_subscriptions_across_record_lists_load_count_and_delete(context) -> None:  # type: ignore[no-untyped-def]
    store = context.subscriptions
    both = _items(context, 150, topics=("nasional", "ekonomi"))
    only = _items(
        context, 150, topics=("ekonomi",), prefix="https://updates.push.services.mozilla.com/wpush/v2/"
    )
    sids = [sid for sid, new in store.upsert_many(both + only, browser="firefox", key_id="k1", now=1000)]
    assert sids == [str(n) for n in range(300)]  # dense ids, three record lists
    assert store.count() == 300 and store.count("nasional") == 150 and store.count("ekonomi") == 300
    assert store.audience_size(["nasional", "ekonomi"]) == 300  # each reader once
    loaded = store.load_many(["299", "5", "140", "nope", "-1", "5000"])
    assert [s.sid for s in loaded] == ["299", "5", "140"]
    assert loaded[0].endpoint == only[-1].endpoint and loaded[1].endpoint == both[5].endpoint
    assert loaded[2].topics == ("nasional", "ekonomi") and loaded[2].browser == "firefox"
    assert (loaded[2].created, loaded[2].seen, loaded[2].key_id) == (1000, 1000, "k1")

    for sid in ("5", "140", "299"):
        store.delete(store.get(sid))
    assert store.count() == 297 and store.count("nasional") == 148
    assert store.load_many(["5", "6"])[0].sid == "6"
    assert store.sid_of(both[5].endpoint) is None
    ids = [s for page in iter_audience(context.redis, context.keys, ["nasional"], page_size=64) for s in page]
    assert len(ids) == 148 and "5" not in ids and "140" not in ids
    assert store.exists_many(["4", "5", "x"]) == [True, False, False]
    assert len(store.sample(50)) == 50 and len({s.sid for s in store.sample(500)}) == 297


def test_a_stale_gone_answer_does_not_remove_the_fresh_subscription(context) -> None:  # type: ignore[no-untyped-def]
    store = context.subscriptions
    body = make_sub(topics=["nasional"])
    sid, _ = store.upsert(validate_subscription(body, policy=context.policy, topics=context.topics))
    old = store.get(sid)
    # The browser subscribed again with new keys before the push service's 410 for the old ones came back.
    body["keys"] = make_sub()["keys"]
    assert store.upsert(validate_subscription(body, policy=context.policy, topics=context.topics)) == (
        sid,
        False,
    )
    store.delete(old, exact=True)
    assert store.get(sid).p256dh == body["keys"]["p256dh"] and store.count() == 1
    store.delete(store.get(sid), exact=True)
    assert store.count() == 0 and store.count("nasional") == 0


def test_upsert_survives_a_flushed_script_cache(context) -> None:  # type: ignore[no-untyped-def]
    store = context.subscriptions
    first = validate_subscription(make_sub(topics=["nasional"]), policy=context.policy, topics=context.topics)
    sid, created = store.upsert(first)
    assert created
    context.redis.script_flush()  # as after a Redis restart without persistence of the script cache
    second = validate_subscription(
        make_sub(topics=["olahraga"]), policy=context.policy, topics=context.topics
    )
    sid2, created2 = store.upsert(second)
    assert created2 and sid2 != sid
    assert store.upsert(first) == (sid, False)
    assert store.count() == 2 and store.count("olahraga") == 1


def test_redis_memory_per_subscription_stays_under_400_bytes(context) -> None:  # type: ignore[no-untyped-def]
    """The data model's reason to be: 156-character endpoints, one topic, Redis's default settings."""
    items = _items(context, 4000)
    store = context.subscriptions
    # Warm up: the first calls grow Redis's script heap, a fixed cost that is not per subscriber.
    store.upsert_many(items[:1000], browser="chrome-desktop", key_id=context.vapid.key_id)
    before = stored_bytes(context.redis)
    store.upsert_many(items[1000:], browser="chrome-desktop", key_id=context.vapid.key_id)
    per_sub = (stored_bytes(context.redis) - before) / 3000
    assert len(items[0].endpoint) == 156 and store.count() == 4000
    assert 250 <= per_sub <= 400, per_sub


def test_the_first_layout_is_migrated_with_every_field(context) -> None:  # type: ignore[no-untyped-def]
    r, p = context.redis, context.keys.prefix
    legacy = _items(context, 3, topics=("nasional",))
    for i, item in enumerate(legacy):
        r.hset(
            f"{p}sub:old{i}",
            mapping={
                "e": item.endpoint, "p": item.p256dh, "a": item.auth, "t": "nasional,ekonomi" if i else "",
                "l": "en", "b": "safari-ios", "c": 1000 + i, "s": 2000 + i, "ok": 1500, "f": 3 * i,
                "ff": 1700 if i else 0, "k": "key1", **({"x": 1_900_000_000_000} if i == 2 else {}),
            },
        )  # fmt: skip
        r.sadd(f"{p}subs:all", f"old{i}")
    r.sadd(f"{p}subs:topic:nasional", "old1", "old2")
    r.sadd(f"{p}subs:quarantined", "old2")
    store = context.subscriptions
    assert migrate_legacy(store, page_size=2) == 3
    assert migrate_legacy(store) == 0
    assert not [k for k in r.scan_iter(f"{p}sub:*")] and not r.exists(
        f"{p}subs:all", f"{p}subs:topic:nasional"
    )
    subs = {s.endpoint: s for s in store.sample(10)}
    assert len(subs) == 3 and store.count("ekonomi") == 2 and store.quarantined_count() == 1
    first, third = subs[legacy[0].endpoint], subs[legacy[2].endpoint]
    assert (first.topics, first.lang, first.browser, first.created, first.seen) == (
        (),
        "en",
        "safari-ios",
        1000,
        2000,
    )
    assert (third.failures, third.first_failure, third.expiration_time) == (6, 1700, 1_900_000_000_000)
    assert r.getbit(context.keys.subs_quarantined, int(third.sid)) == 1
    assert not r.hgetall(context.keys.subs_daily("added"))  # counted when they first came, not again


def _item(context, body):  # type: ignore[no-untyped-def]
    return validate_subscription(body, policy=context.policy, topics=context.topics)


def test_a_replacing_subscription_takes_the_old_ones_place_in_one_step(context) -> None:  # type: ignore[no-untyped-def]
    store = context.subscriptions
    old = make_sub(topics=["nasional", "teknologi"], lang="en")
    sid, _ = store.upsert(_item(context, old), browser="firefox", key_id="k1", now=1000)
    pipe = context.redis.pipeline()
    store.mark_sent([sid], pipe, unreachable_after=1, budget=0, now=1000)
    pipe.execute()
    assert store.standing()["unreachable"] == 1
    # The browser's new subscription, posted with no topics (the worker does not know them).
    new = make_sub()
    assert store.replace(old["endpoint"], _item(context, new), browser="firefox", key_id="k2", now=2000) == (
        sid,
        "replaced",
    )
    moved = store.get(sid)
    assert moved.endpoint == new["endpoint"] and moved.p256dh == new["keys"]["p256dh"]
    assert moved.topics == ("nasional", "teknologi") and moved.lang == "en"
    assert moved.created == 1000 and moved.seen == 2000 and moved.key_id == "k2"
    assert store.sid_of(old["endpoint"]) is None and store.sid_of(new["endpoint"]) == sid
    assert store.count() == 1 and store.count("nasional") == 1 and store.site_of(sid) == "default"
    assert store.standing()["unreachable"] == 0  # a fresh subscription starts reachable
    # The old endpoint is gone: replacing it again finds nothing (the caller stores the new one then).
    assert store.replace(old["endpoint"], _item(context, make_sub()), now=3000) is None
    assert context.redis.hget(context.keys.subs_index_meta, "n") == "1"  # one index entry, not two


def test_when_the_new_endpoint_is_stored_already_the_old_one_goes_and_its_topics_move(context) -> None:  # type: ignore[no-untyped-def]
    store = context.subscriptions
    old = make_sub(topics=["olahraga"], lang="en")
    old_sid, _ = store.upsert(_item(context, old), now=1000)
    new = make_sub(topics=["breaking"])
    new_sid, _ = store.upsert(_item(context, new), now=1500)  # the page posted it before the worker
    assert store.replace(old["endpoint"], _item(context, new), now=2000) == (new_sid, "merged")
    assert store.count() == 1 and store.sid_of(old["endpoint"]) is None
    kept = store.get(new_sid)
    assert kept.topics == ("olahraga",) and kept.lang == "en" and kept.created == 1500
    assert store.count("olahraga") == 1 and store.count("breaking") == 0
    assert not store.exists_many([old_sid])[0]


def test_a_subscription_of_another_site_is_not_replaced(sites_context) -> None:  # type: ignore[no-untyped-def]
    store = sites_context.subscriptions
    site_ids = [site.id for site in sites_context.sites]
    old = make_sub()
    item = validate_subscription(
        old, policy=sites_context.policy, topics=sites_context.site(site_ids[0]).topics
    )
    store.upsert(item, site=site_ids[0])
    new = validate_subscription(make_sub(), policy=sites_context.policy, topics=())
    assert store.replace(old["endpoint"], new, site=site_ids[1]) is None
    assert store.count() == 1
