"""Planning: a campaign's audience cut into full batches and handed to the queue, resumable after a crash."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from notifier.campaigns import CANCELLED, PLANNING, SCHEDULED, Campaign
from notifier.campaigns import FAILED as CAMPAIGN_FAILED
from notifier.delivery.common import DeliveryBase, EnqueueBatch


class Planning(DeliveryBase):
    """The planning half of :class:`~notifier.delivery.engine.Delivery`."""

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
            if ready:
                # Counted before they go out: a worker may finish a batch before the next line runs, and
                # a campaign page must never show more done than total. A crash before the checkpoint
                # hands the same batches out again and writes the same figure (the checkpoint keeps its own).
                campaigns.set_total(cid, total + ready)
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
        rules = self._standing(campaign)
        out = []
        if rules["unreachable_after"] > 0:
            out.append(("unreachable", self.keys.subs_unreachable))
        if rules["reader_budget"] > 0:
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
