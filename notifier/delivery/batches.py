"""One batch: loaded, sent on the process's delivery loop, its outcomes accounted; many in flight at once."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.client import Pipeline

from notifier.breakers import KEY, RECOVERED
from notifier.campaigns import DELIVERING, PAUSED, Campaign, ReceiptSigner, message_payload
from notifier.delivery.common import (
    DEFERRED,
    FAILED,
    REJECTED,
    RETRY,
    BatchResult,
    DeliveryBase,
    EnqueueBatch,
    PolicyWrites,
    RedisWait,
    _Batch,
    log,
    long_hold_reason,
    new_event_loop,
)
from notifier.sending import Message, Outcome, is_config_status, origin_of
from notifier.subscriptions import Subscription
from notifier.vapid import VapidKey


class Batches(DeliveryBase):
    """Running batches, for :class:`~notifier.delivery.engine.Delivery`."""

    def _commit(
        self,
        cid: str,
        batch_id: str,
        queue_writes: Callable[[Pipeline], None],
        replies: list[object] | None = None,
        wait: RedisWait | None = None,
    ) -> str:
        """Record a batch's outcome in one transaction, only while this run holds the batch's lease.

        ``queue_writes`` adds the writes to the transaction's pipeline. Returns ``"committed"``, ``"done"``
        (already recorded: by another run, or by this one when a failover lost the reply) or ``"lost"``
        (another run holds the batch). While Redis is unreachable it tries again for
        ``redis_failover_wait`` seconds (counted from ``wait``'s first failure, when given), then raises.
        """
        lease_key = self.keys.batch_lease(cid, batch_id)
        token = self.lease_token()
        waiting = wait or RedisWait(cid, batch_id, self.settings.redis_failover_wait)
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
                waiting.failed(exc)
        waiting.answered(outcome)
        return outcome

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
        judge = self.breakers.judge(cid, campaign.counters["total"], batch_id)
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
        receipt = ReceiptSigner(self.c.receipt_key, cid)
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
                    message_payload(prefix, sid, receipt(sid), ts_ms),
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

    @staticmethod
    def _long_wait(outcome: Outcome, long_after: int) -> bool:
        """A push service asking for a wait longer than ``long_after`` seconds (Chrome's caps: days); the
        campaign's site's ``long_hold_after``."""
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
        long_after = self._standing(batch.campaign)["long_hold_after"]

        def long_wait(outcome: Outcome) -> bool:
            return self._long_wait(outcome, long_after)

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
        # The reads before the commit wait out an unreachable Redis as the commit does (one wait for both):
        # a worker cut off mid-batch must come back to find out whether its batch is still its own.
        waiting = RedisWait(cid, batch_id, self.settings.redis_failover_wait)
        waiting.call(lambda: self.breakers.refresh_tally(judge))  # batches recorded meanwhile count too
        judge.recheck_keys()  # ... and may show a key problem none of them saw alone
        gone_plan = waiting.call(lambda: self._plan_gone(outcomes, judge))
        # A half-open sample (notifier.breakers.Probe): its answers decide its breakers in this commit. While
        # the key breaker stays open, the sample's rejections are the key's, not the readers': held again.
        verdicts = judge.probe_verdicts() if judge.probing else {}
        still_refused = {s for s, kinds in verdicts.items() if kinds.get(KEY, RECOVERED) != RECOVERED}
        # A long Retry-After (Chrome caps a site for 1 to 14 days, answering 429): those messages are held
        # back for the campaign, deferred not failed, and the campaign waits it out (one release, no retry
        # storm), while its other push services go on.
        new_long: dict[str, tuple[float, int, float]] = {}
        settled: list[Outcome] = []
        long_after = self._standing(batch.campaign)["long_hold_after"]
        for outcome in outcomes:
            if (
                still_refused
                and outcome.kind == REJECTED
                and is_config_status(outcome.status)
                and service_of(outcome.origin) in still_refused
            ):
                outcome.kind = DEFERRED  # answered, but not this reader's fault: sent again on recovery
                kept.setdefault(service_of(outcome.origin), []).append(outcome.sid)
                result.counts["deferred"] += 1
                result.long_held += 1
                continue
            if stop_reason not in ("", PAUSED) or not self._long_wait(outcome, long_after):
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
                policy=PolicyWrites(judge, kept, gone_plan, follow_ups, new_long, verdicts),
            )

        replies: list[object] = []
        if not self._settle(self._commit(cid, batch_id, queue_writes, replies, waiting), result):
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
