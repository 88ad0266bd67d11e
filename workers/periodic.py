"""Periodic feed polling: one self-rescheduling job chain, however many workers run.

Why a chain and not ``rq cron``: RQ 3's cron scheduler is a separate process,
and ``notifier worker`` must poll feeds on its own. Each worker calls
:func:`start_feed_polling` at start; a ``SET NX`` on ``feeds:poll-chain`` lets only
one of them enqueue the first tick. Each tick moves the chain key from its own
tick id to the next one with a compare-and-set, then schedules that next tick
with ``enqueue_in`` (RQ's scheduler, which runs inside the workers), and polls.
A tick that RQ re-runs (its worker died) loses the compare-and-set and does not
fork a second chain. The key expires after a few missed intervals, so when the
chain is lost for good the next worker to start begins a new one.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import redis
from rq import Retry

from notifier.articles import ArticleIngest
from notifier.feeds import FeedPoller
from notifier.keys import Keys
from notifier.settings import Settings
from workers.jobs import launch
from workers.queues import DEFAULT_QUEUE, queue

#: Seconds a tick may run: every feed's fetch has its own timeout, this bounds them all.
TICK_TIMEOUT = 600

# Move the chain from tick ARGV[1] to tick ARGV[2]; 0 when another tick owns it.
_ADVANCE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


def _chain_ttl(settings: Settings) -> int:
    return settings.feed_poll_seconds * 3 + 60


def _new_tick() -> str:
    return str(int(time.time() * 1000))


def _enqueue_tick(connection: redis.Redis, tick: str, delay: float) -> str:
    options: dict[str, Any] = {
        "job_id": f"feeds-poll-{tick}",
        "job_timeout": TICK_TIMEOUT,
        "retry": Retry(max=1, interval=[5]),
        "description": "poll RSS/Atom feeds",
        "result_ttl": 600,
        "failure_ttl": 86400,
    }
    q = queue(DEFAULT_QUEUE, connection)
    if delay > 0:
        job = q.enqueue_in(timedelta(seconds=delay), poll_feeds_tick, tick, **options)
    else:
        job = q.enqueue(poll_feeds_tick, tick, **options)
    return str(job.id)


def start_feed_polling(connection: redis.Redis, settings: Settings) -> str | None:
    """Begin the polling chain unless one is alive (or polling is off); returns the first job id."""
    if settings.feed_poll_seconds <= 0:
        return None
    tick = _new_tick()
    key = Keys(settings.redis_prefix).feed_poll_chain
    if not connection.set(key, tick, nx=True, ex=_chain_ttl(settings)):
        return None
    return _enqueue_tick(connection, tick, 0)


def schedule_next(connection: redis.Redis, settings: Settings, tick: str) -> str | None:
    """Hand the chain on from ``tick`` to a new tick due in ``feed_poll_seconds``; None when not ours."""
    nxt = _new_tick()
    if nxt == tick:
        nxt = str(int(tick) + 1)
    advance = connection.register_script(_ADVANCE)
    key = Keys(settings.redis_prefix).feed_poll_chain
    if not int(advance(keys=[key], args=[tick, nxt, _chain_ttl(settings)])):
        return None
    return _enqueue_tick(connection, nxt, settings.feed_poll_seconds)


def poll_feeds_tick(tick: str) -> dict[str, Any]:
    """One tick: schedule the next one first (a slow poll must not stall the chain), then poll every feed."""
    from workers.jobs import runtime

    c = runtime().c
    following = schedule_next(c.raw_redis, c.settings, tick) if c.settings.feed_poll_seconds > 0 else None
    ingest = ArticleIngest(
        c.redis,
        c.keys,
        c.topics,
        lambda cid, at: launch(c.raw_redis, cid, at),
        default_site=c.sites.default_id,
    )
    results = FeedPoller(c, ingest).poll_all()
    return {
        "tick": tick,
        "next": following,
        "feeds": [
            {
                "fid": r.fid,
                "status": r.status,
                "new": r.new,
                "pushed": r.pushed,
                "skipped": r.skipped,
                "duplicates": r.duplicates,
                "error": r.error,
            }
            for r in results
        ],
    }
