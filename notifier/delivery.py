"""Fan-out: plan a campaign into batches, and deliver one batch. Free of RQ: the queue is a callback.

Completion is tracked with a ``pending`` counter on the campaign: planning holds
one unit while it runs and adds one per batch it hands out; a batch that
schedules a retry adds one for it; every batch or planning run gives its own
unit back exactly once (guarded by the ``batches:done`` set), and the run that
brings ``pending`` to zero marks the campaign ``done``.

A batch is run under a **lease** (``Keys.batch_lease``: ``host:pid`` of the run, for
``worker_ttl`` seconds, renewed by the worker's heartbeat with the job's own
registration, so both expire together). Only the holder records the batch's outcome,
and it records everything in one transaction that also hands the lease back: the
counters, the subscriptions' bookkeeping, the retry batch's reservation and its RQ job.
So a run that was cut off (a worker host off the network, a process frozen) and whose
batch went to another worker after the heartbeat deadline comes back, finds the lease
taken (or the batch finished), stops sending and writes nothing: nothing is counted
twice. A run whose lease merely expired, with nobody else taking it, takes it again.
A run that finds another holder waits until the holder finishes (the batch is done)
or dies (its lease expires).

The commit waits out a Redis failover (``redis_failover_wait`` seconds): a batch
whose messages went out while the primary died is recorded on the new primary
instead of being sent again. It cannot apply twice: a retry after a lost reply finds
the batch finished.

One process may have **several batches in progress** (the worker starts the next
one while the last answers of the previous one are outstanding): each holds its
own lease, and all of them send on one event loop, on a thread of its own
(:meth:`Delivery.run_batch`), sharing the sender's connections and windows. The
Redis work of a batch (its lease, loading, the commit) runs on the caller's
thread, never on that loop: a slow Redis or a lease wait never stalls the
messages of the other batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import socket
import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis
from redis.client import Pipeline

from notifier.breakers import DELETE, KEY, REVIEW, WAIT, BatchJudge, Breakers, PendingDeletion, Policy
from notifier.browsers import push_service, service_id
from notifier.campaigns import (
    CANCELLED,
    DELIVERING,
    DONE,
    PAUSED,
    PLANNING,
    SCHEDULED,
    SENDING,
    Campaign,
    CampaignStore,
    message_payload,
    receipt_token,
)
from notifier.campaigns import (
    FAILED as CAMPAIGN_FAILED,
)
from notifier.context import Context
from notifier.holds import ServiceHolds
from notifier.sending import Message, Outcome, OutcomeKind, PushSender, Sender, is_config_status, origin_of
from notifier.subscriptions import Subscription, endpoint_index
from notifier.vapid import VapidKey

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

# Claim a batch for this run (KEYS: lease, batches:done; ARGV: token, ttl in ms, batch id): 2 when the
# batch is finished, 1 when this run holds it now (renewed, or taken as nobody held it), 0 when another does.
_CLAIM = """
if redis.call('SISMEMBER', KEYS[2], ARGV[3]) == 1 then return 2 end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

#: Seconds between two looks at a batch held by another run.
LEASE_POLL = 0.25


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
    #: Messages held back because their push service asked for a long wait (a campaign hold, see plan).
    long_held: int = 0


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


class Delivery:
    """Planning and batch delivery for one process (holds its Sender and Lua scripts)."""

    def __init__(self, context: Context, sender: PushSender | None = None) -> None:
        self.c = context
        self.r: redis.Redis = context.redis
        self.keys = context.keys
        self.settings = context.settings
        self.campaigns = CampaignStore(self.r, self.keys)
        #: 429/503 holds are per push service for every worker (notifier.holds).
        self.sender: PushSender = sender or Sender(
            context.settings, context.vapid, context.policy, holds=ServiceHolds(context.redis, context.keys)
        )
        #: What answers set off per push service: held deletions and services, quarantine (notifier.breakers).
        self.breakers = Breakers(self.r, self.keys, Policy.from_settings(context.settings))
        self._services: dict[str, str] = {}
        self._claim = self.r.register_script(_CLAIM)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()
        #: (campaign, batch) this process runs under a lease, for the heartbeat to renew: True once lost.
        self._leases: dict[tuple[str, str], bool] = {}

    # -- planning -------------------------------------------------------------------------

    def quiet_until(self, campaign: Campaign, now: float | None = None) -> float | None:
        """When a non-breaking campaign falls in its site's quiet hours, the time they end; else None."""
        site = self.c.sites.find(campaign.site)
        hours = site.quiet(self.settings) if site else self.settings.quiet_hours
        if campaign.breaking or hours is None:
            return None
        now = time.time() if now is None else now
        zone = site.zone(self.settings) if site else self.settings.timezone
        local = datetime.fromtimestamp(now, ZoneInfo(zone))
        start, end = hours
        inside = start <= local.hour < end if start < end else (local.hour >= start or local.hour < end)
        if not inside:
            return None
        end_moment = local.replace(hour=end, minute=0, second=0, microsecond=0)
        if end_moment <= local:
            end_moment = end_moment.fromtimestamp(end_moment.timestamp() + 86400, end_moment.tzinfo)
        return end_moment.timestamp()

    def plan(self, cid: str, enqueue: EnqueueBatch, *, chunk_bytes: int = 1024) -> int:
        """Split the audience into batches and hand each to ``enqueue``; returns the batch count.

        The audience is fixed when planning starts: the topics' bitmaps, OR-ed into
        ``campaign:{cid}:audience``. Its ids are read in chunks and handed out in full
        batches of ``batch_size`` (only the last may be smaller: a chunk boundary never
        cuts one short). The batch number and the first id not handed out yet are
        checkpointed on the campaign after each hand-out, so a planning job retried
        after a crash continues with the same batch ids and the same batches.
        """
        campaigns = self.campaigns
        campaign = campaigns.get(cid)
        if self.c.sites.find(campaign.site) is None and campaign.state in (SCHEDULED, PLANNING):
            # Its readers subscribed with that site's key: nothing else may sign for them.
            reason = f"site {campaign.site!r} is not configured any more"
            campaigns.transition(cid, CAMPAIGN_FAILED, reason=reason)
            return 0
        if campaign.state == SCHEDULED:
            if not campaigns.start_planning(cid):
                return 0
        elif campaign.state != PLANNING:
            return 0
        size = self.settings.batch_size
        progress = campaigns.plan_progress(cid)
        batch_no, total, resume_from = progress.batch_no, progress.total, progress.resume_from
        audience = self.keys.campaign_audience(cid)
        store = self.c.subscriptions
        if not progress.snapped or not self.r.exists(audience):
            leave_out = self._left_out(campaign)
            _, out = store.snapshot_audience(
                campaign.topics, audience, site=campaign.site, leave_out=[key for _, key in leave_out]
            )
            self.r.expire(audience, 7 * 86400)
            campaigns.audience_snapshotted(
                cid, **{name: n for (name, _), n in zip(leave_out, out, strict=True)}
            )
            resume_from = 0
        pending: list[str] = []

        def hand_out(next_id: int | None) -> None:
            """Hand out the full batches of ``pending`` and checkpoint; ``None``: the last, all of it.

            The last needs no checkpoint: the campaign's final fields are written next, and a crash
            before that hands out the same batches again from the previous checkpoint.
            """
            nonlocal batch_no, total, pending
            ready = len(pending) if next_id is None else len(pending) - len(pending) % size
            for start in range(0, ready, size):
                chunk = pending[start : start + size]
                batch_no = self._hand_out(cid, batch_no, chunk, enqueue)
                total += len(chunk)
            pending = pending[ready:]
            if next_id is not None:
                first = int(pending[0]) if pending else next_id
                campaigns.save_plan_progress(cid, next_from=first, batch_no=batch_no, total=total)

        start_byte = resume_from // 8
        for reached, ids in store.iter_bitmap(audience, start_byte=start_byte, chunk_bytes=chunk_bytes):
            if int(ids[0]) < resume_from:  # the resumed byte's ids before the checkpoint are handed out
                ids = [sid for sid in ids if int(sid) >= resume_from]
            pending += ids
            if len(pending) >= 4 * size:
                hand_out(reached * 8)
                if campaigns.state(cid) == CANCELLED:
                    break
        else:
            hand_out(None)
        self.r.delete(audience)
        campaigns.finish_planning(cid, total=total, batches=batch_no)
        return batch_no

    def _left_out(self, campaign: Campaign) -> list[tuple[str, str]]:
        """(counter, bitmap) of the readers a campaign leaves out: a breaking one none, another the
        unreachable (no push shown in a row of ``unreachable_after``) and those over their budget."""
        if campaign.breaking:
            return []
        out = []
        if self.settings.unreachable_after > 0:
            out.append(("unreachable", self.keys.subs_unreachable))
        if self.settings.reader_budget > 0:
            out.append(("over_budget", self.keys.subs_over_budget))
        return out

    def send_to(self, cid: str, sids: Sequence[str], enqueue: EnqueueBatch) -> int:
        """Deliver a scheduled campaign to exactly ``sids`` (a test send) instead of its topics' audience.

        Same bookkeeping as :meth:`plan` (``planning`` holds one unit of ``pending``
        while it hands out batches), so counters, progress and ``done`` work as usual.
        Returns the number of batches.
        """
        if not self.campaigns.start_planning(cid):
            return 0
        unique = list(dict.fromkeys(sids))
        self.campaigns.set_total(cid, len(unique))
        batch_no = 0
        for start in range(0, len(unique), self.settings.batch_size):
            batch_no = self._hand_out(
                cid, batch_no, unique[start : start + self.settings.batch_size], enqueue
            )
        self.campaigns.finish_planning(cid, total=len(unique), batches=batch_no)
        return batch_no

    def _hand_out(self, cid: str, batch_no: int, sids: list[str], enqueue: EnqueueBatch) -> int:
        batch_id = f"b{batch_no}"
        self.campaigns.reserve(cid, batch_id)
        enqueue(batch_id, sids, [1] * len(sids), 0.0)
        return batch_no + 1

    # -- leases ---------------------------------------------------------------------------

    @staticmethod
    def lease_token() -> str:
        """Who holds the leases this process takes: ``host:pid`` (one lease key per batch)."""
        return f"{socket.gethostname()}:{os.getpid()}"

    def _claim_batch(self, cid: str, batch_id: str) -> int:
        return int(
            self._claim(
                keys=[self.keys.batch_lease(cid, batch_id), self.keys.campaign_batches_done(cid)],
                args=[self.lease_token(), int(self.settings.worker_ttl * 1000), batch_id],
            )
        )

    def renew_lease(self) -> bool | None:
        """Renew the lease of every batch this process is sending (the worker's heartbeats call this).

        ``None`` when no batch runs; ``False`` once another run holds one of them or finished it:
        that batch then stops sending and records nothing.
        """
        held = [key for key, lost in list(self._leases.items()) if not lost]
        if not held:
            return None
        kept = True
        for key in held:
            if self._claim_batch(*key) != 1:
                if self._leases.get(key) is False:
                    log.warning("batch %s of %s was taken over by another run; it stops", key[1], key[0])
                    self._leases[key] = True
                kept = False
        return kept

    def _lease_lost(self, cid: str, batch_id: str) -> bool:
        return bool(self._leases.get((cid, batch_id)))

    def _take_lease(self, cid: str, batch_id: str) -> bool:
        """Hold the batch for this run, waiting while another live run holds it; False if it is finished."""
        waited = False
        while True:
            claim = self._claim_batch(cid, batch_id)
            if claim == 2:
                return False
            if claim == 1:
                self._leases[(cid, batch_id)] = False
                return True
            if not waited:
                log.info(
                    "batch %s of %s is held by another run: waiting for it to finish or expire", batch_id, cid
                )
                waited = True
            time.sleep(LEASE_POLL)

    def _commit(
        self,
        cid: str,
        batch_id: str,
        queue_writes: Callable[[Pipeline], None],
        replies: list[object] | None = None,
    ) -> str:
        """Record a batch's outcome in one transaction, only while this run holds the batch's lease.

        ``queue_writes`` adds the writes to the transaction's pipeline. Returns ``"committed"``, ``"done"``
        (already recorded: by another run, or by this one when a failover lost the reply) or ``"lost"``
        (another run holds the batch). While Redis is unreachable it tries again for
        ``redis_failover_wait`` seconds, then raises.
        """
        lease_key = self.keys.batch_lease(cid, batch_id)
        token = self.lease_token()
        failed_at: float | None = None
        while True:
            try:
                claim = self._claim_batch(cid, batch_id)
                if claim != 1:
                    outcome = "done" if claim == 2 else "lost"
                    break
                with self.r.pipeline(transaction=True) as pipe:
                    pipe.watch(lease_key)
                    if pipe.get(lease_key) != token:
                        continue
                    pipe.multi()
                    queue_writes(pipe)
                    pipe.delete(lease_key)
                    answered = pipe.execute()
                    if replies is not None:
                        replies[:] = answered
                outcome = "committed"
                break
            except redis.WatchError:
                continue
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                now = time.monotonic()
                wait = self.settings.redis_failover_wait
                if failed_at is None:
                    failed_at = now
                    log.warning("batch %s of %s: Redis unreachable (%s); recording its outcome again "
                                "for up to %.0f s", batch_id, cid, exc, wait)  # fmt: skip
                if now - failed_at >= wait:
                    log.error("batch %s of %s: Redis still unreachable; it will run again", batch_id, cid)
                    raise
                time.sleep(min(0.5, failed_at + wait - now))
        if failed_at is not None:
            log.warning("batch %s of %s: %s once Redis answered again (after %.1f s)", batch_id, cid, outcome,
                        time.monotonic() - failed_at)  # fmt: skip
        return outcome

    # -- one batch ------------------------------------------------------------------------

    def run_batch(
        self,
        cid: str,
        batch_id: str,
        sids: Sequence[str],
        attempts: Sequence[int] | int,
        enqueue: EnqueueBatch,
        *,
        on_started: Callable[[], Any] | None = None,
    ) -> BatchResult:
        """Deliver one batch, blocking: Redis work on this thread, the sending on the delivery loop.

        The loop runs on a thread of its own, shared by every batch of the process, so several
        threads may each run a batch here at once: their messages share the sender's
        connections and windows. ``on_started`` is called once every message of the batch is
        started (from the loop's thread), while its last answers may still be outstanding.
        """
        try:
            batch = self._begin(cid, batch_id, sids, attempts, enqueue)
            if isinstance(batch, BatchResult):
                return batch
            future = asyncio.run_coroutine_threadsafe(self._send(batch, on_started), self._delivery_loop())
            try:
                while True:
                    try:
                        # Waited in slices: the exception RQ raises in this thread at a job timeout lands.
                        future.result(timeout=1.0)
                        break
                    except TimeoutError:
                        if future.done():
                            future.result()
                            break
            except BaseException:
                future.cancel()  # a job timeout or shutdown: stop sending; the batch records nothing
                with contextlib.suppress(BaseException):
                    future.result(timeout=5.0)
                raise
            return self._end(batch)
        finally:
            self._leases.pop((cid, batch_id), None)
            if on_started is not None:
                on_started()

    async def deliver(
        self,
        cid: str,
        batch_id: str,
        sids: Sequence[str],
        attempts: Sequence[int] | int,
        enqueue: EnqueueBatch,
        *,
        on_started: Callable[[], Any] | None = None,
    ) -> BatchResult:
        """Load the batch's subscriptions, send, and record every outcome and counter in one transaction.

        ``attempts`` gives each subscription's attempt number (1 for the first
        try), so a message held back locally does not use up its retries. This runs
        every step on the current loop (a tool or a test); workers use :meth:`run_batch`.
        """
        try:
            batch = self._begin(cid, batch_id, sids, attempts, enqueue)
            if isinstance(batch, BatchResult):
                return batch
            await self._send(batch, on_started)
            return self._end(batch)
        finally:
            self._leases.pop((cid, batch_id), None)
            if on_started is not None:
                on_started()

    def _delivery_loop(self) -> asyncio.AbstractEventLoop:
        """This process's delivery event loop, running on its own thread (started at first use)."""
        with self._loop_lock:
            loop = self._loop
            if loop is None or loop.is_closed():
                loop = self._loop = new_event_loop()
                self._loop_thread = threading.Thread(
                    target=loop.run_forever, name="delivery-loop", daemon=True
                )
                self._loop_thread.start()
            return loop

    def close(self) -> None:
        """Close the sender's connections and stop the delivery loop."""
        with self._loop_lock:
            loop, thread = self._loop, self._loop_thread
            self._loop = self._loop_thread = None
        if loop is None or loop.is_closed():
            return
        if thread is not None and thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.sender.close(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
        else:
            loop.run_until_complete(self.sender.close())
        if not loop.is_running():
            loop.close()

    def _begin(
        self,
        cid: str,
        batch_id: str,
        sids: Sequence[str],
        attempts: Sequence[int] | int,
        enqueue: EnqueueBatch,
    ) -> _Batch | BatchResult:
        """Take the batch's lease and build its messages (a BatchResult: nothing to send, all recorded)."""
        result = BatchResult()
        attempt_of = dict(
            zip(sids, [attempts] * len(sids) if isinstance(attempts, int) else attempts, strict=True)
        )
        if self.campaigns.batch_finished(cid, batch_id) or not self._take_lease(cid, batch_id):
            result.skipped_done = True
            return result
        campaign = self.campaigns.get(cid)
        now = time.time()
        if campaign.state not in DELIVERING:
            result.stopped = campaign.state
            held = list(sids) if campaign.state == PAUSED else []
            outcome = self._commit(
                cid,
                batch_id,
                lambda pipe: self._write(campaign, batch_id, [], [], result, pipe, held=held, now=now),
            )
            if self._settle(outcome, result) and held:
                self._requeue_if_resumed(cid, enqueue)
            return result
        subs, missing = self._load(sids)
        result.counts["skipped"] += missing
        judge = self.breakers.judge(cid, campaign.counters["total"])
        born = campaign.started or campaign.created
        expired = born + campaign.ttl < now
        messages: list[Message] = []
        by_sid: dict[str, Subscription] = {}
        quarantine_after = self.settings.quarantine_days * 86400
        rejections_max = self.breakers.policy.quarantine_rejections
        capped = self._capped(campaign, subs, now)
        # Each reader is signed for with the key it subscribed with (notifier.keyring): a site that rotated
        # its key keeps reaching the readers still bound to an older one until their next visit moves them.
        ring = self.c.keyring
        deployment_key = self.c.vapid
        signers: dict[str, VapidKey | None] = {}
        retired_key = 0
        prefix = campaign.payload_prefix()
        receipt_key = self.c.receipt_key
        ts_ms = int(now * 1000)
        # The same for every message of the batch: computed once, not per message.
        ttl = max(60, int(born + campaign.ttl - now))
        urgency = campaign.urgency
        topic = campaign.story[:32]
        quarantined: list[str] = []
        n_capped = 0  # frequency-capped or expired: skipped
        now_ms = now * 1000
        for sub in subs:
            sid = sub.sid
            if (sub.failures and sub.first_failure and now - sub.first_failure > quarantine_after) or (
                sub.rejections >= rejections_max
            ):
                quarantined.append(sid)
                continue
            if capped and sid in capped:
                n_capped += 1
                continue
            if sub.expiration_time is not None and sub.expiration_time <= now_ms:
                # The browser said this subscription ends then: a push after it cannot arrive.
                n_capped += 1
                continue
            key_id = sub.key_id
            if key_id in signers:
                signer = signers[key_id]
            else:
                signer = signers[key_id] = ring.signing_key(campaign.site, key_id)
            if signer is None:
                retired_key += 1  # bound to a retired key: nothing can sign for it until it re-subscribes
                continue
            by_sid[sid] = sub
            messages.append(
                Message(
                    sid,
                    sub.endpoint,
                    sub.p256dh,
                    sub.auth,
                    message_payload(prefix, sid, receipt_token(receipt_key, cid, sid), ts_ms),
                    ttl,
                    urgency,
                    topic,
                    None if signer is deployment_key else signer,  # None: the sender's own key
                )
            )
        result.counts["skipped"] += len(quarantined) + n_capped + retired_key
        if expired:
            # The alert outlived its TTL while waiting (e.g. a long Retry-After): it would be stale.
            result.counts["failed"] += len(messages)
            messages = []
        # Messages to a push service this campaign holds back (a breaker is open) are not sent now.
        kept: dict[str, list[str]] = {}
        service_of = self._service_of
        if judge.held and messages:
            sending: list[Message] = []
            for message in messages:
                service = service_of(origin_of(message.endpoint))
                if service in judge.held:
                    kept.setdefault(service, []).append(message.sid)
                else:
                    sending.append(message)
            messages = sending
        return _Batch(
            cid,
            batch_id,
            campaign,
            result,
            attempt_of,
            enqueue,
            messages,
            by_sid,
            quarantined,
            judge,
            kept,
            now,
        )

    def _long_wait(self, outcome: Outcome) -> bool:
        """A push service asking for a wait longer than ``long_hold_after`` (Chrome's caps: days)."""
        long_after = self.settings.long_hold_after
        return (
            long_after > 0
            and (outcome.kind == RETRY or outcome.kind == DEFERRED)
            and outcome.retry_after is not None
            and outcome.retry_after > long_after
        )

    async def _send(self, batch: _Batch, on_started: Callable[[], Any] | None) -> None:
        """Send the batch's messages (on the delivery loop), watching the campaign's state meanwhile."""
        cid, batch_id = batch.cid, batch.batch_id
        service_of = self._service_of
        held_services = batch.judge.held
        observe = batch.judge.observe
        long_wait = self._long_wait
        batch.holding_before = set(batch.judge.holds)

        async def watch_state() -> None:
            """Every 0.5 s, the campaign's state, read off the event loop: slow Redis never stalls sends."""
            while not batch.stop_reason:
                await asyncio.sleep(0.5)
                try:
                    state = await asyncio.to_thread(self.campaigns.state, cid)
                except redis.RedisError:
                    continue  # Redis failing over: keep sending, the commit waits for the new primary
                if state not in DELIVERING:
                    batch.stop_reason = state or "missing"

        def should_stop() -> bool:
            if batch.stop_reason:
                return True
            if self._lease_lost(cid, batch_id):
                batch.stop_reason = "lease lost"
            return bool(batch.stop_reason)

        def keep_back(origin: str) -> bool:
            return bool(held_services) and service_of(origin) in held_services

        def on_outcome(outcome: Outcome) -> None:
            # Every answer goes to the push service's breakers (notifier.breakers): one may open mid-batch.
            if outcome.status:
                observe(service_of(outcome.origin), outcome.kind, outcome.status)
            if long_wait(outcome):
                # The rest of this batch's messages to that service are kept back at once (keep_back).
                held_services.add(service_of(outcome.origin))

        watcher = asyncio.ensure_future(watch_state())
        try:
            batch.outcomes, batch.unsent = await self.sender.send_all(
                batch.messages,
                should_stop=should_stop,
                on_outcome=on_outcome,
                on_started=on_started,
                keep_back=keep_back,
            )
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    def _end(self, batch: _Batch) -> BatchResult:
        """Account for the outcomes and record them in one transaction (the commit); requeue as asked."""
        cid, batch_id, result, enqueue, judge = (
            batch.cid,
            batch.batch_id,
            batch.result,
            batch.enqueue,
            batch.judge,
        )
        outcomes, stop_reason, kept = batch.outcomes, batch.stop_reason, batch.kept
        service_of = self._service_of
        result.stopped = stop_reason
        if self._lease_lost(cid, batch_id):
            return self._lost(cid, batch_id, result, len(outcomes))
        held: list[str] = []
        if stop_reason in ("", PAUSED):
            for message in batch.unsent:
                service = service_of(origin_of(message.endpoint))
                if service in judge.held:
                    kept.setdefault(service, []).append(message.sid)
                elif stop_reason:
                    held.append(message.sid)
        else:
            kept = {}  # cancelled: nothing is held for later
        self.breakers.refresh_tally(judge)  # batches recorded while this one was in flight count too
        gone_plan = self._plan_gone(outcomes, judge)
        # A long Retry-After (Chrome caps a site for 1 to 14 days, answering 429): those messages are held
        # back for the campaign, deferred not failed, and the campaign waits it out (one release, no retry
        # storm), while its other push services go on.
        new_long: dict[str, tuple[float, int, float]] = {}
        settled: list[Outcome] = []
        for outcome in outcomes:
            if stop_reason not in ("", PAUSED) or not self._long_wait(outcome):
                settled.append(outcome)
                continue
            service = service_of(outcome.origin)
            kept.setdefault(service, []).append(outcome.sid)
            result.counts["deferred"] += 1
            result.long_held += 1
            wait = float(outcome.retry_after or 0.0)
            until = (outcome.at or batch.now) + wait
            if service not in batch.holding_before and until > new_long.get(service, (0.0, 0, 0.0))[0]:
                new_long[service] = (until, outcome.status or 429, wait)
        for service, (until, status, wait) in new_long.items():
            judge.holds[service] = long_hold_reason(service, until, status, wait)
        self._account(settled, batch.attempt_of, result)
        follow_ups: list[tuple[int, str, list[str]]] = []

        def queue_writes(pipe: Pipeline) -> None:
            if result.retry_sids:
                retry_id = f"{batch_id}-{max(result.retry_attempts)}"
                self.campaigns.reserve(cid, retry_id, pipe)
                enqueue(retry_id, result.retry_sids, result.retry_attempts, result.retry_delay, pipeline=pipe)
            self._write(
                batch.campaign,
                batch_id,
                outcomes,
                batch.quarantined,
                result,
                pipe,
                held=held,
                now=time.time(),
                by_sid=batch.by_sid,
                policy=PolicyWrites(judge, kept, gone_plan, follow_ups, new_long),
            )

        replies: list[object] = []
        if not self._settle(self._commit(cid, batch_id, queue_writes, replies), result):
            if result.lease_lost:
                return self._lost(cid, batch_id, result, len(outcomes))
            log.warning(
                "batch %s of %s is recorded already (by the run that took it over, or by this one when "
                "Redis lost the reply); %d outcomes of this run are not recorded again",
                batch_id, cid, len(outcomes),
            )  # fmt: skip
            return result
        for index, follow_up, kept_sids in follow_ups:
            if not int(replies[index]):  # type: ignore[call-overload]
                # The service was resumed while this batch ran: what it kept back goes out now.
                enqueue(follow_up, kept_sids, [1] * len(kept_sids), 0.0)
        if held:
            self._requeue_if_resumed(cid, enqueue)
        return result

    @staticmethod
    def _settle(outcome: str, result: BatchResult) -> bool:
        """Note a commit's outcome on ``result``; True when this run's writes were recorded."""
        if outcome == "done":
            result.skipped_done = True
        elif outcome == "lost":
            result.lease_lost = True
        return outcome == "committed"

    @staticmethod
    def _lost(cid: str, batch_id: str, result: BatchResult, sent: int) -> BatchResult:
        """A run whose batch another run holds: nothing recorded; its counts are not this run's to give."""
        log.warning(
            "batch %s of %s: lease lost to another run; %d outcomes of this run are dropped, not counted",
            batch_id, cid, sent,
        )  # fmt: skip
        result.lease_lost = True
        result.stopped = "lease lost"
        result.counts.clear()
        result.retry_sids, result.retry_attempts = [], []
        return result

    def _load(self, sids: Sequence[str]) -> tuple[list[Subscription], int]:
        subs = self.c.subscriptions.load_many(sids)
        return subs, len(sids) - len(subs)

    def _freq_cap(self, campaign: Campaign) -> int:
        site = self.c.sites.find(campaign.site)
        return site.freq_cap(self.settings) if site else self.settings.freq_cap_per_hour

    def _capped(self, campaign: Campaign, subs: list[Subscription], now: float) -> set[str]:
        """Subscribers who already got their site's cap of non-breaking pushes in the last hour."""
        cap = self._freq_cap(campaign)
        if campaign.breaking or cap <= 0 or not subs:
            return set()
        pipe = self.r.pipeline(transaction=False)
        for sub in subs:
            pipe.zcount(self.keys.freq(sub.sid), now - 3600, "+inf")
        return {sub.sid for sub, n in zip(subs, pipe.execute(), strict=True) if int(n) >= cap}

    def _account(self, outcomes: list[Outcome], attempt_of: dict[str, int], result: BatchResult) -> None:
        max_attempts = self.settings.max_attempts
        delays: list[float] = []
        for outcome in outcomes:
            attempt = attempt_of.get(outcome.sid, 1)
            if outcome.kind == DEFERRED:
                # Never sent: the origin asked us to slow down. Same attempt, later.
                result.counts["deferred"] += 1
                result.retry_sids.append(outcome.sid)
                result.retry_attempts.append(attempt)
                delays.append(outcome.retry_after or 1.0)
            elif outcome.kind == RETRY:
                if attempt >= max_attempts or (
                    outcome.retry_after is not None and outcome.retry_after > 3600
                ):
                    outcome.kind = FAILED
                    result.counts[FAILED] += 1
                else:
                    result.counts["retried"] += 1
                    result.retry_sids.append(outcome.sid)
                    result.retry_attempts.append(attempt + 1)
                    if outcome.retry_after is not None:
                        delays.append(outcome.retry_after)
                    else:
                        delays.append(self.settings.retry_base * 2 ** (attempt - 1))
            else:
                result.counts[outcome.kind] += 1
        if delays:
            # One follow-up batch: wait for the longest Retry-After asked, plus jitter so
            # many workers retrying the same service do not arrive in one burst.
            result.retry_delay = max(delays) + random.uniform(0.05, 0.5)

    def _write(
        self,
        campaign: Campaign,
        batch_id: str,
        outcomes: list[Outcome],
        quarantined: list[str],
        result: BatchResult,
        pipe: Pipeline,
        *,
        held: list[str],
        now: float,
        by_sid: dict[str, Subscription] | None = None,
        policy: PolicyWrites | None = None,
    ) -> None:
        """Queue every outcome, counter and the batch's finish on ``pipe`` (the commit's transaction).

        ``policy``: what the push services' answers set off (notifier.breakers), written before the
        finish so a campaign holding a service back waits as ``paused`` instead of ending ``done``.
        """
        cid = campaign.cid
        keys = self.keys
        by_sid = by_sid or {}
        store = self.c.subscriptions
        minute = int(now // 60) * 60
        second = int(now)
        # Tallied by (service, kind, status) and latency bucket index; the field names are built
        # once per distinct key after the loop, not per message.
        tally: dict[tuple[str, str, int], int] = {}
        in_bucket = [0] * (len(LATENCY_BUCKETS) + 1)
        latency_sum = 0.0
        sent_n = 0
        first_at, last_at = float("inf"), 0.0
        sent_sids: list[str] = []
        track_freq = not campaign.breaking and self._freq_cap(campaign) > 0
        service_of: dict[str, str] = {}  # by origin: one URL parse per push service, not per message
        judge = policy.judge if policy is not None else None
        rejections: dict[str, list[str]] = {}  # service → ids it rejected (400/401/403) in this batch
        gone_plan = policy.gone_plan if policy is not None else {}
        pruned: Counter[str] = Counter()
        review: dict[str, list[tuple[str, str, int]]] = {}
        waiting: list[PendingDeletion] = []
        browsers: Counter[str] = Counter()  # by the reader's browser family (from the subscription)
        for outcome in outcomes:
            sub = by_sid.get(outcome.sid)
            kind = outcome.kind
            browsers[f"{sub.browser if sub is not None else 'other'}:{kind}"] += 1
            if sub is None:
                service = "other"
            elif outcome.origin:
                service = service_of.get(outcome.origin) or service_of.setdefault(
                    outcome.origin, push_service(outcome.origin)
                )
            else:
                service = push_service(sub.endpoint)
            key = (service, kind, outcome.status)
            tally[key] = tally.get(key, 0) + 1
            if outcome.latency:
                latency_sum += outcome.latency
                in_bucket[bisect_left(LATENCY_BUCKETS, outcome.latency)] += 1
            if sub is None:
                continue
            if kind == SENT:
                sent_n += 1
                sent_sids.append(sub.sid)
                at = outcome.at or now
                if at < first_at:
                    first_at = at
                if at > last_at:
                    last_at = at
                if sub.failures or sub.rejections:
                    store.clear_failures(sub.sid, pipe)
                if track_freq:
                    fkey = keys.freq(sub.sid)
                    pipe.zadd(fkey, {cid: now})
                    pipe.zremrangebyscore(fkey, "-inf", now - 3600)
                    pipe.expire(fkey, 3700)
            elif kind == GONE:
                gone_service = self._service_of(outcome.origin or sub.endpoint)
                action = gone_plan.get(sub.sid)
                if action is None:  # pruning at a normal rate: at once
                    store.delete(sub, pipe=pipe, exact=True)
                    pruned[gone_service] += 1
                elif action == REVIEW:
                    review.setdefault(gone_service, []).append((sub.sid, sub.p256dh, outcome.status))
                else:
                    index_field = endpoint_index(sub.endpoint)
                    waiting.append(
                        PendingDeletion(sub.sid, gone_service, outcome.status, sub.p256dh, index_field, cid)
                    )
            elif kind == REJECTED and is_config_status(outcome.status):
                # Counted against the subscription only while its push service accepts our key: not while
                # its key breaker is open, and only once it accepted anything in this campaign (decided at
                # the commit, with the batches recorded meanwhile: see Breakers.count_rejections).
                rejecting = self._service_of(outcome.origin or sub.endpoint)
                if judge is not None and KEY not in judge.open.get(rejecting, {}):
                    rejections.setdefault(rejecting, []).append(sub.sid)
            elif kind == FAILED or kind == REJECTED:
                store.record_failure(sub.sid, second, pipe)
        services: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        for (service, kind, status), n in tally.items():
            services[f"{service}:{kind}"] += n
            statuses[f"{service}:{status}"] += n
        latency = {_BUCKET_NAMES[i]: n for i, n in enumerate(in_bucket) if n}
        store.quarantine(quarantined, pipe)
        if sent_sids:
            settings = self.settings
            store.mark_sent(
                sent_sids,
                pipe,
                unreachable_after=settings.unreachable_after,
                budget=settings.reader_budget,
                now=now,
            )
            pipe.hincrby(keys.sent_daily(campaign.site), time.strftime("%Y-%m-%d", time.gmtime(now)), sent_n)
        counts = {k: v for k, v in result.counts.items() if v}
        site_outcomes = keys.site_outcomes(campaign.site)
        for name, n in services.items():
            pipe.hincrby(keys.outcomes_total, name, n)
            pipe.hincrby(site_outcomes, name, n)
        for name, n in statuses.items():
            pipe.hincrby(keys.statuses_total, name, n)
            pipe.hincrby(keys.status_minute(minute), name, n)
        if statuses:
            pipe.expire(keys.status_minute(minute), 7200)
        for bucket, n in latency.items():
            pipe.hincrby(keys.latency, bucket, n)
        if latency_sum:
            pipe.hincrbyfloat(keys.latency, "sum", latency_sum)
            pipe.hincrby(keys.latency, "count", sum(latency.values()))
        finished_n = len(outcomes) - len(result.retry_sids) - result.long_held
        if finished_n:
            tp_key = keys.throughput_minute(minute)
            pipe.hincrby(tp_key, str(second), finished_n)
            pipe.expire(tp_key, 7200)
        if policy is not None:
            breakers = self.breakers
            breakers.defer_deletions(pipe, waiting)
            self._settle_pending(pipe, policy.judge, review, pruned)
            breakers.record(pipe, cid, policy.judge.batch, pruned, now)
            for service in {*rejections, *(s for s, t in policy.judge.batch.items() if t.accepted)}:
                breakers.count_rejections(pipe, cid, service, rejections.get(service, []))
            for trip in policy.judge.trips:
                breakers.trip(pipe, trip)
            for service, items in review.items():
                breakers.hold_deletions(pipe, service, items, cid, now)
            tripped = {trip.service for trip in policy.judge.trips}
            for service, sids in policy.kept.items():
                follow_up = f"{batch_id}-k{_token(service)}"
                index = self.campaigns.hold_service(
                    cid,
                    service,
                    policy.judge.reason(service),
                    sids,
                    force=service in tripped or service in policy.new_long_holds,
                    follow_up=follow_up,
                    pipe=pipe,
                )
                policy.follow_ups.append((index, follow_up, sids))
            for service, (until, status, seconds) in policy.new_long_holds.items():
                # Released by the workers' maintenance when the wait is over, or when the campaign's
                # messages would expire (sending then is pointless: they would be stale).
                release_at = min(until, (campaign.started or campaign.created) + campaign.ttl)
                self.campaigns.hold_until(
                    cid,
                    service,
                    until=release_at,
                    status=status,
                    seconds=seconds,
                    release_id=f"L{int(release_at)}_{_token(service)}",
                    pipe=pipe,
                )
        self.campaigns.record_batch(
            cid,
            batch_id,
            now=now,
            counts=counts,
            services=services,
            browsers=browsers,
            first_sent=first_at if sent_n else None,
            last_sent=last_at if sent_n else None,
            held=held,
            pipe=pipe,
        )

    def _service_of(self, origin: str) -> str:
        """The push service of an origin (cached: called per message)."""
        service = self._services.get(origin)
        if service is None:
            service = self._services[origin] = service_id(origin)
        return service

    def _plan_gone(self, outcomes: list[Outcome], judge: BatchJudge) -> dict[str, str]:
        """What becomes of each gone answer: deleted now (absent), ``wait`` for evidence, or ``review``.

        See :mod:`notifier.breakers`: a 404/410 deletes at once only when its push service's recent
        answers look normal; a breaker that is open holds it for review instead.
        """
        if not any(o.kind == GONE for o in outcomes):
            return {}
        # Another worker may have opened a breaker while this batch ran: read again before deleting.
        judge.refresh_open(self.breakers.open())
        plan: dict[str, str] = {}
        for outcome in outcomes:
            if outcome.kind == GONE:
                action = judge.gone_action(self._service_of(outcome.origin))
                if action != DELETE:
                    plan[outcome.sid] = action
        return plan

    def _settle_pending(
        self,
        pipe: Pipeline,
        judge: BatchJudge,
        review: dict[str, list[tuple[str, str, int]]],
        pruned: Counter[str],
    ) -> None:
        """Settle the gone answers waiting on the services this batch heard from (see notifier.breakers).

        Deleted once the service's answers look normal again, held for review if its breaker
        opened, left waiting otherwise.
        """
        services = [s for s, t in judge.batch.items() if t.answered] + [t.service for t in judge.trips]
        if not services:
            return
        store = self.c.subscriptions
        for service in self.breakers.pending_counts(dict.fromkeys(services)):
            action = judge.gone_action(service)
            if action == WAIT:
                continue
            waiting = self.breakers.pending(service)
            for p in waiting:
                if action == DELETE:
                    store.delete_exact(p.sid, p.index_field, p.p256dh, pipe)
                    pruned[service] += 1
                else:
                    review.setdefault(service, []).append((p.sid, p.p256dh, p.status))
            self.breakers.drop_pending(pipe, service, [p.sid for p in waiting])

    def resume(self, cid: str, enqueue: EnqueueBatch) -> int:
        """Resume a campaign: send what it held back (from push services, or while paused).

        An operator resumes after fixing the cause, so the breakers of the services this
        campaign held are closed too (they would hold it again at once otherwise). Returns the
        number of messages queued; :class:`NotFound` for an unknown campaign.
        """
        campaign = self.campaigns.get(cid)
        queued = 0
        for service in self.campaigns.holds(cid):
            self.breakers.close(service)
            queued += self.release_service(cid, service, enqueue)
        if self.campaigns.transition(cid, SENDING, allowed_from=[PAUSED]):
            queued += self._drain_held(cid, enqueue)
            if not queued and self.campaigns.pending(cid) <= 0:
                self.campaigns.transition(cid, DONE, allowed_from=[SENDING])
        elif campaign.state == SENDING:
            queued += self._drain_held(cid, enqueue)
        return queued

    def release_service(self, cid: str, service: str, enqueue: EnqueueBatch) -> int:
        """Stop holding ``service`` back in campaign ``cid``: enqueue what was held; returns how many."""
        prefix = f"r{self.campaigns.next_drain(cid)}_{_token(service)}_"
        _, batches = self.campaigns.release_service(
            cid, service, prefix=prefix, batch_size=self.settings.batch_size
        )
        for i, sids in enumerate(batches):
            enqueue(f"{prefix}{i}", sids, [1] * len(sids), 0.0)
        return sum(len(b) for b in batches)

    def release_due_holds(
        self, enqueue_for: Callable[[str], EnqueueBatch], *, now: float | None = None
    ) -> int:
        """Send what campaigns held back from push services whose long wait is over; returns how many.

        The workers' maintenance calls this every ``NOTIFIER_WORKER_MAINTENANCE`` seconds; a release is
        claimed by one process only. Messages whose campaign has outlived its TTL meanwhile are counted
        as failed by their batch (stale news is not sent).
        """
        queued = 0
        for cid, service, release_id, _until in self.campaigns.due_releases(now):
            if not self.campaigns.claim_release(cid, service, release_id):
                continue
            queued += self.release_service(cid, service, enqueue_for(cid))
            self.campaigns.finish_release(cid, service, release_id)
            log.info("campaign %s: the long hold on %s is over; its held messages go out", cid, service)
        return queued

    def resume_service(self, service: str, enqueue_for: Callable[[str], EnqueueBatch]) -> dict[str, int]:
        """Close the breakers of ``service`` and release it in every active campaign holding it.

        ``enqueue_for(cid)`` gives the batch enqueuer of a campaign. Returns messages queued by campaign.
        """
        self.breakers.close(service)
        queued: dict[str, int] = {}
        for campaign in self.campaigns.active():
            if service in self.campaigns.holds(campaign.cid):
                queued[campaign.cid] = self.release_service(campaign.cid, service, enqueue_for(campaign.cid))
        return queued

    def _drain_held(self, cid: str, enqueue: EnqueueBatch) -> int:
        """Enqueue what paused batches held back as new batches; returns how many messages."""
        n = self.campaigns.next_drain(cid)
        queued = part = 0
        while sids := self.campaigns.take_held(cid, self.settings.batch_size):
            batch_id = f"h{n}_{part}"
            self.campaigns.reserve(cid, batch_id)
            enqueue(batch_id, list(sids), [1] * len(sids), 0.0)
            queued += len(sids)
            part += 1
        return queued

    def _requeue_if_resumed(self, cid: str, enqueue: EnqueueBatch) -> None:
        """Held-back messages of a batch finishing after a resume are sent on, not left in a drained list."""
        if self.campaigns.state(cid) == SENDING:
            self._drain_held(cid, enqueue)
