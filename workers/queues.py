"""Queue names, timeouts, the retry policy, the queue factory and the batch callback (jobs: workers.jobs)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from notifier.delivery import EnqueueBatch

#: Planning and test sends: short, latency-critical jobs, served first.
PLAN_QUEUE = "notifier-plan"
#: Batch deliveries of campaigns.
SEND_QUEUE = "notifier-send"
#: Housekeeping: feed polling and the like.
DEFAULT_QUEUE = "notifier-default"
#: Every queue, in priority order; a worker listens to all of them.
ALL_QUEUES = (PLAN_QUEUE, SEND_QUEUE, DEFAULT_QUEUE)

#: Seconds a batch may run before RQ kills it (up to 2,000 messages, 256 in flight, each with a 10 s timeout).
BATCH_TIMEOUT = 300
#: Seconds the planning of a million-subscriber campaign may take.
PLAN_TIMEOUT = 1800
#: A batch or planning job lost with its worker is run again this many times.
ABANDONED_RETRIES = 3
#: Seconds before each of those runs. The first is immediate and at the front of the queue: a job lost with
#: its worker has already waited out the heartbeat deadline (at the back, a lost batch of a 20,000-reader
#: campaign waited another minute behind the rest), and a delayed retry needs RQ's scheduler, whose lock
#: (61 s) may be held by the very worker host that was cut off (tests/reliability/test_worker_hosts.py).
RETRY_INTERVALS = [0, 5, 15]


def job_retry() -> Retry:
    """The retry policy of planning and batch jobs: ``RETRY_INTERVALS``, back at the front of the queue."""
    return Retry(max=ABANDONED_RETRIES, interval=RETRY_INTERVALS, enqueue_at_front=True)


def queue(name: str, connection: redis.Redis) -> Queue:
    """An RQ queue using the JSON serializer."""
    return Queue(name, connection=connection, serializer=JSONSerializer)


def queue_batches(connection: redis.Redis, job: Callable[..., Any], cid: str) -> EnqueueBatch:
    """The enqueue callback :class:`notifier.delivery.Delivery` calls for each batch of campaign ``cid``.

    ``job`` is the batch job (``workers.jobs.send_batch``, passed in: this module stands below the jobs).
    The callback lives here, not beside the job, so the fan-out calling it never climbs back into the
    module that called the fan-out.
    """
    q = queue(SEND_QUEUE, connection)

    def enqueue(
        batch_id: str, sids: list[str], attempts: list[int], delay: float, *, pipeline: Any = None
    ) -> None:
        """Enqueue (or schedule) the job; with ``pipeline``, written in that transaction (see Delivery)."""
        options = {
            "job_id": f"send-{cid}-{batch_id}",
            "job_timeout": BATCH_TIMEOUT,
            "retry": job_retry(),
            "description": f"send campaign {cid} batch {batch_id} ({len(sids)})",
            "result_ttl": 600,
            "failure_ttl": 7 * 86400,
            "pipeline": pipeline,
        }
        if delay > 0:
            # Whole seconds, rounded up (see workers.jobs.enqueue_plan): a Retry-After is never cut short.
            when = datetime.fromtimestamp(math.ceil(time.time() + delay), UTC)
            q.enqueue_at(when, job, cid, batch_id, sids, attempts, **options)
        else:
            q.enqueue(job, cid, batch_id, sids, attempts, **options)

    return enqueue
