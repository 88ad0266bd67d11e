"""Resuming: a paused campaign or a held push service sends on what its batches held back, after an
operator's word or, for a breaker, a healthy sample of held messages (half-open, notifier.breakers.Probe)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from notifier.breakers import GONE, PROBE_STALE, PROBING
from notifier.browsers import push_service
from notifier.campaigns import CANCELLED, DONE, FAILED, PAUSED, SENDING
from notifier.delivery.common import DeliveryBase, EnqueueBatch, _token, log
from notifier.errors import Conflict, NotFound


@dataclass
class Restored:
    """What a restore did: subscriptions kept, and the missed messages sent again by campaign."""

    kept: int
    resent: dict[str, int] = field(default_factory=dict)
    #: Past their TTL (stale news is not sent again).
    expired: dict[str, int] = field(default_factory=dict)
    #: Cancelled or failed meanwhile.
    not_sent: dict[str, int] = field(default_factory=dict)


class Resumption(DeliveryBase):
    """Resuming held messages, for :class:`~notifier.delivery.engine.Delivery`."""

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

    def probe_breakers(
        self, enqueue_for: Callable[[str], EnqueueBatch], *, now: float | None = None
    ) -> dict[str, str]:
        """Half-open breakers: send a sample of held messages to each service whose cool-down is over.

        The workers' maintenance calls this (each sample is taken by one process). The sample is the
        first :attr:`Policy.probe_sample` messages a campaign holds back from the service (a breaking
        one first, then the newest, within its TTL): real messages, never a synthetic one, since every
        web push shows a notification. Its batch's answers close the breakers or make them wait longer
        (:meth:`Breakers.settle_probes`). Gone answers a batch left waiting just before another batch
        opened the gone breaker are held for review here. Returns service → the campaign sampled now.
        """
        now = time.time() if now is None else now
        breakers = self.breakers
        probes = breakers.probes()  # before the breakers: a breaker opening in between keeps its probe
        opened = breakers.open()
        started: dict[str, str] = {}
        for service, kinds in opened.items():
            if GONE in kinds:
                breakers.review_pending(service, now)
        for probe in probes:
            service = probe.service
            if service not in opened:
                breakers.replace_probe(probe, None)  # closed by an operator meanwhile
                continue
            if probe.state == PROBING:
                if self.campaigns.batch_finished(probe.cid, probe.batch):
                    # Recorded without a verdict (its campaign stopped first): another sample, now.
                    again = probe.waiting(now, probe.cooldown, attempt=probe.attempt, last=probe.last)
                    breakers.replace_probe(probe, again)
                elif now - probe.started > PROBE_STALE:
                    # Its job was lost: the same batch again (its id makes a second run a no-op).
                    if breakers.replace_probe(probe, dataclasses.replace(probe, started=now)):
                        enqueue_for(probe.cid)(probe.batch, list(probe.sids), [1] * len(probe.sids), 0.0)
                continue
            if probe.due > now:
                continue
            cid = self._sample_campaign(service, now)
            if cid is None:
                continue  # nothing held back to try it with yet: the next campaign's messages will do
            sids = self.campaigns.held_head(cid, service, breakers.policy.probe_sample)
            batch_id = f"p{self.campaigns.next_drain(cid)}_{_token(service)}"
            sample = dataclasses.replace(
                probe, state=PROBING, cid=cid, batch=batch_id, sids=tuple(sids), started=now
            )
            reason = (
                f"probing {service}: {len(sids)} held messages try it again "
                f"(its breaker opened; sample {probe.attempt + 1})"
            )
            guard = (self.keys.push_probes, service, probe.to_json(), sample.to_json())
            if self.campaigns.take_sample(cid, service, sids, batch_id=batch_id, guard=guard, reason=reason):
                enqueue_for(cid)(batch_id, list(sids), [1] * len(sids), 0.0)
                started[service] = cid
                log.info(
                    "%s: breaker half-open, %d held messages of campaign %s try it", service, len(sids), cid
                )
        return started

    def _sample_campaign(self, service: str, now: float) -> str | None:
        """The campaign whose held messages sample ``service``: breaking, then newest, within its TTL."""
        best: tuple[bool, float] | None = None
        chosen = None
        for campaign in self.campaigns.active():
            cid = campaign.cid
            if service not in self.campaigns.holds(cid) or service in self.campaigns.long_holds(cid):
                continue
            born = campaign.started or campaign.created
            if born + campaign.ttl <= now + 60 or not self.campaigns.held_count(cid, service):
                continue
            rank = (bool(campaign.breaking), born)
            if best is None or rank > best:
                best, chosen = rank, cid
        return chosen

    def release_recovered(self, enqueue_for: Callable[[str], EnqueueBatch]) -> dict[str, int]:
        """Release every campaign holding a service whose breakers are closed now (after a healthy sample).

        A hold is a breaker's unless it is a long Retry-After's (those end on their own time); once no
        breaker of the service is open, nothing keeps it. Idempotent (the release takes the held list
        atomically); the workers call it after a sample recovered and in their maintenance, so a worker
        dying between the two loses nothing. Returns messages queued by campaign.
        """
        queued: dict[str, int] = {}
        for campaign in self.campaigns.active():
            cid = campaign.cid
            holds = self.campaigns.holds(cid)
            if not holds:
                continue
            # Read after the holds: a breaker opens with its holds (one commit), so a hold seen here whose
            # breaker is not open any more was really left behind.
            opened = self.breakers.open()
            long_holds = self.campaigns.long_holds(cid)
            for service in holds:
                if service in opened or service in long_holds:
                    continue
                n = self.release_service(cid, service, enqueue_for(cid))
                queued[cid] = queued.get(cid, 0) + n
                log.info("campaign %s: %s recovered; %d held messages go out", cid, service, n)
        return queued

    def restore_service(
        self, service: str, enqueue_for: Callable[[str], EnqueueBatch], *, now: float | None = None
    ) -> Restored:
        """The service was wrong: keep its held subscriptions and send them what they missed meanwhile.

        For each campaign whose message a held gone answer stood for, still within its TTL and not
        cancelled or failed, the reader gets that message again: once (``campaign:{cid}:resent``;
        running this twice sends nothing more), counted again (its ``gone`` taken back), a ``done``
        campaign re-opened until answered. Messages held *back* from the service were never sent:
        they go out when it is resumed or recovers. Refused (:class:`Conflict`) while a breaker of the
        service is open: what it answers now could not be trusted, and the marks are the evidence.
        """
        now = time.time() if now is None else now
        opened = self.breakers.open().get(service, {})
        if opened:
            raise Conflict(
                f"the {' and '.join(sorted(opened))} breaker of {service} is still open: resume it "
                f"(`notifier services resume {service}`) or wait for it to recover, then restore"
            )
        held = {h.sid for h in self.breakers.held_deletions(service)}
        done = Restored(kept=len(held))
        for cid in self.breakers.held_campaigns(service):
            missed = sorted(self.breakers.missed(cid, service) & held, key=int)
            if not missed:
                continue
            try:
                campaign = self.campaigns.get(cid)
            except NotFound:
                continue
            if campaign.state in (CANCELLED, FAILED):
                done.not_sent[cid] = len(missed)
                continue
            if (campaign.started or campaign.created) + campaign.ttl <= now + 60:
                done.expired[cid] = len(missed)
                continue
            subs = self.c.subscriptions.load_many(missed)
            readers = [(sub.sid, push_service(sub.endpoint), sub.browser or "other") for sub in subs]
            prefix = f"x{self.campaigns.next_drain(cid)}_{_token(service)}_"
            reason = f"sending again to {len(readers)} readers of {service} whose deletion was restored"
            batches = self.campaigns.resend(
                cid, readers, prefix=prefix, batch_size=self.settings.batch_size, reason=reason, now=now
            )
            for i, sids in enumerate(batches):
                enqueue_for(cid)(f"{prefix}{i}", sids, [1] * len(sids), 0.0)
            sent = sum(len(b) for b in batches)
            if sent:
                done.resent[cid] = sent
            log.info("campaign %s: %d readers of %s restored get it again", cid, sent, service)
        self.breakers.restore(service)
        return done

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
