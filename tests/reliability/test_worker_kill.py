"""A worker SIGKILLed mid-campaign: its batch is re-run, nothing lost, duplicates within one batch."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from tests.conftest import wait_for
from tests.reliability.conftest import (
    FAST_WORKER_ENV,
    create_campaign,
    final_total,
    mint_and_store,
    report,
    wait_state,
)
from workers.queues import ABANDONED_RETRIES, SEND_QUEUE

#: Subscribers in the campaign (the issue's 20,000; ~15 s here).
AUDIENCE = int(os.environ.get("NOTIFIER_RELIABILITY_AUDIENCE", "20000"))
BATCH = 500


def test_sigkilled_worker_mid_campaign_loses_nothing(context, simulator, workers) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    minted = mint_and_store(context, simulator, AUDIENCE)
    stored_s = time.monotonic() - started
    env = {**FAST_WORKER_ENV, "NOTIFIER_BATCH_SIZE": str(BATCH)}
    (victim,) = workers.start(1, **env)
    cid = create_campaign(context)
    started_reg = StartedJobRegistry(SEND_QUEUE, connection=context.raw_redis, serializer=JSONSerializer)

    # Kill once a fifth of the audience has been accepted and a batch is running.
    def mid_batch() -> list[str]:
        ids = started_reg.get_job_ids()
        return ids if ids and simulator.stats()["received"] >= AUDIENCE // 5 else []

    running = wait_for(mid_batch, timeout=40, interval=0.005, message="a batch in flight")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=5)
    kill_t = time.monotonic()
    received_at_kill = simulator.stats()["received"]
    jobs = [
        Job.fetch(i.split(":")[0], connection=context.raw_redis, serializer=JSONSerializer) for i in running
    ]
    # Only a job still marked started when the worker died was lost with it (one may have just finished).
    lost = [job.id for job in jobs if job.get_status() == "started"]
    assert lost, "the kill landed between two batches; nothing was lost to recover"
    workers.start(1, **env)

    campaign = wait_state(context, cid, ["done"], timeout=45, workers=workers)
    recovered_s = time.monotonic() - kill_t
    k = campaign.counters
    assert k["total"] == AUDIENCE
    assert final_total(campaign) == AUDIENCE, k
    assert k["sent"] == AUDIENCE, k
    assert campaign.pending == 0

    per_endpoint = Counter(r.endpoint for r in simulator.received())
    assert set(per_endpoint) == {s["endpoint"] for s in minted}, "a subscriber never received the alert"
    duplicated = sum(1 for n in per_endpoint.values() if n > 1)
    assert duplicated <= BATCH, (
        f"{duplicated} subscribers got the alert twice; at most one batch ({BATCH}) may"
    )
    assert max(per_endpoint.values()) <= 2

    # RQ's abandoned-job cleanup re-ran the lost batch (a retry used up), and nothing was left failed.
    for job_id in lost:
        job = Job.fetch(job_id, connection=context.raw_redis, serializer=JSONSerializer)
        assert job.get_status() == "finished"
        assert job.retries_left == ABANDONED_RETRIES - 1
    assert FailedJobRegistry(SEND_QUEUE, connection=context.raw_redis, serializer=JSONSerializer).count == 0
    report(
        "worker SIGKILL",
        audience=AUDIENCE,
        batch=BATCH,
        store_s=round(stored_s, 1),
        received_at_kill=received_at_kill,
        lost_jobs=lost,
        duplicates=duplicated,
        kill_to_done_s=round(recovered_s, 1),
        total_s=round(time.monotonic() - started, 1),
    )
