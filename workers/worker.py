"""Worker entry point: ``notifier worker`` or ``python -m workers``.

Runs RQ's :class:`SimpleWorker` (no fork per job) so that the process keeps one
pooled keep-alive HTTP client and its signed VAPID JWTs across batches; the
scheduler runs inside the worker for ``send_at`` campaigns and delayed retries.
"""

from __future__ import annotations

import logging
import os
import socket

from rq import SimpleWorker
from rq.serializers import JSONSerializer

from workers.inspect import attach_recorder
from workers.jobs import runtime
from workers.logging import setup_worker_logging
from workers.queues import ALL_QUEUES, queue


def build_worker(*, name: str | None = None) -> SimpleWorker:
    """A worker on every queue, bound to the configured Redis (the VAPID key is loaded now: fail fast)."""
    delivery = runtime()
    # RQ stores job payloads as bytes; it needs its own undecoded connection.
    conn = delivery.c.raw_redis
    queues = [queue(n, conn) for n in ALL_QUEUES]
    return SimpleWorker(
        queues,
        connection=conn,
        serializer=JSONSerializer,
        name=name or f"{socket.gethostname()}.{os.getpid()}",
        maintenance_interval=int(os.environ.get("NOTIFIER_WORKER_MAINTENANCE", "60")),
        worker_ttl=int(os.environ.get("NOTIFIER_WORKER_TTL", "60")),
    )


def main(burst: bool = False, with_scheduler: bool = True, name: str | None = None) -> bool:
    """Run a worker until stopped (or until the queues are empty with ``burst``)."""
    setup_worker_logging(runtime().settings.log_json)
    worker = build_worker(name=name)
    attach_recorder(worker, runtime().c.keys)
    try:
        return worker.work(burst=burst, with_scheduler=with_scheduler, logging_level=logging.getLevelName(logging.INFO))
    finally:
        runtime().close()


if __name__ == "__main__":
    main()
