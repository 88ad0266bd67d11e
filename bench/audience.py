"""Fill Redis with an audience: via ``SubscriptionStore.upsert``, the same writes pipelined, or synthetic."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis

from notifier.context import Context
from notifier.subscriptions import subscription_id, validate_subscription

#: The topic every benchmark subscriber follows (the campaign goes to everyone regardless).
TOPIC = "nasional"


def used_memory(r: redis.Redis) -> int:
    """``INFO memory`` used_memory, bytes."""
    return int(r.info("memory")["used_memory"])


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
    """The writes ``upsert`` makes for a new subscription, pipelined (a test checks the hashes are equal)."""
    r, keys = context.redis, context.keys
    now = int(time.time())
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    for start in range(0, len(subs), chunk):
        part = subs[start : start + chunk]
        pipe = r.pipeline(transaction=False)
        sids = []
        for sub in part:
            sid = subscription_id(sub["endpoint"])
            sids.append(sid)
            pipe.hset(
                keys.sub(sid),
                mapping={
                    "e": sub["endpoint"],
                    "p": sub["keys"]["p256dh"].rstrip("="),
                    "a": sub["keys"]["auth"].rstrip("="),
                    "t": TOPIC,
                    "l": "id",
                    "b": "chrome-desktop",
                    "s": now,
                    "f": 0,
                    "k": context.vapid.key_id,
                    "c": now,
                },
            )
        pipe.sadd(keys.subs_all, *sids)
        pipe.sadd(keys.subs_topic(TOPIC), *sids)
        pipe.hincrby(keys.subs_daily("added"), day, len(part))
        pipe.execute()
        progress(len(part))


def fill_synthetic(context: Context, count: int, progress: Callable[[int], None], chunk: int = 5000) -> None:
    """``count`` synthetic subscription hashes and set members (for planning only: nobody sends to them)."""
    r, keys = context.redis, context.keys
    now = int(time.time())
    p256dh = "B" + "A" * 86
    auth = "A" * 22
    salt = os.urandom(4).hex()
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        pipe = r.pipeline(transaction=False)
        sids = []
        for i in range(start, start + n):
            endpoint = f"https://fcm.googleapis.com/fcm/send/{salt}-{i:09d}" + "x" * 120
            sid = subscription_id(endpoint)
            sids.append(sid)
            pipe.hset(
                keys.sub(sid),
                mapping={
                    "e": endpoint,
                    "p": p256dh,
                    "a": auth,
                    "t": TOPIC,
                    "l": "id",
                    "b": "chrome-desktop",
                    "s": now,
                    "f": 0,
                    "c": now,
                },
            )
        pipe.sadd(keys.subs_all, *sids)
        pipe.execute()
        progress(n)
