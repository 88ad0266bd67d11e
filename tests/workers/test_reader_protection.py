"""Reader protection with real workers and the push simulator: the hourly frequency cap and quiet hours."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rq.registry import FinishedJobRegistry, ScheduledJobRegistry

from notifier.campaigns import CampaignStore, validate_campaign
from notifier.subscriptions import validate_subscription
from tests.factories import wait_for
from workers.jobs import launch
from workers.queues import PLAN_QUEUE, queue


def subscribe(context, simulator, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    """``n`` simulator subscriptions following ``nasional``; returns their endpoints."""
    minted = simulator.mint(n)
    for sub in minted:
        item = validate_subscription(
            {**sub, "topics": ["nasional"]}, policy=context.policy, topics=context.topics
        )
        context.subscriptions.upsert(item, browser="chrome-desktop")
    return [s["endpoint"] for s in minted]


def send(context, *, breaking: bool, slug: str) -> str:  # type: ignore[no-untyped-def]
    """Create and launch a campaign to ``nasional``."""
    data = {
        "title": f"Kabar {slug}",
        "body": "Isi berita.",
        "url": f"https://kabarkini.example/nasional/{slug}",
        "topics": ["nasional"],
        "breaking": breaking,
    }
    item = validate_campaign(data, topics=context.topics)
    cid = CampaignStore(context.redis, context.keys).create(item)
    launch(context.raw_redis, cid, item.send_at)
    return cid


def received_by(simulator, cid: str) -> set[str]:  # type: ignore[no-untyped-def]
    """Endpoints the simulator accepted a message of campaign ``cid`` for."""
    return {r.endpoint for r in simulator.received() if f'"cid":"{cid}"'.encode() in (r.payload or b"")}


def test_capped_subscriber_skips_ordinary_news_but_gets_breaking(context, simulator, workers) -> None:  # type: ignore[no-untyped-def]
    capped, fresh = subscribe(context, simulator, 2)
    cap = context.settings.freq_cap_per_hour
    assert cap == 4
    now = time.time()
    freq_key = context.keys.freq(context.subscriptions.sid_of(capped))
    # Four ordinary pushes within the hour already (and one older that no longer counts).
    context.redis.zadd(
        freq_key, {f"earlier-{i}": now - 600 * (i + 1) for i in range(cap)} | {"old": now - 4000}
    )
    workers.start(1)
    store = CampaignStore(context.redis, context.keys)

    ordinary = send(context, breaking=False, slug="harga-beras")
    campaign = wait_for(
        lambda: (c := store.get(ordinary)).state == "done" and c, timeout=30, message="ordinary done"
    )
    assert campaign.counters["sent"] == 1 and campaign.counters["skipped"] == 1
    assert received_by(simulator, ordinary) == {fresh}
    # The ordinary push counts towards the fresh reader's cap.
    assert context.redis.zscore(context.keys.freq(context.subscriptions.sid_of(fresh)), ordinary) is not None

    breaking = send(context, breaking=True, slug="gempa")
    campaign = wait_for(
        lambda: (c := store.get(breaking)).state == "done" and c, timeout=30, message="breaking done"
    )
    assert campaign.counters["sent"] == 2 and campaign.counters["skipped"] == 0
    assert received_by(simulator, breaking) == {capped, fresh}
    # Breaking news does not use up the cap.
    assert context.redis.zscore(freq_key, breaking) is None


def test_quiet_hours_defer_ordinary_news_until_they_end_but_not_breaking(context, simulator, workers) -> None:  # type: ignore[no-untyped-def]
    endpoints = subscribe(context, simulator, 3)
    zone = ZoneInfo(context.settings.timezone)
    local = datetime.now(zone)
    start, end = local.hour, (local.hour + 3) % 24
    # Quiet from this hour for three hours: "now" is inside and the end is two to three hours away,
    # longer than the hour RQ keeps a finished job.
    workers.start(1, NOTIFIER_QUIET_HOURS=f"{start}-{end}")
    store = CampaignStore(context.redis, context.keys)
    ends = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=3)

    ordinary = send(context, breaking=False, slug="jadwal-krl")
    finished = FinishedJobRegistry(queue=queue(PLAN_QUEUE, context.raw_redis))
    wait_for(
        lambda: f"plan-{ordinary}" in finished.get_job_ids(),
        timeout=30,
        message="first planning run finished",
    )
    campaign = store.get(ordinary)
    assert campaign.state == "scheduled" and campaign.reason == "waiting for the end of quiet hours"
    assert campaign.counters["total"] == 0 and received_by(simulator, ordinary) == set()

    # Its planning is scheduled for the end of quiet hours, and survives until then.
    scheduled = ScheduledJobRegistry(queue=queue(PLAN_QUEUE, context.raw_redis))
    jobs = [queue(PLAN_QUEUE, context.raw_redis).fetch_job(j) for j in scheduled.get_job_ids()]
    deferred = [j for j in jobs if j is not None and j.args == [ordinary]]
    assert len(deferred) == 1
    at = scheduled.get_scheduled_time(deferred[0].id)
    assert abs(at.timestamp() - ends.timestamp()) < 1
    ttl = context.raw_redis.ttl(deferred[0].key)
    assert ttl == -1 or ttl > ends.timestamp() - time.time(), (
        f"job expires in {ttl} s, before quiet hours end"
    )

    breaking = send(context, breaking=True, slug="tsunami")
    campaign = wait_for(
        lambda: (c := store.get(breaking)).state == "done" and c, timeout=30, message="breaking done"
    )
    assert campaign.counters["sent"] == 3
    assert received_by(simulator, breaking) == set(endpoints)
    assert store.get(ordinary).state == "scheduled" and received_by(simulator, ordinary) == set()
