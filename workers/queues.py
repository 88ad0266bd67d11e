"""Queue names, timeouts and the queue factory (enqueue helpers sit beside their jobs: workers.jobs)."""

from __future__ import annotations

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
