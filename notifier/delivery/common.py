"""What every room of the fan-out shares: results, the enqueue callback's type, the latency buckets."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import redis

from notifier.breakers import BatchJudge, Breakers
from notifier.campaigns import Campaign, CampaignStore
from notifier.context import Context
from notifier.keys import Keys
from notifier.sending import Message, Outcome, OutcomeKind, PushSender
from notifier.settings import Settings
from notifier.subscriptions import Subscription

#: Latency histogram bucket upper bounds, seconds (Prometheus ``le`` values).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The ``le`` field of each bucket, by ``bisect_left(LATENCY_BUCKETS, latency)`` (the last one: above all).
_BUCKET_NAMES = (*(str(b) for b in LATENCY_BUCKETS), "+Inf")

SENT, GONE, REJECTED, FAILED = OutcomeKind.SENT, OutcomeKind.GONE, OutcomeKind.REJECTED, OutcomeKind.FAILED
RETRY, DEFERRED = OutcomeKind.RETRY, OutcomeKind.DEFERRED


#: (batch id, subscription ids, attempt of each id, delay in seconds[, pipeline=]) → enqueue a batch job;
#: given a ``pipeline``, the job is written in it (inside the batch's commit), not on its own.
EnqueueBatch = Callable[..., None]


log = logging.getLogger("notifier.delivery")

T = TypeVar("T")


class RedisWait:
    """A batch's end waiting out a Redis failover or a cut link: ``redis_failover_wait`` seconds in all.

    One per batch end, shared by the reads before the commit and the commit itself, so the whole end waits
    at most that long. :meth:`failed` logs the first failure, sleeps a little and returns; once the time is
    up it logs and re-raises (the batch runs again). :meth:`call` retries a read that is safe to repeat.
    """

    def __init__(self, cid: str, batch_id: str, seconds: float) -> None:
        self.cid, self.batch_id, self.seconds = cid, batch_id, seconds
        self.failed_at: float | None = None

    def failed(self, exc: redis.RedisError) -> None:
        now = time.monotonic()
        if self.failed_at is None:
            self.failed_at = now
            log.warning("batch %s of %s: Redis unreachable (%s); recording its outcome again "
                        "for up to %.0f s", self.batch_id, self.cid, exc, self.seconds)  # fmt: skip
        if now - self.failed_at >= self.seconds:
            log.error("batch %s of %s: Redis still unreachable; it will run again", self.batch_id, self.cid)
            raise exc
        time.sleep(min(0.5, self.failed_at + self.seconds - now))

    def call(self, read: Callable[[], T]) -> T:
        while True:
            try:
                return read()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self.failed(exc)

    def answered(self, outcome: str) -> None:
        """Say how the end went once Redis answered again, if it ever stopped answering."""
        if self.failed_at is not None:
            log.warning("batch %s of %s: %s once Redis answered again (after %.1f s)",
                        self.batch_id, self.cid, outcome, time.monotonic() - self.failed_at)  # fmt: skip


def _token(service: str) -> str:
    """A push service's id as it may appear in a batch (job) id: letters, digits, ``_`` and ``-`` only."""
    return re.sub(r"[^A-Za-z0-9]", "_", service)


def long_hold_reason(service: str, until: float, status: int, seconds: float) -> str:
    """Why a campaign waits for ``service`` (shown on the campaign and by ``notifier campaigns show``)."""
    moment = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(until))
    return (
        f"{service} asked every sender to wait until {moment} (HTTP {status}, Retry-After {int(seconds)} s): "
        "its messages wait and go out then, if they have not expired"
    )


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when installed (far less CPU per small HTTP request), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


@dataclass
class BatchResult:
    """What one batch run did."""

    counts: Counter[str] = field(default_factory=Counter)
    retry_sids: list[str] = field(default_factory=list)
    retry_attempts: list[int] = field(default_factory=list)
    retry_delay: float = 0.0
    skipped_done: bool = False
    stopped: str = ""
    #: Another run took the batch over while this one was cut off: nothing of this run was recorded.
    lease_lost: bool = False
    #: Messages held back after their answer: a long wait asked (a campaign hold), or a failed sample.
    long_held: int = 0
    #: Push services whose breakers this batch's sample closed (their campaigns are released next).
    recovered: list[str] = field(default_factory=list)


@dataclass
class PolicyWrites:
    """What a batch's answers set off per push service, to write in its commit (notifier.breakers)."""

    judge: BatchJudge
    #: service → ids held back from it in this batch (not sent now; sent once it is resumed).
    kept: dict[str, list[str]]
    #: sid → ``wait`` / ``review`` for gone answers not deleted now.
    gone_plan: dict[str, str]
    #: Filled by the write: (index of the hold's answer in the commit's replies, follow-up batch id, ids).
    follow_ups: list[tuple[int, str, list[str]]]
    #: service → (until, status, seconds): a long Retry-After this batch starts waiting out for the campaign.
    new_long_holds: dict[str, tuple[float, int, float]] = field(default_factory=dict)
    #: service → kind → verdict, for the services this batch is the half-open sample of.
    verdicts: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class _Batch:
    """One batch between its steps: built (``_begin``), sent (``_send``), recorded (``_end``)."""

    cid: str
    batch_id: str
    campaign: Campaign
    result: BatchResult
    attempt_of: dict[str, int]
    enqueue: EnqueueBatch
    messages: list[Message]
    by_sid: dict[str, Subscription]
    quarantined: list[str]
    judge: BatchJudge
    #: service → ids held back from it (a breaker is open): not sent now, recorded as held.
    kept: dict[str, list[str]]
    #: When the batch began (a long hold's end counts from an answer's time, or from this).
    now: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)
    unsent: list[Message] = field(default_factory=list)
    stop_reason: str = ""
    #: Services the campaign already held for a long wait when the batch was sent.
    holding_before: set[str] = field(default_factory=set)


class DeliveryBase:
    """The state the rooms share; :class:`~notifier.delivery.engine.Delivery` sets it up."""

    c: Context
    r: redis.Redis
    keys: Keys
    settings: Settings
    campaigns: CampaignStore
    sender: PushSender
    breakers: Breakers

    def _standing(self, campaign: Campaign) -> dict[str, int]:
        """The campaign's site's reader-standing rules (its own, else the deployment's settings)."""
        site = self.c.sites.find(campaign.site)
        if site is None:
            return {
                "unreachable_after": self.settings.unreachable_after,
                "reader_budget": self.settings.reader_budget,
                "long_hold_after": self.settings.long_hold_after,
            }
        return site.standing_rules(self.settings)
