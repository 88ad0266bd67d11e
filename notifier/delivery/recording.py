"""Recording a batch: every outcome, counter and figure queued on the commit's transaction."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter

from redis.client import Pipeline

from notifier.breakers import DELETE, KEY, REVIEW, WAIT, BatchJudge, PendingDeletion
from notifier.browsers import push_service, service_id
from notifier.campaigns import Campaign
from notifier.delivery.common import (
    _BUCKET_NAMES,
    FAILED,
    GONE,
    LATENCY_BUCKETS,
    REJECTED,
    SENT,
    BatchResult,
    DeliveryBase,
    PolicyWrites,
    _token,
)
from notifier.sending import Outcome, is_config_status
from notifier.subscriptions import Subscription, endpoint_index


class Recording(DeliveryBase):
    """Writing what a batch did, for :class:`~notifier.delivery.engine.Delivery`."""

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
        review: dict[str, list[tuple[str, str, int, str]]] = {}
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
                    review.setdefault(gone_service, []).append((sub.sid, sub.p256dh, outcome.status, cid))
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
            rules = self._standing(campaign)
            store.mark_sent(
                sent_sids,
                pipe,
                unreachable_after=rules["unreachable_after"],
                budget=rules["reader_budget"],
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
            if policy.verdicts:
                result.recovered = breakers.settle_probes(pipe, policy.judge, policy.verdicts, now)
            for service, items in review.items():
                breakers.hold_deletions(pipe, service, items, now)
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
        review: dict[str, list[tuple[str, str, int, str]]],
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
                    review.setdefault(service, []).append((p.sid, p.p256dh, p.status, p.cid))
            self.breakers.drop_pending(pipe, service, [p.sid for p in waiting])
