"""A worker SIGKILLed mid-campaign: its batches are re-run, nothing lost, duplicates only within them."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from tests.factories import (
    FAST_WORKER_ENV,
    create_campaign,
    final_total,
    mint_and_store,
    report,
    wait_for,
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

    # Kill once a fifth of the audience has been accepted and a batch is running. The registry is read again
    # after the kill: a batch may finish between the poll and the signal. A dead worker changes nothing, so a
    # job it left marked started was lost with it. If the kill fell between two batches, a new worker carries
    # on and the next batch is the target.
    threshold = AUDIENCE // 5
    lost: list[str] = []
    for _ in range(3):
        wait_for(
            lambda threshold=threshold: (
                started_reg.get_job_ids() and simulator.stats()["received"] >= threshold
            ),
            timeout=40,
            interval=0.005,
            message="a batch in flight",
        )
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=5)
        kill_t = time.monotonic()
        received_at_kill = simulator.stats()["received"]
        for entry in started_reg.get_job_ids():
            job = Job.fetch(entry.split(":")[0], connection=context.raw_redis, serializer=JSONSerializer)
            if job.get_status() == "started":
                lost.append(job.id)
        if lost:
            break
        (victim,) = workers.start(1, **env)
        threshold = received_at_kill + AUDIENCE // 10
    assert lost, "three kills in a row landed between two batches; nothing was lost to recover"
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
    # Only the batches lost with the worker are sent again: it may have had more than one in progress
    # (the next batch starts while the last answers of the previous one are outstanding).
    assert duplicated <= len(lost) * BATCH, (
        f"{duplicated} subscribers got the alert twice; at most the {len(lost)} lost batch(es) may"
    )
    assert max(per_endpoint.values()) <= 2

    # RQ's abandoned-job cleanup re-ran the lost batch (a retry used up), and nothing was left failed.
    # The campaign is done once the re-run's outcomes are counted; RQ marks the job finished only after
    # the job function has returned, a moment later, so its status is awaited, not read once.
    for job_id in lost:
        job = Job.fetch(job_id, connection=context.raw_redis, serializer=JSONSerializer)
        wait_for(
            lambda job=job: job.get_status(refresh=True) == "finished",
            timeout=10,
            message=f"the re-run of {job_id} to be marked finished (now {job.get_status(refresh=True)})",
        )
        job.refresh()
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
