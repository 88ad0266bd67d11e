"""A job popped by a worker that died before starting it (BLPOP's gap) is found and run again."""

from __future__ import annotations

import time

from notifier.campaigns import CampaignStore
from notifier.delivery import Delivery
from tests.factories import create, store_minted, wait_for
from workers.jobs import batch_enqueuer
from workers.queues import PLAN_QUEUE, SEND_QUEUE, queue

FAST = {"NOTIFIER_WORKER_MAINTENANCE": "1", "NOTIFIER_WORKER_TTL": "2"}


def test_lost_plan_and_batch_jobs_are_requeued(context, simulator, workers) -> None:  # type: ignore[no-untyped-def]
    store_minted(context, simulator.mint(120, shared_keys=True))
    store = CampaignStore(context.redis, context.keys)
    raw = context.raw_redis

    # A plan job popped by a worker that died at once: in no queue and no registry.
    lost_plan = create(context)
    assert raw.lpop(queue(PLAN_QUEUE, raw).key) == f"plan-{lost_plan}".encode()

    # A planned campaign one of whose batch jobs was popped and lost the same way.
    lost_batch = create(context)
    raw.lrem(queue(PLAN_QUEUE, raw).key, 1, f"plan-{lost_batch}")
    batches = Delivery(context).plan(lost_batch, batch_enqueuer(raw, lost_batch))
    assert batches == 3  # 120 subscribers in batches of 50
    assert raw.lpop(queue(SEND_QUEUE, raw).key) == f"send-{lost_batch}-b0".encode()

    time.sleep(2.1)  # older than the worker TTL: nobody can still be about to start them
    workers.start(1, **FAST)
    for cid in (lost_plan, lost_batch):
        campaign = wait_for(
            lambda cid=cid: (c := store.get(cid)).state == "done" and c, timeout=30, message=cid
        )
        assert campaign.counters["sent"] == 120, campaign.counters
    assert "popped by a worker that was lost" in workers.logs()
