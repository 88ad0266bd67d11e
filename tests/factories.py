"""Helpers the tests share (import these; never import another test module)."""

from __future__ import annotations

from typing import Any

import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from notifier.context import Context
from notifier.subscriptions import validate_subscription
from workers.queues import queue


def run_queued(connection: redis.Redis, *names: str) -> None:
    """Run every job waiting on the queues ``names`` in this process (needs the ``job_env`` fixture)."""
    worker = SimpleWorker(
        [queue(name, connection) for name in names], connection=connection, serializer=JSONSerializer
    )
    worker.work(burst=True, with_scheduler=False)


def store_minted(
    context: Context, subs: list[dict[str, Any]], topics: tuple[str, ...] = ("breaking",)
) -> None:
    """Store simulator-minted subscriptions the way the API does."""
    for sub in subs:
        item = validate_subscription(
            {**sub, "topics": list(topics)}, policy=context.policy, topics=context.topics
        )
        context.subscriptions.upsert(item, browser="chrome-desktop")
