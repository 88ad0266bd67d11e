"""Batch leases: one run records a batch; a run cut off while another took its batch over records nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from notifier.campaigns import CampaignStore, validate_campaign
from notifier.context import Context
from notifier.delivery import Delivery
from tests.factories import store_bulk

OTHER = "other-host:4242"


class Enqueued:
    """The batch-enqueue callback: records what planning and commits hand out (and in which pipeline)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str], Any]] = []

    def __call__(
        self, batch_id: str, sids: list[str], attempts: list[int], delay: float, *, pipeline: Any = None
    ) -> None:
        self.calls.append((batch_id, sids, pipeline))


@pytest.fixture
def context(settings, r) -> Iterator[Context]:  # type: ignore[no-untyped-def]
    """The test context with batches of 1,000, so every campaign here is one batch ``b0``."""
    ctx = Context.build(replace(settings, batch_size=1000), client=r)
    yield ctx
    ctx.close()


def _planned(context, simulator, n: int) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    """A breaking campaign to ``n`` simulator readers, planned into one batch ``b0``; its id and sids."""
    store_bulk(context, simulator.mint(n, shared_keys=True))
    campaigns = CampaignStore(context.redis, context.keys)
    cid = campaigns.create(
        validate_campaign(
            {"title": "Gempa M5,2", "body": "BMKG: tidak berpotensi tsunami.", "url": "https://k.example/g",
             "breaking": True, "topics": ["breaking"]},
            topics=context.topics,
        )
    )  # fmt: skip
    plan = Enqueued()
    assert Delivery(context).plan(cid, plan) == 1
    ((batch_id, sids, _),) = plan.calls
    assert batch_id == "b0" and len(sids) == n
    return cid, sids


def _recorded(context, cid: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    campaign = CampaignStore(context.redis, context.keys).get(cid)
    r, keys = context.redis, context.keys
    return {
        "state": campaign.state,
        "pending": campaign.pending,
        "sent": campaign.counters["sent"],
        "retried": campaign.counters["retried"],
        "done": r.sismember(keys.campaign_batches_done(cid), "b0"),
        "services": r.hgetall(keys.campaign_services(cid)),
        "timeline": r.hgetall(keys.campaign_timeline(cid)),
    }


def test_a_batch_held_by_a_live_run_waits_for_its_lease_then_takes_it(context, simulator) -> None:  # type: ignore[no-untyped-def]
    cid, sids = _planned(context, simulator, 40)
    lease = context.keys.batch_lease(cid, "b0")
    context.redis.set(lease, OTHER, px=800)
    started = time.monotonic()
    result = Delivery(context).run_batch(cid, "b0", sids, 1, Enqueued())
    waited = time.monotonic() - started
    assert waited >= 0.7, f"ran after {waited:.2f} s although another run held the batch"
    assert result.counts["sent"] == 40 and not result.lease_lost
    assert _recorded(context, cid)["state"] == "done"
    assert not context.redis.exists(lease), "the lease goes with the batch's commit"


def test_a_run_taken_over_mid_batch_stops_and_records_nothing(context, simulator) -> None:  # type: ignore[no-untyped-def]
    """The cut-off worker: its heartbeat comes back to find the batch held by another run."""
    cid, sids = _planned(context, simulator, 300)
    simulator.add_rule("stall", seconds=0.6)
    stale, retries = Delivery(context), Enqueued()

    def take_over() -> None:
        time.sleep(0.3)
        context.redis.set(context.keys.batch_lease(cid, "b0"), OTHER, px=30_000)
        assert stale.renew_lease() is False

    thief = threading.Thread(target=take_over)
    thief.start()
    result = stale.run_batch(cid, "b0", sids, 1, retries)
    thief.join()
    assert result.lease_lost and result.stopped == "lease lost" and not result.counts
    assert retries.calls == [], "a run without the lease enqueued a retry batch"
    before = _recorded(context, cid)
    assert before == {"state": "sending", "pending": 1, "sent": 0, "retried": 0, "done": False,
                      "services": {}, "timeline": {}}, before  # fmt: skip
    # Some of the 300 were in flight when the lease was lost (the sender keeps up to 256 going).
    duplicates = simulator.stats()["received"]
    assert 0 < duplicates < 300

    # The run that took the batch over finishes it: the counters are its own, once.
    simulator.clear_rules()
    other = Delivery(context)
    other.lease_token = lambda: OTHER  # type: ignore[method-assign]
    result = other.run_batch(cid, "b0", sids, 1, Enqueued())
    assert result.counts["sent"] == 300 and not result.lease_lost
    after = _recorded(context, cid)
    assert after["state"] == "done" and after["sent"] == 300 and after["pending"] == 0
    assert sum(int(n) for n in after["services"].values()) == 300
    # And the stale run, retried by RQ later, finds the batch finished.
    assert stale.run_batch(cid, "b0", sids, 1, Enqueued()).skipped_done


def test_a_run_that_reaches_its_commit_without_the_lease_writes_nothing(context, simulator) -> None:  # type: ignore[no-untyped-def]
    """The lease is checked in the commit itself, also when no heartbeat told the run it was lost."""
    cid, sids = _planned(context, simulator, 50)
    simulator.add_rule(503, fraction=0.5, retry_after=1)
    simulator.add_rule("stall", seconds=0.5)
    retries = Enqueued()
    timer = threading.Timer(
        0.2, lambda: context.redis.set(context.keys.batch_lease(cid, "b0"), OTHER, px=30_000)
    )
    timer.start()
    result = Delivery(context).run_batch(cid, "b0", sids, 1, retries)
    timer.join()
    assert result.lease_lost and retries.calls == []
    assert _recorded(context, cid)["pending"] == 1
    assert not context.redis.smembers(context.keys.campaign_batches_reserved(cid)) - {"plan", "b0"}


def test_a_retry_batch_is_reserved_and_enqueued_in_the_batch_s_commit(context, simulator) -> None:  # type: ignore[no-untyped-def]
    cid, sids = _planned(context, simulator, 60)
    simulator.add_rule(503, fraction=0.5, retry_after=1)
    retries = Enqueued()
    result = Delivery(context).run_batch(cid, "b0", sids, 1, retries)
    assert result.retry_sids and not result.lease_lost
    ((retry_id, retry_sids, pipeline),) = retries.calls
    assert pipeline is not None, "the retry job must be written in the commit's transaction"
    assert retry_id == "b0-2" and sorted(retry_sids) == sorted(result.retry_sids)
    reserved = context.redis.smembers(context.keys.campaign_batches_reserved(cid))
    assert "b0-2" in reserved
    recorded = _recorded(context, cid)
    assert recorded["done"] and recorded["pending"] == 1 and recorded["state"] == "sending"


def test_a_run_whose_lease_expired_unclaimed_takes_it_again(context, simulator) -> None:  # type: ignore[no-untyped-def]
    """Frozen past its lease with nobody taking the batch: the run goes on and records its outcome."""
    cid, sids = _planned(context, simulator, 100)
    simulator.add_rule("stall", seconds=0.5)
    run = Delivery(context)

    def expire() -> None:
        time.sleep(0.2)
        context.redis.delete(context.keys.batch_lease(cid, "b0"))
        assert run.renew_lease() is True

    thread = threading.Thread(target=expire)
    thread.start()
    result = run.run_batch(cid, "b0", sids, 1, Enqueued())
    thread.join()
    assert result.counts["sent"] == 100 and not result.lease_lost
    assert _recorded(context, cid)["state"] == "done"
