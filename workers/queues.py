"""Queue names and enqueue helpers. Jobs take ids and plain JSON data (JSON serializer, never pickle)."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue, Retry
from rq.serializers import JSONSerializer

#: Planning and test sends: short, latency-critical jobs, served first.
PLAN_QUEUE = "notifier-plan"
#: Batch deliveries of campaigns.
SEND_QUEUE = "notifier-send"
#: Housekeeping: feed polling and the like.
DEFAULT_QUEUE = "notifier-default"
#: Every queue, in priority order; a worker listens to all of them.
ALL_QUEUES = (PLAN_QUEUE, SEND_QUEUE, DEFAULT_QUEUE)

#: Seconds a batch may run before RQ kills it (up to 1,000 messages, 256 in flight, each with a 10 s timeout).
BATCH_TIMEOUT = 300
#: Seconds the planning of a million-subscriber campaign may take.
PLAN_TIMEOUT = 1800
#: A batch or planning job lost with its worker is run again this many times.
ABANDONED_RETRIES = 3
#: Seconds before each of those runs. The first is immediate: a job lost with its worker has already waited
#: out the heartbeat deadline, and a delayed retry needs RQ's scheduler, whose lock (61 s) may be held by the
#: very worker host that was cut off. Measured in tests/reliability/test_worker_hosts.py.
RETRY_INTERVALS = [0, 5, 15]


def queue(name: str, connection: redis.Redis) -> Queue:
    """An RQ queue using the JSON serializer."""
    return Queue(name, connection=connection, serializer=JSONSerializer)


def enqueue_plan(connection: redis.Redis, cid: str, *, at: float | None = None, job_id: str = "") -> str:
    """Enqueue the planning job of a campaign (now, or at unix time ``at`` via RQ's scheduler)."""
    q = queue(PLAN_QUEUE, connection)
    options = {
        "job_id": job_id or f"plan-{cid}",
        "job_timeout": PLAN_TIMEOUT,
        "retry": Retry(max=ABANDONED_RETRIES, interval=RETRY_INTERVALS),
        "description": f"plan campaign {cid}",
        "result_ttl": 3600,
        "failure_ttl": 7 * 86400,
    }
    if at is not None:
        # RQ's scheduler keeps whole seconds (it truncates): round up so nothing leaves before its time.
        job = q.enqueue_at(
            datetime.fromtimestamp(math.ceil(at), UTC), "workers.jobs.plan_campaign", cid, **options
        )
    else:
        job = q.enqueue("workers.jobs.plan_campaign", cid, **options)
    return str(job.id)


def enqueue_test_send(connection: redis.Redis, cid: str, sids: list[str]) -> str:
    """Enqueue the batching of a test send: campaign ``cid`` to exactly ``sids`` (an editor's browsers)."""
    job = queue(PLAN_QUEUE, connection).enqueue(
        "workers.jobs.send_test",
        cid,
        sids,
        job_id=f"test-{cid}",
        job_timeout=PLAN_TIMEOUT,
        retry=Retry(max=ABANDONED_RETRIES, interval=RETRY_INTERVALS),
        description=f"test send of campaign {cid} ({len(sids)})",
        result_ttl=3600,
        failure_ttl=7 * 86400,
    )
    return str(job.id)


def batch_enqueuer(connection: redis.Redis, cid: str):  # type: ignore[no-untyped-def]
    """A callback for :meth:`notifier.delivery.Delivery.plan`: enqueue one batch job (optionally delayed)."""
    q = queue(SEND_QUEUE, connection)

    def enqueue(
        batch_id: str, sids: list[str], attempts: list[int], delay: float, *, pipeline: Any = None
    ) -> None:
        """Enqueue (or schedule) the job; with ``pipeline``, written in that transaction (see Delivery)."""
        options = {
            "job_id": f"send-{cid}-{batch_id}",
            "job_timeout": BATCH_TIMEOUT,
            "retry": Retry(max=ABANDONED_RETRIES, interval=RETRY_INTERVALS),
            "description": f"send campaign {cid} batch {batch_id} ({len(sids)})",
            "result_ttl": 600,
            "failure_ttl": 7 * 86400,
            "pipeline": pipeline,
        }
        if delay > 0:
            # Whole seconds, rounded up (see enqueue_plan): a Retry-After is never cut short.
            when = datetime.fromtimestamp(math.ceil(time.time() + delay), UTC)
            q.enqueue_at(when, "workers.jobs.send_batch", cid, batch_id, sids, attempts, **options)
        else:
            q.enqueue("workers.jobs.send_batch", cid, batch_id, sids, attempts, **options)

    return enqueue


def launch(connection: redis.Redis, cid: str, send_at: float | None) -> str:
    """Start a stored, scheduled campaign: plan now, or at ``send_at`` through RQ's scheduler."""
    if send_at is not None and send_at > time.time() + 1:
        return enqueue_plan(connection, cid, at=send_at)
    return enqueue_plan(connection, cid)
