"""Resuming: a paused campaign or a held push service sends on what its batches held back."""

from __future__ import annotations

from collections.abc import Callable

from notifier.campaigns import DONE, PAUSED, SENDING
from notifier.delivery.common import DeliveryBase, EnqueueBatch, _token, log


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
