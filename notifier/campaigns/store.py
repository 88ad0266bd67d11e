"""Campaigns in Redis: the one writer of every ``campaign:{cid}`` key and of the state machine.

Nothing else writes a campaign's hash, its batch sets or its held list: the site, the
workers and the fan-out call the methods here. Writes that belong to a batch's
transaction take an optional ``pipe`` (as RQ's registries do); every state change is
the ``move`` of :mod:`notifier.campaigns.scripts`, checked against the one table.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from notifier.campaigns.model import (
    CANCELLED,
    COUNTERS,
    DRAFT,
    FINAL,
    PAUSED,
    PLANNING,
    SCHEDULED,
    SENDING,
    STATES,
    TRANSITIONS,
    Campaign,
    CampaignState,
    is_campaign_id,
    new_campaign_id,
)
from notifier.campaigns.payload import receipt_token
from notifier.campaigns.scripts import (
    COUNT_RECEIPT,
    FINISH,
    HOLD_SERVICE,
    RELEASE_SERVICE,
    RESEND,
    RESERVE,
    SET_STATE,
    TAKE_SAMPLE,
)
from notifier.campaigns.validation import CampaignInput
from notifier.errors import Conflict, NotFound, ValidationError
from notifier.keys import Keys
from notifier.sites import DEFAULT_SITE_ID

#: Days a campaign's timeline and receipt sets are kept.
FIGURES_DAYS = 90
#: Seconds per bucket of a campaign's timeline (the live page draws 10-second bars for short sends).
TIMELINE_STEP = 10
#: The unit of ``pending`` that planning holds while it hands out batches.
PLAN_UNIT = "plan"


@dataclass(frozen=True)
class PlanProgress:
    """Where an interrupted planning run continues: the checkpoint written after each hand-out."""

    batch_no: int
    total: int
    resume_from: int
    snapped: bool


Pipe = redis.client.Pipeline


class CampaignStore:
    """Campaigns in Redis. Each belongs to one site (``site`` field, ``campaigns:site:{site}`` index)."""

    def __init__(self, r: redis.Redis, keys: Keys, default_site: str = DEFAULT_SITE_ID) -> None:
        self.r = r
        self.keys = keys
        self.default_site = default_site
        self._set_state = r.register_script(SET_STATE)
        self._reserve = r.register_script(RESERVE)
        self._finish = r.register_script(FINISH)
        self._hold_service = r.register_script(HOLD_SERVICE)
        self._release_service = r.register_script(RELEASE_SERVICE)
        self._take_sample = r.register_script(TAKE_SAMPLE)
        self._resend = r.register_script(RESEND)

    # -- creating ---------------------------------------------------------------------------------

    def create(
        self,
        item: CampaignInput,
        *,
        state: CampaignState | str = SCHEDULED,
        audience: str = "",
        now: float | None = None,
    ) -> str:
        """Store a campaign, ``scheduled`` or ``draft`` (``audience``: a hand-picked one's label); its id."""
        now = time.time() if now is None else now
        cid = new_campaign_id(now)
        site = item.site or self.default_site
        if state not in (DRAFT, SCHEDULED):
            raise ValueError(f"a new campaign is draft or scheduled, not {state}")
        mapping: dict[str, Any] = {
            "title": item.title,
            "body": item.body,
            "url": item.url,
            "image": item.image,
            "icon": item.icon,
            "topics": ",".join(item.topics),
            "ttl": item.ttl,
            "urgency": item.urgency,
            "breaking": "1" if item.breaking else "0",
            "story": item.story,
            "state": str(state),
            "source": item.source,
            "created_by": item.created_by,
            "created": repr(now),
            "send_at": repr(item.send_at) if item.send_at is not None else "",
            "article_guid": item.article_guid,
            "site": site,
        }
        if audience:
            mapping["audience"] = audience
        mapping.update({name: 0 for name in COUNTERS})
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.keys.campaign(cid), mapping=mapping)
        pipe.zadd(self.keys.campaigns, {cid: now})
        pipe.zadd(self.keys.campaigns_of_site(site), {cid: now})
        pipe.execute()
        return cid

    def duplicate(self, cid: str, *, created_by: str = "") -> str:
        """A new draft with the same content."""
        c = self.get(cid)
        item = CampaignInput(
            title=c.title,
            body=c.body,
            url=c.url,
            image=c.image,
            icon=c.icon,
            topics=c.topics,
            ttl=c.ttl,
            urgency=c.urgency,
            breaking=c.breaking,
            story=c.story,
            source="duplicate",
            created_by=created_by or c.created_by,
            site=c.site,
        )
        return self.create(item, state=DRAFT)

    # -- reading ----------------------------------------------------------------------------------

    def get(self, cid: str) -> Campaign:
        """A campaign by id; :class:`NotFound` when absent (or not shaped like a campaign id at all)."""
        if not is_campaign_id(cid):
            raise NotFound(f"no campaign {str(cid)[:64]!r}")
        data = self.r.hgetall(self.keys.campaign(cid))
        if not data:
            raise NotFound(f"no campaign {cid}")
        return Campaign.from_hash(cid, data)

    def state(self, cid: str) -> CampaignState | None:
        """Just the state (one HGET: batches poll it to notice a cancel); None when there is no campaign."""
        value = self.r.hget(self.keys.campaign(cid), "state")
        return CampaignState(value) if value else None

    def pending(self, cid: str) -> int:
        """Units of ``pending`` not given back yet (batches and planning still to finish)."""
        return int(self.r.hget(self.keys.campaign(cid), "pending") or 0)

    def list(self, offset: int = 0, limit: int = 50, *, sites: Sequence[str] | None = None) -> list[Campaign]:
        """Newest campaigns first: of every site, or of ``sites`` only."""
        cids = self._newest(offset, limit, sites)
        pipe = self.r.pipeline(transaction=False)
        for cid in cids:
            pipe.hgetall(self.keys.campaign(cid))
        return [Campaign.from_hash(cid, h) for cid, h in zip(cids, pipe.execute(), strict=True) if h]

    def _newest(self, offset: int, limit: int, sites: Sequence[str] | None) -> list[str]:
        """Ids of the newest campaigns ``offset`` to ``offset + limit`` (of ``sites``, else of all)."""
        if sites is None:
            return list(self.r.zrevrange(self.keys.campaigns, offset, offset + limit - 1))
        if not sites:
            return []
        if len(sites) == 1:
            return list(self.r.zrevrange(self.keys.campaigns_of_site(sites[0]), offset, offset + limit - 1))
        # Merge the sites' indexes by creation time: the newest offset+limit of each suffice.
        merged: list[tuple[float, str]] = []
        pipe = self.r.pipeline(transaction=False)
        for site in sites:
            pipe.zrevrange(self.keys.campaigns_of_site(site), 0, offset + limit - 1, withscores=True)
        for rows in pipe.execute():
            merged += [(score, cid) for cid, score in rows]
        merged.sort(reverse=True)
        return [cid for _, cid in merged[offset : offset + limit]]

    def count(self, *, sites: Sequence[str] | None = None) -> int:
        """Number of stored campaigns, of every site or of ``sites``."""
        if sites is None:
            return int(self.r.zcard(self.keys.campaigns))
        pipe = self.r.pipeline(transaction=False)
        for site in sites:
            pipe.zcard(self.keys.campaigns_of_site(site))
        return sum(int(n) for n in pipe.execute()) if sites else 0

    def active(self, *, sites: Sequence[str] | None = None) -> list[Campaign]:
        """Campaigns planning, sending or paused (ops view), of every site or of ``sites``."""
        return [c for c in self.list(0, 200, sites=sites) if c.state in (PLANNING, SENDING, PAUSED)]

    def count_by_state(self, limit: int, *, site: str | None = None) -> dict[CampaignState, int]:
        """How many of the ``limit`` most recent campaigns (of ``site``, else of all) are in each state."""
        counts = dict.fromkeys(STATES, 0)
        offset = 0
        page = 1000
        index = self.keys.campaigns_of_site(site) if site else self.keys.campaigns
        while offset < limit:
            cids = self.r.zrevrange(index, offset, min(offset + page, limit) - 1)
            if not cids:
                break
            pipe = self.r.pipeline(transaction=False)
            for cid in cids:
                pipe.hget(self.keys.campaign(cid), "state")
            for state in pipe.execute():
                if state in counts:
                    counts[CampaignState(state)] += 1
            offset += len(cids)
        return counts

    def timeline(self, cid: str) -> dict[int, dict[str, int]]:
        """Counters by 10-second bucket (its epoch), oldest first: ``{t: {"sent": n, "clicked": n, ...}}``."""
        buckets: dict[int, dict[str, int]] = {}
        for name, count in self.r.hgetall(self.keys.campaign_timeline(cid)).items():
            stamp, _, counter = name.partition(":")
            if stamp.isdigit():
                bucket = buckets.setdefault(int(stamp), {})
                bucket[counter] = bucket.get(counter, 0) + int(count)
        return dict(sorted(buckets.items()))

    def services(self, cid: str) -> dict[str, dict[str, int]]:
        """Outcomes by push service: ``{"fcm": {"sent": n, "gone": n}, ...}``."""
        out: dict[str, dict[str, int]] = {}
        for name, count in self.r.hgetall(self.keys.campaign_services(cid)).items():
            service, _, kind = name.rpartition(":")
            out.setdefault(service, {})[kind] = int(count)
        return out

    def browsers(self, cid: str) -> dict[str, dict[str, int]]:
        """Outcomes by the readers' browser family: ``{"chrome-android": {"sent": n}, ...}``."""
        out: dict[str, dict[str, int]] = {}
        for name, count in self.r.hgetall(self.keys.campaign_browsers(cid)).items():
            family, _, kind = name.rpartition(":")
            out.setdefault(family, {})[kind] = int(count)
        return out

    def batch_finished(self, cid: str, batch_id: str) -> bool:
        """True when batch ``batch_id`` already gave its unit of ``pending`` back (a re-run does nothing)."""
        return bool(self.r.sismember(self.keys.campaign_batches_done(cid), batch_id))

    def owed_batches(self, cid: str) -> set[str]:
        """Batch ids that reserved a unit of ``pending`` and have not finished (``plan``: the planning)."""
        return set(
            self.r.sdiff(self.keys.campaign_batches_reserved(cid), self.keys.campaign_batches_done(cid))
        )

    # -- the state machine ------------------------------------------------------------------------

    def transition(
        self,
        cid: str,
        new: CampaignState | str,
        *,
        reason: str = "",
        allowed_from: Sequence[CampaignState | str] | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> bool:
        """Move to ``new`` when the table (and ``allowed_from``, when given) allows it from the current state.

        ``reason`` (when not empty) and ``fields`` are written with the move, in the same script.
        False when the current state does not allow it; :class:`NotFound` when there is no campaign.
        """
        if not is_campaign_id(cid):
            raise NotFound(f"no campaign {str(cid)[:64]!r}")
        new = CampaignState(new)
        sources = [CampaignState(s) for s in allowed_from or ()]
        if any(new not in TRANSITIONS[s] for s in sources):
            raise ValueError(f"no campaign moves to {new} from {', '.join(sources)}")
        pairs = [part for name, value in (fields or {}).items() for part in (name, value)]
        try:
            result = self._set_state(
                keys=[self.keys.campaign(cid)],
                args=[str(new), reason, repr(time.time()), ",".join(sources), *pairs],
            )
        except redis.ResponseError as exc:
            raise NotFound(f"no campaign {cid}") from exc
        return result == "OK"

    def cancel(self, cid: str) -> Campaign:
        """Cancel a campaign that has not finished; batches in flight stop within a second or two."""
        campaign = self.get(cid)
        if campaign.state in FINAL:
            raise Conflict(f"campaign {cid} is already {campaign.state}")
        if not self.transition(cid, CANCELLED, reason="cancelled by an editor"):
            raise Conflict(f"campaign {cid} could not be cancelled from {self.get(cid).state}")
        return self.get(cid)

    def approve(self, cid: str, by: str) -> bool:
        """Schedule a draft, recording who approved it; False when it is no longer a draft."""
        return self.transition(cid, SCHEDULED, allowed_from=[DRAFT], fields={"approved_by": by})

    def claim_telling(self, cid: str, state: str, now: float | None = None) -> bool:
        """True for the first caller to announce that ``cid`` reached ``state`` (of any worker, once).

        Two workers finishing the last batches at the same moment both see ``done``; only one says so.
        Meant for final states (a campaign never leaves them).
        """
        key = self.keys.campaign_told(cid)
        pipe = self.r.pipeline()
        pipe.hsetnx(key, state, repr(time.time() if now is None else now))
        pipe.expire(key, FIGURES_DAYS * 86400)
        first, _ = pipe.execute()
        return bool(first)

    def set_reason(self, cid: str, reason: str) -> None:
        """Say why a campaign is waiting (shown on its page), without changing its state."""
        self.r.hset(self.keys.campaign(cid), "reason", reason)

    # -- planning ---------------------------------------------------------------------------------

    def start_planning(self, cid: str) -> bool:
        """Move a scheduled campaign to ``planning`` and reserve planning's unit of ``pending``."""
        if not self.transition(cid, PLANNING, allowed_from=[SCHEDULED]):
            return False
        self.reserve(cid, PLAN_UNIT)
        return True

    def plan_progress(self, cid: str) -> PlanProgress:
        """The planning checkpoint (all zero before the first hand-out)."""
        batch_no, planned, shown, resume_from, snapped, old_byte = (
            int(v or 0)
            for v in self.r.hmget(
                self.keys.campaign(cid),
                "plan_batch",
                "plan_total",
                "total",
                "plan_from",
                "plan_snap",
                "plan_byte",
            )
        )
        # A planning job checkpointed by an earlier release kept the byte reached (all before it handed out),
        # and its total was the checkpoint's.
        total = planned if planned or not batch_no else shown
        return PlanProgress(batch_no, total, resume_from or old_byte * 8, bool(snapped))

    def audience_snapshotted(self, cid: str, *, unreachable: int = 0, over_budget: int = 0) -> None:
        """Record that the audience snapshot exists (a retried planning reads the same audience), and
        the readers it left out: unreachable ones and those over their budget (non-breaking only)."""
        self.r.hset(
            self.keys.campaign(cid),
            mapping={"plan_snap": 1, "unreachable": unreachable, "over_budget": over_budget},
        )

    def save_plan_progress(self, cid: str, *, next_from: int, batch_no: int, total: int) -> None:
        """Checkpoint planning: the first id not handed out, the next batch number, the ids handed out."""
        self.r.hset(
            self.keys.campaign(cid),
            mapping={"plan_from": next_from, "plan_batch": batch_no, "plan_total": total, "total": total},
        )

    def set_total(self, cid: str, total: int) -> None:
        """The readers handed out, counted before their batches go out (a batch done at once never shows
        more done than total); a hand-picked campaign's (a test send) whole audience."""
        self.r.hset(self.keys.campaign(cid), "total", total)

    def finish_planning(self, cid: str, *, total: int, batches: int) -> None:
        """Every batch is handed out: record the figures, move to ``sending``, give planning's unit back."""
        self.r.hset(
            self.keys.campaign(cid), mapping={"total": total, "batches": batches, "plan_batch": batches}
        )
        self.transition(cid, SENDING, allowed_from=[PLANNING])
        self._finish(
            keys=[
                self.keys.campaign(cid),
                self.keys.campaign_batches_done(cid),
                self.keys.campaign_holds(cid),
            ],
            args=[PLAN_UNIT, repr(time.time()), "", "", 0],
        )

    # -- batches ----------------------------------------------------------------------------------

    def reserve(self, cid: str, batch_id: str, pipe: Pipe | None = None) -> None:
        """Hold a unit of ``pending`` for a batch about to be enqueued (once per batch id)."""
        self._reserve(
            keys=[self.keys.campaign(cid), self.keys.campaign_batches_reserved(cid)],
            args=[batch_id],
            client=pipe or self.r,
        )

    def record_batch(
        self,
        cid: str,
        batch_id: str,
        *,
        now: float,
        counts: Mapping[str, int],
        services: Mapping[str, int],
        browsers: Mapping[str, int] | None = None,
        first_sent: float | None,
        last_sent: float | None,
        held: Sequence[str],
        pipe: Pipe,
    ) -> None:
        """Write what one batch did, in the batch's transaction ``pipe``.

        Its counters and the minute's timeline, its outcomes by push service and by browser, the
        messages a pause held back, and its unit of ``pending`` given back exactly once
        (the last unit finishes the campaign).
        """
        keys = self.keys
        bucket = int(now) // TIMELINE_STEP * TIMELINE_STEP
        if counts:
            timeline = keys.campaign_timeline(cid)
            for name, n in counts.items():
                pipe.hincrby(timeline, f"{bucket}:{name}", n)
            pipe.expire(timeline, FIGURES_DAYS * 86400)
        for name, n in services.items():
            pipe.hincrby(keys.campaign_services(cid), name, n)
        for name, n in (browsers or {}).items():
            pipe.hincrby(keys.campaign_browsers(cid), name, n)
        if held:
            pipe.rpush(keys.campaign_held(cid), *held)
        flat: list[object] = []
        for name, n in counts.items():
            flat += [name, n]
        self._finish(
            keys=[keys.campaign(cid), keys.campaign_batches_done(cid), keys.campaign_holds(cid)],
            args=[
                batch_id,
                repr(now),
                repr(first_sent) if first_sent is not None else "",
                repr(last_sent) if last_sent is not None else "",
                len(counts),
                *flat,
            ],
            client=pipe,
        )

    # -- push services held back (notifier.breakers decides; i15's long Retry-After holds too) ----------

    def holds(self, cid: str) -> dict[str, str]:
        """Push services this campaign holds its messages back from: service → reason."""
        return dict(self.r.hgetall(self.keys.campaign_holds(cid)))

    def held_count(self, cid: str, service: str) -> int:
        """Messages held back from ``service``."""
        return int(self.r.llen(self.keys.campaign_held_for(cid, service)))

    def hold_service(
        self,
        cid: str,
        service: str,
        reason: str,
        sids: Sequence[str],
        *,
        force: bool,
        follow_up: str,
        pipe: Pipe,
    ) -> int:
        """Queue in ``pipe``: hold ``sids`` back from ``service`` (see ``HOLD_SERVICE``).

        Returns the index of the script's answer among the pipeline's results: 1 held, 0 not held
        (the service was resumed meanwhile: send ``sids`` now as batch ``follow_up``, already reserved).
        """
        index = len(pipe)
        self._hold_service(
            keys=[
                self.keys.campaign(cid),
                self.keys.campaign_holds(cid),
                self.keys.campaign_held_for(cid, service),
                self.keys.push_breakers,
                self.keys.campaign_batches_reserved(cid),
            ],
            args=[service, reason, "1" if force else "0", follow_up, *sids],
            client=pipe,
        )
        return index

    def release_service(
        self, cid: str, service: str, *, prefix: str, batch_size: int, now: float | None = None
    ) -> tuple[bool, list[list[str]]]:
        """End the hold on ``service``: (whether it was held, the held ids in batches ``{prefix}{i}``).

        The batches are already reserved (units of ``pending``): the caller enqueues each one.
        """
        had, batches, sids = self._release_service(
            keys=[
                self.keys.campaign(cid),
                self.keys.campaign_holds(cid),
                self.keys.campaign_held_for(cid, service),
                self.keys.campaign_batches_reserved(cid),
                self.keys.campaign_held(cid),
            ],
            args=[service, prefix, batch_size, repr(time.time() if now is None else now)],
        )
        ids = [s.decode() if isinstance(s, bytes) else str(s) for s in sids]
        return bool(had), [ids[i : i + batch_size] for i in range(0, len(ids), batch_size)][: int(batches)]

    def take_sample(
        self,
        cid: str,
        service: str,
        sids: Sequence[str],
        *,
        batch_id: str,
        guard: tuple[str, str, str, str],
        reason: str,
        now: float | None = None,
    ) -> bool:
        """Take ``sids`` (the head of the messages held back from ``service``) as batch ``batch_id``.

        ``guard``: (hash key, field, value as read, new value): written only when the field still has
        that value, so one process takes the sample. A paused campaign is sending again while it runs
        (``reason`` says why). The batch is reserved: the caller enqueues it. False: nothing taken.
        """
        key, name, expected, new = guard
        return bool(
            self._take_sample(
                keys=[
                    self.keys.campaign(cid),
                    self.keys.campaign_held_for(cid, service),
                    self.keys.campaign_batches_reserved(cid),
                    key,
                ],
                args=[
                    name,
                    expected,
                    new,
                    batch_id,
                    reason,
                    repr(time.time() if now is None else now),
                    *sids,
                ],
            )
        )

    def resend(
        self,
        cid: str,
        readers: Sequence[tuple[str, str, str]],
        *,
        prefix: str,
        batch_size: int,
        reason: str,
        now: float | None = None,
    ) -> list[list[str]]:
        """Send the campaign again to ``readers`` (sid, push service, browser) once each (see ``RESEND``).

        Their ``gone`` counts are taken back and batches ``{prefix}{i}`` reserved (the caller enqueues
        each); a ``done`` campaign is ``sending`` again until they are answered. Returns the batches:
        readers re-sent to before are left out.
        """
        if not readers:
            return []
        args: list[object] = [prefix, batch_size, repr(time.time() if now is None else now), reason]
        for sid, service, browser in readers:
            args += [sid, f"{service}:gone", f"{browser}:gone"]
        fresh = self._resend(
            keys=[
                self.keys.campaign(cid),
                self.keys.campaign_resent(cid),
                self.keys.campaign_batches_reserved(cid),
                self.keys.campaign_services(cid),
                self.keys.campaign_browsers(cid),
            ],
            args=args,
        )
        ids = [s.decode() if isinstance(s, bytes) else str(s) for s in fresh]
        return [ids[i : i + batch_size] for i in range(0, len(ids), batch_size)]

    def held_head(self, cid: str, service: str, count: int) -> list[str]:
        """The first ``count`` ids held back from ``service`` (not removed)."""
        return list(self.r.lrange(self.keys.campaign_held_for(cid, service), 0, count - 1))

    def hold_until(
        self,
        cid: str,
        service: str,
        *,
        until: float,
        status: int,
        seconds: float,
        release_id: str,
        pipe: Pipe,
    ) -> None:
        """Queue in ``pipe``: the campaign waits out a long Retry-After of ``service`` until ``until``.

        A unit of ``pending`` is reserved for the release (the campaign stays active, nothing is lost)
        and the release is due at ``until`` (``Keys.hold_releases``; the workers' maintenance sends it).
        """
        self.reserve(cid, release_id, pipe)
        pipe.hset(self.keys.campaign_hold_until(cid), service, f"{until!r}|{status}|{seconds!r}")
        pipe.expire(self.keys.campaign_hold_until(cid), FIGURES_DAYS * 86400)
        pipe.zadd(self.keys.hold_releases, {f"{cid}|{service}|{release_id}": until})

    def long_holds(self, cid: str) -> dict[str, tuple[float, int, float]]:
        """The long Retry-After holds this campaign waits out: service → (until, status, seconds)."""
        out: dict[str, tuple[float, int, float]] = {}
        for service, value in self.r.hgetall(self.keys.campaign_hold_until(cid)).items():
            until, status, seconds = value.split("|")
            out[service] = (float(until), int(status), float(seconds))
        return out

    def due_releases(self, now: float | None = None, limit: int = 100) -> list[tuple[str, str, str, float]]:
        """Long holds whose wait is over: (campaign, service, release id, until), oldest first."""
        now = time.time() if now is None else now
        found = self.r.zrangebyscore(
            self.keys.hold_releases, "-inf", now, start=0, num=limit, withscores=True
        )
        out = []
        for member, until in found:
            cid, service, release_id = member.split("|", 2)
            out.append((cid, service, release_id, float(until)))
        return out

    def pending_releases(self) -> list[tuple[str, str, str, float]]:
        """Every long hold still being waited out: (campaign, service, release id, until)."""
        return self.due_releases(float("inf"), limit=10_000)

    def claim_release(self, cid: str, service: str, release_id: str) -> bool:
        """Take a due release for this process (only one process sends it)."""
        return bool(self.r.zrem(self.keys.hold_releases, f"{cid}|{service}|{release_id}"))

    def finish_release(self, cid: str, service: str, release_id: str, *, now: float | None = None) -> None:
        """The long hold is over: forget it and give its unit of ``pending`` back."""
        now = time.time() if now is None else now
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(self.keys.campaign_hold_until(cid), service)
        self.record_batch(
            cid,
            release_id,
            now=now,
            counts={},
            services={},
            first_sent=None,
            last_sent=None,
            held=(),
            pipe=pipe,
        )
        pipe.execute()

    def next_drain(self, cid: str) -> int:
        """A new number for one draining of the held list (its batches get ids of their own)."""
        return int(self.r.hincrby(self.keys.campaign(cid), "drains", 1))

    def take_held(self, cid: str, count: int) -> list[str]:
        """Up to ``count`` held-back subscription ids, removed from the held list (empty when none)."""
        return list(self.r.lpop(self.keys.campaign_held(cid), count) or [])


RECEIPT_KINDS = ("shown", "clicked")


@dataclass(frozen=True)
class Receipt:
    """A ``shown``/``clicked`` receipt whose token was checked: the campaign's own for that subscriber."""

    kind: str
    cid: str
    sid: str
    token: str


@dataclass(frozen=True)
class ReceiptCount:
    """What counting a receipt did: counted now, or the how-many-th repeat of its token this window."""

    counted: bool
    repeats: int = 0
    window_left: int = 0


def parse_receipt(receipt_key: bytes, data: Any) -> Receipt:
    """A receipt from its JSON body; ValidationError for a malformed or forged one (no Redis touched)."""
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object")
    kind, cid, sid, token = (data.get(k) for k in ("type", "cid", "sid", "rt"))
    if kind not in RECEIPT_KINDS:
        raise ValidationError("'type' must be 'shown' or 'clicked'")
    for name, value in (("cid", cid), ("sid", sid), ("rt", token)):
        if not isinstance(value, str) or not value or len(value) > 64 or not value.isascii():
            raise ValidationError(f"missing or malformed field {name!r}", code="missing_field")
    assert isinstance(cid, str) and isinstance(sid, str) and isinstance(token, str)
    if not is_campaign_id(cid) or not sid.isalnum() or len(sid) > 32:
        # Both go into key names: only the shapes this server hands out (no ':' naming another key).
        raise ValidationError("'cid' or 'sid' is not an id", code="missing_field")
    if not hmac.compare_digest(receipt_token(receipt_key, cid, sid), token):
        raise ValidationError(
            "the receipt token does not match this campaign and subscription", code="bad_receipt"
        )
    return Receipt(kind, cid, sid, token)


def count_receipt(
    r: redis.Redis, keys: Keys, receipt: Receipt, *, now: float | None = None, repeat_window: int = 60
) -> ReceiptCount:
    """Count a checked receipt once per campaign and subscription; :class:`NotFound` for no campaign.

    A counted receipt also restores the reader's standing: a ``shown`` proves the subscription
    reachable, a ``clicked`` puts the reader back within its budget (see ``COUNT_RECEIPT``).
    """
    now = time.time() if now is None else now
    repeats, left = r.register_script(COUNT_RECEIPT)(
        keys=[
            keys.campaign(receipt.cid),
            keys.campaign_receipts(receipt.cid, receipt.kind),
            keys.campaign_timeline(receipt.cid),
            keys.receipt_repeats(receipt.token),
            keys.subs_unshown,
            keys.subs_unreachable,
            keys.subs_unclicked,
            keys.subs_over_budget,
            keys.readers_clicked(time.strftime("%Y-%m-%d", time.gmtime(now))),
        ],
        args=[
            receipt.sid,
            receipt.kind,
            f"{int(now) // TIMELINE_STEP * TIMELINE_STEP}:{receipt.kind}",
            FIGURES_DAYS * 86400,
            max(1, repeat_window),
            40 * 86400,
        ],
    )
    if int(repeats) < 0:
        raise NotFound(f"no campaign {receipt.cid}")
    return ReceiptCount(int(repeats) == 0, int(repeats), int(left))


def record_receipt(
    r: redis.Redis, keys: Keys, receipt_key: bytes, data: Any, *, now: float | None = None
) -> bool:
    """Count a ``shown``/``clicked`` receipt once per campaign and subscription.

    The token must be the one the campaign put in that subscriber's payload, so
    figures cannot be inflated by forged receipts. Returns True when counted,
    False for a repeat; raises ValidationError for a malformed or forged one.
    """
    return count_receipt(r, keys, parse_receipt(receipt_key, data), now=now).counted


def migrate_campaign_sites(r: redis.Redis, keys: Keys, default_site: str, page: int = 500) -> int:
    """Give the campaigns stored before sites existed to ``default_site`` (idempotent); returns how many."""
    moved = 0
    start = 0
    while True:
        cids = r.zrange(keys.campaigns, start, start + page - 1, withscores=True)
        if not cids:
            return moved
        look = r.pipeline(transaction=False)
        for cid, _ in cids:
            look.hget(keys.campaign(cid), "site")
            look.exists(keys.campaign(cid))
        found = look.execute()
        write = r.pipeline(transaction=True)
        for (cid, score), site, exists in zip(cids, found[0::2], found[1::2], strict=True):
            if not site and exists:
                write.hset(keys.campaign(cid), "site", default_site)
                write.zadd(keys.campaigns_of_site(default_site), {cid: score})
                moved += 1
        write.execute()
        start += page
