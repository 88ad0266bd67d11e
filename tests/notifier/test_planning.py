"""Planning over the bitmap audience: every reader once across topics, and a crashed run resumes exactly."""

from __future__ import annotations

import pytest

from notifier.campaigns import CampaignStore, validate_campaign
from notifier.delivery import Delivery
from notifier.subscriptions import validate_subscription
from tests.factories import make_sub

TOPIC_CYCLE = (("nasional",), ("nasional", "ekonomi"), ("olahraga",))


class Crash(Exception):
    """The planning job's process dying half-way."""


def _audience(context) -> set[str]:  # type: ignore[no-untyped-def]
    """900 readers over three topic sets, 30 of them gone; the ids a campaign to ``nasional`` +
    ``ekonomi`` must reach."""
    store = context.subscriptions
    body = make_sub()
    items = [
        validate_subscription(
            {
                **body,
                "endpoint": f"https://fcm.googleapis.com/fcm/send/p{i:05d}",
                "topics": list(TOPIC_CYCLE[i % 3]),
            },
            policy=context.policy,
            topics=context.topics,
        )
        for i in range(900)
    ]
    sids = [sid for sid, _ in store.upsert_many(items)]
    for sid in sids[:30]:
        store.delete(store.get(sid))
    expected = {sid for i, sid in enumerate(sids) if i >= 30 and i % 3 != 2}
    assert store.audience_size(["nasional", "ekonomi"]) == len(expected) == 580
    return expected


def test_planning_hands_out_a_multi_topic_audience_once_and_resumes_after_a_crash(context) -> None:  # type: ignore[no-untyped-def]
    store = context.subscriptions
    body = make_sub()
    expected = _audience(context)
    form = {"title": "Rupiah menguat", "body": "Kurs ditutup naik.", "url": "https://kabarkini.example/e"}
    campaigns = CampaignStore(context.redis, context.keys)
    cid = campaigns.create(
        validate_campaign({**form, "topics": ["nasional", "ekonomi"]}, topics=context.topics)
    )
    handed: list[tuple[str, list[str]]] = []

    def crashing(batch_id: str, batch: list[str], attempts: list[int], delay: float) -> None:
        if len(handed) == 5:
            raise Crash
        handed.append((batch_id, batch))

    delivery = Delivery(context)
    with pytest.raises(Crash):
        delivery.plan(cid, crashing, chunk_bytes=8)
    assert campaigns.get(cid).state == "planning"
    # A reader who subscribes after planning began is not in this campaign's fixed audience.
    late = validate_subscription(
        {**body, "endpoint": "https://fcm.googleapis.com/fcm/send/late", "topics": ["nasional"]},
        policy=context.policy,
        topics=context.topics,
    )
    store.upsert(late)

    def at_once(batch_id: str, batch: list[str], attempts: list[int], delay: float) -> None:
        # As if a worker took the batch and finished it at once: the campaign already counts it.
        done = {b: len(s) for b, s in [*handed, (batch_id, batch)]}
        assert campaigns.get(cid).counters["total"] >= sum(done.values()), batch_id
        handed.append((batch_id, batch))

    assert delivery.plan(cid, at_once, chunk_bytes=8) > 5
    by_batch: dict[str, list[str]] = {}
    for batch_id, batch in handed:
        # A batch handed out before the crash but after the last checkpoint is handed out again, identically.
        assert by_batch.setdefault(batch_id, batch) == batch
        assert 0 < len(batch) <= context.settings.batch_size
    # Full batches only, whatever the chunk boundaries (8 bytes here: 64 ids); the last one takes the rest.
    sizes = [len(by_batch[f"b{n}"]) for n in range(len(by_batch))]
    assert sizes == [50] * 11 + [30], sizes
    planned = [sid for batch in by_batch.values() for sid in batch]
    assert len(planned) == len(set(planned)) and set(planned) == expected
    campaign = campaigns.get(cid)
    assert campaign.state == "sending" and campaign.counters["total"] == 580
    assert not context.redis.exists(context.keys.campaign_audience(cid))


def test_planning_resumes_from_an_earlier_release_s_byte_checkpoint(context) -> None:  # type: ignore[no-untyped-def]
    """A planning job checkpointed by the release before kept ``plan_byte``: every id below its first bit
    was handed out. The new planner carries on from there, neither resending nor skipping a reader."""
    expected = _audience(context)
    campaigns = CampaignStore(context.redis, context.keys)
    form = {"title": "Rupiah menguat", "body": "Kurs ditutup naik.", "url": "https://kabarkini.example/e"}
    cid = campaigns.create(
        validate_campaign({**form, "topics": ["nasional", "ekonomi"]}, topics=context.topics)
    )

    def crash_at_once(batch_id: str, batch: list[str], attempts: list[int], delay: float) -> None:
        raise Crash

    delivery = Delivery(context)
    with pytest.raises(Crash):
        delivery.plan(cid, crash_at_once, chunk_bytes=8)
    key = context.keys.campaign(cid)
    before = {sid for sid in expected if int(sid) < 40 * 8}
    context.redis.hdel(key, "plan_from")
    context.redis.hset(key, mapping={"plan_byte": 40, "plan_batch": 7, "total": len(before)})

    handed: dict[str, list[str]] = {}
    assert delivery.plan(cid, lambda b, s, a, d: handed.setdefault(b, s), chunk_bytes=8) > 7
    assert min(int(b[1:]) for b in handed) == 7
    planned = [sid for batch in handed.values() for sid in batch]
    assert len(planned) == len(set(planned)) and set(planned) == expected - before
    assert campaigns.get(cid).counters["total"] == 580
