"""Fill Redis with an audience: via ``SubscriptionStore.upsert``, the same writes pipelined, or synthetic."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import redis

from notifier.context import Context
from notifier.subscriptions import SubscriptionInput, validate_subscription

#: The topic every benchmark subscriber follows (the campaign goes to everyone regardless).
TOPIC = "nasional"


def stored_bytes(r: redis.Redis) -> int:
    """``INFO memory`` used_memory less buffers that are not stored data.

    Client buffers (a pipeline's replies) and the AOF buffer (writes not yet on
    disk) come and go; taken before and after storing an audience, the
    difference is what keeping the audience costs.
    """
    info = r.info("memory")
    return (
        int(info["used_memory"]) - int(info.get("mem_clients_normal", 0)) - int(info.get("mem_aof_buffer", 0))
    )


def store_upsert(context: Context, subs: Sequence[dict[str, Any]], progress: Callable[[int], None]) -> None:
    """Store subscriptions exactly as the subscribe API does (validation + ``SubscriptionStore.upsert``)."""
    for i, sub in enumerate(subs):
        item = validate_subscription({**sub, "topics": [TOPIC]}, policy=context.policy, topics=context.topics)
        context.subscriptions.upsert(item, browser="chrome-desktop", key_id=context.vapid.key_id)
        if i % 500 == 499:
            progress(500)
    progress(len(subs) % 500)


def store_pipelined(
    context: Context, subs: Sequence[dict[str, Any]], progress: Callable[[int], None], chunk: int = 2000
) -> None:
    """The same upsert as the API (validation + the atomic upsert script), pipelined ``chunk`` at a time."""
    for start in range(0, len(subs), chunk):
        part = subs[start : start + chunk]
        items = [
            validate_subscription({**sub, "topics": [TOPIC]}, policy=context.policy, topics=context.topics)
            for sub in part
        ]
        context.subscriptions.upsert_many(items, browser="chrome-desktop", key_id=context.vapid.key_id)
        progress(len(part))


def fill_synthetic(context: Context, count: int, progress: Callable[[int], None], chunk: int = 5000) -> None:
    """``count`` synthetic subscriptions through the same upsert (for planning only: nobody sends to them)."""
    p256dh = "B" + "A" * 86
    auth = "A" * 22
    salt = os.urandom(4).hex()
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        items = [
            SubscriptionInput(
                endpoint=f"https://fcm.googleapis.com/fcm/send/{salt}-{i:09d}" + "x" * 120,
                p256dh=p256dh,
                auth=auth,
                topics=(TOPIC,),
                lang="id",
            )
            for i in range(start, start + n)
        ]
        context.subscriptions.upsert_many(items, browser="chrome-desktop", key_id=context.vapid.key_id)
        progress(n)
