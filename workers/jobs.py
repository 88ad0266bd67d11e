"""Thin RQ job functions: take ids, load what they need, call :mod:`notifier`, let errors raise."""

from __future__ import annotations

import gc
from functools import cache
from typing import Any

from notifier.context import Context
from notifier.delivery import Delivery
from notifier.settings import Settings
from workers.queues import batch_enqueuer


@cache
def runtime() -> Delivery:
    """This worker process's delivery engine (one pooled HTTP client per process), built once."""
    delivery = Delivery(Context.build(Settings.from_env()))
    # What is alive now (modules, RQ, the engine) lives as long as the process: keep it out of the
    # cyclic collector's full passes, which a fan-out's churn triggers every few batches and which
    # would otherwise walk every object of the process each time.
    gc.freeze()
    return delivery


def plan_campaign(cid: str) -> dict[str, Any]:
    """Split a campaign's audience into batch jobs."""
    delivery = runtime()
    until = delivery.quiet_until(delivery.campaigns.get(cid))
    if until is not None:
        from workers.queues import enqueue_plan

        # Quiet hours: a non-breaking alert waits for the morning instead of waking readers.
        delivery.campaigns.set_reason(cid, "waiting for the end of quiet hours")
        # A job id of its own: re-using this running job's id, the worker would mark the scheduled job
        # finished and expire it after result_ttl (an hour), and the scheduler would drop it unplanned.
        enqueue_plan(delivery.c.raw_redis, cid, at=until, job_id=f"plan-{cid}-quiet-{int(until)}")
        return {"cid": cid, "deferred_until": until}
    batches = delivery.plan(cid, batch_enqueuer(delivery.c.raw_redis, cid))
    return {"cid": cid, "batches": batches}


def send_test(cid: str, sids: list[str]) -> dict[str, Any]:
    """Batch a test send: the campaign goes to exactly ``sids``, not to its topics' audience."""
    delivery = runtime()
    return {"cid": cid, "batches": delivery.send_to(cid, sids, batch_enqueuer(delivery.c.raw_redis, cid))}


def send_batch(cid: str, batch_id: str, sids: list[str], attempts: list[int] | int = 1) -> dict[str, Any]:
    """Deliver one batch of a campaign (``attempts``: each id's attempt number, or one for all)."""
    delivery = runtime()
    result = delivery.run_batch(cid, batch_id, sids, attempts, batch_enqueuer(delivery.c.raw_redis, cid))
    return {
        "cid": cid,
        "batch": batch_id,
        "counts": dict(result.counts),
        "retrying": len(result.retry_sids),
        "stopped": result.stopped,
        "already_done": result.skipped_done,
        "lease_lost": result.lease_lost,
    }


def resume_campaign(cid: str) -> dict[str, Any]:
    """Resume a paused campaign."""
    delivery = runtime()
    return {"cid": cid, "queued": delivery.resume(cid, batch_enqueuer(delivery.c.raw_redis, cid))}
