"""Thin RQ job functions, and beside them the helpers that enqueue them.

A job takes ids, loads what it needs, calls :mod:`notifier` and lets errors raise. Jobs are
enqueued by function object (RQ stores ``workers.jobs.<name>``), so renaming one breaks at
import time, not silently in a queue.
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache, partial
from typing import Any

import redis

from notifier.campaigns import FINAL, Campaign
from notifier.context import Context
from notifier.delivery import Delivery, EnqueueBatch
from notifier.settings import Settings
from workers.queues import PLAN_QUEUE, PLAN_TIMEOUT, job_retry, queue, queue_batches

log = logging.getLogger("workers.campaigns")
#: Seconds between two progress lines of one campaign from one worker.
PROGRESS_EVERY = 2.0
#: Per campaign: when this process last logged its progress, and the state it last saw.
_reported: dict[str, tuple[float, str]] = {}
_job = threading.local()
#: Net allocations of tracked objects between two young-generation collections (CPython's default: 700).
#: A batch's subscriptions, messages and outcomes (~10,000 objects) live until its commit: at 700 the
#: collector ran every few dozen messages, promoted them, and its middle generation walked them again
#: (3.4 us of wall time a message, 620 collections in a 100,000 campaign of one worker). A fan-out's
#: churn is allocated and freed again, so at 20,000 it seldom reaches the threshold (one collection in
#: that campaign), while cyclic garbage is still collected once 20,000 objects of it pile up.
GC_YOUNG_THRESHOLD = 20_000


def set_release(release: Callable[[], Any] | None) -> None:
    """The worker's hook for the job running on this thread: called once its batch is all started."""
    _job.release = release


def _release() -> Callable[[], Any] | None:
    return getattr(_job, "release", None)


@cache
def runtime() -> Delivery:
    """This worker process's delivery engine (one pooled HTTP client per process), built once."""
    delivery = Delivery(Context.build(Settings.from_env()))
    # What is alive now (modules, RQ, the engine) lives as long as the process: keep it out of the
    # cyclic collector's full passes, which a fan-out's churn triggers every few batches and which
    # would otherwise walk every object of the process each time.
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    return delivery


def plan_campaign(cid: str) -> dict[str, Any]:
    """Split a campaign's audience into batch jobs."""
    delivery = runtime()
    until = delivery.quiet_until(delivery.campaigns.get(cid))
    if until is not None:
        # Quiet hours: a non-breaking alert waits for the morning instead of waking readers.
        delivery.campaigns.set_reason(cid, "waiting for the end of quiet hours")
        # A job id of its own: re-using this running job's id, the worker would mark the scheduled job
        # finished and expire it after result_ttl (an hour), and the scheduler would drop it unplanned.
        enqueue_plan(delivery.c.raw_redis, cid, at=until, job_id=f"plan-{cid}-quiet-{int(until)}")
        return {"cid": cid, "deferred_until": until}
    batches = delivery.plan(cid, batch_enqueuer(delivery.c.raw_redis, cid))
    campaign = delivery.campaigns.get(cid)
    if batches or campaign.state in ("sending", "done"):
        total = campaign.counters["total"]
        log.info(
            "campaign %s started: %s to %s reader%s in %d batch%s",
            cid,
            _quoted(campaign.title),
            f"{total:,}",
            "" if total == 1 else "s",
            batches,
            "" if batches == 1 else "es",
        )
    report(campaign, claim=partial(delivery.campaigns.claim_telling, cid))
    return {"cid": cid, "batches": batches}


def send_test(cid: str, sids: list[str]) -> dict[str, Any]:
    """Batch a test send: the campaign goes to exactly ``sids``, not to its topics' audience."""
    delivery = runtime()
    return {"cid": cid, "batches": delivery.send_to(cid, sids, batch_enqueuer(delivery.c.raw_redis, cid))}


def send_batch(cid: str, batch_id: str, sids: list[str], attempts: list[int] | int = 1) -> dict[str, Any]:
    """Deliver one batch of a campaign (``attempts``: each id's attempt number, or one for all).

    Under the worker (``workers.worker.HeartbeatWorker``) the job lets the worker take its next
    job once every message of this batch is started, while the last answers are outstanding.
    """
    delivery = runtime()
    raw = delivery.c.raw_redis
    result = delivery.run_batch(
        cid, batch_id, sids, attempts, batch_enqueuer(raw, cid), on_started=_release()
    )
    if result.recovered:
        # This batch was a breaker's sample and the service answered well: every campaign holding it goes on.
        delivery.release_recovered(lambda other: batch_enqueuer(raw, other))
    report(delivery.campaigns.get(cid), claim=partial(delivery.campaigns.claim_telling, cid))
    return {
        "cid": cid,
        "batch": batch_id,
        "counts": dict(result.counts),
        "retrying": len(result.retry_sids),
        "stopped": result.stopped,
        "already_done": result.skipped_done,
        "lease_lost": result.lease_lost,
    }


def release_due_holds() -> int:
    """Send what campaigns held back from push services whose long Retry-After is over (maintenance)."""
    delivery = runtime()
    raw = delivery.c.raw_redis
    return delivery.release_due_holds(lambda cid: batch_enqueuer(raw, cid))


def probe_breakers() -> dict[str, Any]:
    """Half-open breakers (maintenance): a sample of held messages for each service whose cool-down is over,
    and the release of campaigns still holding a service whose breakers closed."""
    delivery = runtime()
    raw = delivery.c.raw_redis

    def enqueue_for(cid: str) -> EnqueueBatch:
        return batch_enqueuer(raw, cid)

    return {
        "sampled": delivery.probe_breakers(enqueue_for),
        "released": delivery.release_recovered(enqueue_for),
    }


def resume_campaign(cid: str) -> dict[str, Any]:
    """Resume a paused campaign."""
    delivery = runtime()
    return {"cid": cid, "queued": delivery.resume(cid, batch_enqueuer(delivery.c.raw_redis, cid))}


def _quoted(title: str) -> str:
    return "\u201c" + (title if len(title) <= 60 else title[:59] + "\u2026") + "\u201d"


def report(
    campaign: Campaign, now: float | None = None, *, claim: Callable[[str], bool] | None = None
) -> str | None:
    """Log what a person watching the terminal wants to know of ``campaign`` after a job; returns the line.

    Progress at most every :data:`PROGRESS_EVERY` seconds per campaign and worker, the end once (done,
    or paused / cancelled / failed with the reason). Two workers finishing the last batches at the
    same moment both see "done": ``claim(state)`` (``CampaignStore.claim_telling``) lets only the
    first of them say a final state.
    """
    now = time.time() if now is None else now
    cid, state, c = campaign.cid, campaign.state, campaign.counters
    last_at, last_state = _reported.get(cid, (0.0, ""))
    if state == last_state and state != "sending":
        return None
    if state in FINAL and claim is not None and not claim(state):
        _reported.pop(cid, None)
        _reported[cid] = (last_at, state)  # another worker said it: this one says nothing more either
        return None
    begun = campaign.started or campaign.first_sent or campaign.created
    line: str | None = None
    if state == "done":
        took = max(0.0, (campaign.finished or now) - begun)
        others = ", ".join(f"{c[k]:,} {k}" for k in ("gone", "rejected", "failed", "skipped") if c[k])
        took_text = f"{took * 1000:.0f} ms" if took < 1 else f"{took:.1f} s"
        line = f"campaign {cid} done in {took_text}: {c['sent']:,} of {c['total']:,} sent"
        line += f", {others}" if others else ""
        log.info("%s", line)
    elif state in ("paused", "cancelled", "failed"):
        line = f"campaign {cid} {state}" + (f": {campaign.reason}" if campaign.reason else "")
        (log.info if state == "cancelled" else log.warning)("%s", line)
    elif state == "sending" and now - last_at >= PROGRESS_EVERY and c["total"] and campaign.done_count:
        done = campaign.done_count
        rate = done / (now - begun) if now > begun else 0.0
        line = f"campaign {cid}: {done:,} of {c['total']:,} ({100 * done / c['total']:.0f} %), {rate:,.0f}/s"
        left = max(0, c["total"] - done)
        if c["deferred"] and left:
            # "deferred" counts every wait of every message (it outgrows the audience): say how many are left.
            line += f", {left:,} still to send (a push service asked us to wait)"
        log.info("%s", line)
        last_at = now
    _reported.pop(cid, None)  # re-inserted last: the oldest entry is the first
    _reported[cid] = (last_at, state)
    if len(_reported) > 1000:  # a long-lived worker forgets old campaigns
        _reported.pop(next(iter(_reported)))
    return line


# -- enqueueing ----------------------------------------------------------------------------------


def enqueue_plan(connection: redis.Redis, cid: str, *, at: float | None = None, job_id: str = "") -> str:
    """Enqueue the planning job of a campaign (now, or at unix time ``at`` via RQ's scheduler)."""
    q = queue(PLAN_QUEUE, connection)
    options = {
        "job_id": job_id or f"plan-{cid}",
        "job_timeout": PLAN_TIMEOUT,
        "retry": job_retry(),
        "description": f"plan campaign {cid}",
        "result_ttl": 3600,
        "failure_ttl": 7 * 86400,
    }
    if at is not None:
        # RQ's scheduler keeps whole seconds (it truncates): round up so nothing leaves before its time.
        job = q.enqueue_at(datetime.fromtimestamp(math.ceil(at), UTC), plan_campaign, cid, **options)
    else:
        job = q.enqueue(plan_campaign, cid, **options)
    return str(job.id)


def enqueue_test_send(connection: redis.Redis, cid: str, sids: list[str]) -> str:
    """Enqueue the batching of a test send: campaign ``cid`` to exactly ``sids`` (an editor's browsers)."""
    job = queue(PLAN_QUEUE, connection).enqueue(
        send_test,
        cid,
        sids,
        job_id=f"test-{cid}",
        job_timeout=PLAN_TIMEOUT,
        retry=job_retry(),
        description=f"test send of campaign {cid} ({len(sids)})",
        result_ttl=3600,
        failure_ttl=7 * 86400,
    )
    return str(job.id)


def batch_enqueuer(connection: redis.Redis, cid: str) -> EnqueueBatch:
    """A callback for :meth:`notifier.delivery.Delivery.plan`: enqueue one :func:`send_batch` job."""
    return queue_batches(connection, send_batch, cid)


def launch(connection: redis.Redis, cid: str, send_at: float | None) -> str:
    """Start a stored, scheduled campaign: plan now, or at ``send_at`` through RQ's scheduler."""
    if send_at is not None and send_at > time.time() + 1:
        return enqueue_plan(connection, cid, at=send_at)
    return enqueue_plan(connection, cid)


def enqueue_resume(connection: redis.Redis, cid: str) -> str:
    """Enqueue the resumption of a paused campaign (re-enqueues what its batches held back)."""
    return str(queue(PLAN_QUEUE, connection).enqueue(resume_campaign, cid).id)
