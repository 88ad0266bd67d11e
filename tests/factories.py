"""Helpers the tests share (import these; never import another test module)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from notifier.context import Context
from notifier.crypto import b64url_encode
from notifier.subscriptions import validate_subscription
from workers.queues import queue

T = TypeVar("T")

FCM = "https://fcm.googleapis.com/fcm/send/"


def wait_for(
    predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, message: str = "condition"
) -> T:
    """Poll ``predicate`` until it returns a truthy value (and return it); fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def make_sub(endpoint: str | None = None, **extra: Any) -> dict[str, Any]:
    """A browser-shaped PushSubscription.toJSON() with real P-256 keys (an FCM endpoint unless given)."""
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    body: dict[str, Any] = {
        "endpoint": endpoint
        or FCM
        + "dXNlcjEyMzQ1Njc4OTA:APA91bH"
        + b64url_encode(key.private_numbers().private_value.to_bytes(32, "big")),
        "expirationTime": None,
        "keys": {"p256dh": b64url_encode(point), "auth": b64url_encode(b"0123456789abcdef")},
    }
    body.update(extra)
    return body


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
