"""Helpers the tests share (import these; never import another test module)."""

from __future__ import annotations

import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from workers.queues import queue


def run_queued(connection: redis.Redis, *names: str) -> None:
    """Run every job waiting on the queues ``names`` in this process (needs the ``job_env`` fixture)."""
    worker = SimpleWorker(
        [queue(name, connection) for name in names], connection=connection, serializer=JSONSerializer
    )
    worker.work(burst=True, with_scheduler=False)
