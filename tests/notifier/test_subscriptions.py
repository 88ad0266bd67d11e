"""The subscription store: atomic upsert, topic sets kept in step, streamed audiences."""

from __future__ import annotations

import threading
import time

from notifier.redis_conn import connect
from notifier.subscriptions import SubscriptionStore, iter_audience, validate_subscription
from tests.web.test_api_subscriptions import make_sub


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
