"""What a push service's answers may set off: a breaker per service, never a pause for everyone.

A campaign reaches readers through several push services (FCM, Mozilla, Apple, ...). An answer
says something about one subscription *or* about the service as a whole, and the two must not be
confused: a few readers' bad subscriptions must not stop everyone's news, and a service's
incident must not delete its whole audience. Decisions are taken per push service
(:func:`notifier.browsers.service_id`) from the share of that service's answers over many
messages, never from one batch: ids are handed out in order, so one batch can be a cluster
(readers who subscribed together and left together, or an attacker's subscriptions).

**Gone (404/410): deletion behind a breaker.** A gone subscription is deleted at once when its
service's recent answers look normal: the newest batches of every worker and campaign, at least
:attr:`Policy.gone_sample` answers with this one's, hold no more 404/410 than ``max(gone_share,
gone_factor x its normal rate)`` (normal: its share of 404/410 over the last :data:`BASELINE_DAYS`
days of pruning), or fewer than :attr:`Policy.gone_min` of them. Otherwise the answer *waits*,
undeleted (``push:gone-pending:{service}``), and a later batch of any campaign settles it: deleted
once the service's answers look normal again (a cluster: readers who subscribed together and
left together), held for review if the breaker opens. The **gone breaker** opens when the recent
answers are abnormal over at least ``gone_sample`` of them *and* at least two batches (two id
ranges, or two workers) within a minute were abnormal on their own: one cluster of ids is not an
incident. Then the service's gone answers are *held for review* (``push:held-deletions:{service}``;
nothing is removed), every campaign holds its messages to that service back (the other services
go on), and ops are alerted. An operator resumes the service and restores the held subscriptions
(the service was wrong) or releases them (deletes them after all): ``notifier services``.

**Rejected (400/401/403): the reader's problem unless the service refuses us.** A rejection
counts against its subscription (:attr:`Policy.quarantine_rejections` in a row quarantine it) as
long as the service accepts our messages at all in the campaign: one accepted message proves the
VAPID key and subject work. It is a *key problem* only when the service, across the campaign,
rejected at least :attr:`Policy.key_min` messages and :attr:`Policy.key_share` of its answers
over at least :attr:`Policy.key_sample` answers (the whole campaign when smaller), accepting none
in the deciding batch: the **key breaker** opens, messages to that service are held back (and
nothing counts against its readers), ops are told to check ``VAPID_PRIVATE_KEY`` and
``VAPID_SUBJECT``.

A campaign holding a service goes on for the others; once nothing else is pending it waits as
``paused`` (:mod:`notifier.campaigns` owns that state) until an operator resumes it
(``notifier campaigns resume`` / ``notifier services resume``), which closes the breaker and
sends what was held.

Redis (names from :mod:`notifier.keys`): ``push:breakers`` hash ``{kind}:{service}`` → the trip
(JSON); ``push:held-deletions:{service}`` hash sid → ``p256dh|status|time|cid`` and
``push:held-services`` set; ``push:recent:{service}`` list of the newest batches' answers
(``answered|gone|time|abnormal``); ``push:gone-pending:{service}`` hash sid →
``status|p256dh|index field|cid``; ``push:daily:{day}`` hash ``{service}:answered|pruned`` (the
normal rate); ``campaign:{cid}:push`` hash ``{service}:{answered|accepted|gone|rejected}``;
``subs:rejects`` hash sid → rejections in a row.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from notifier.keys import Keys
from notifier.subscriptions import SubscriptionStore

GONE = "gone"
KEY = "key"
KINDS = (GONE, KEY)
#: Statuses that reject our request: a bad subscription, or (for every subscription of a service) our key.
REJECT_STATUSES = frozenset({400, 401, 403})
#: Days of pruning that make a service's normal 404/410 rate.
BASELINE_DAYS = 7
#: Seconds a process keeps a service's normal rate before reading it again.
BASELINE_TTL = 60.0
#: Batches' answers kept per service for the gone decision (newest first), and for how long.
RECENT_BATCHES = 100
RECENT_TTL = 3600
#: Seconds within which two abnormal batches make an incident.
INCIDENT_WINDOW = 60.0
#: A batch with at least this many 404/410 of a service, above its threshold share, waits rather than
#: deletes (cheap: a later normal batch settles it), even while older answers look normal.
WAIT_MIN = 3

#: What becomes of one gone answer.
DELETE, WAIT, REVIEW = "delete", "wait", "review"

#: What a sample of held messages says of an open breaker (half-open: see :class:`Probe`).
RECOVERED, FAILING, INCONCLUSIVE = "recovered", "failing", "inconclusive"
#: A probe's states: waiting out its cool-down, or a sample out (its batch not recorded yet).
WAITING, PROBING = "waiting", "probing"
#: Seconds a sample may stay out before maintenance sends its batch again (a lost job; idempotent).
PROBE_STALE = 600.0
#: Seconds the "recovered" banner stays up after a breaker closed by itself.
RECOVERED_SHOWN = 3600.0


def _day(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(t))


@dataclass(slots=True)
class Tally:
    """Answers of one push service: all of them, accepted, gone (404/410), rejected (400/401/403)."""

    answered: int = 0
    accepted: int = 0
    gone: int = 0
    rejected: int = 0

    def add(self, kind: str, status: int) -> None:
        """Count one outcome (no answer at all, e.g. a timeout or a message held back, counts nothing)."""
        if status <= 0 or kind == "deferred":
            return
        self.answered += 1
        if kind == "sent":
            self.accepted += 1
        elif kind == "gone":
            self.gone += 1
        elif status in REJECT_STATUSES:
            self.rejected += 1

    def plus(self, other: Tally) -> Tally:
        """The sum of two tallies."""
        return Tally(
            self.answered + other.answered,
            self.accepted + other.accepted,
            self.gone + other.gone,
            self.rejected + other.rejected,
        )

    def share(self, part: int) -> float:
        """``part`` as a share of the answers (0.0 when there were none)."""
        return part / self.answered if self.answered else 0.0


@dataclass(frozen=True)
class Policy:
    """The thresholds (``NOTIFIER_GONE_BREAKER_*``, ``NOTIFIER_REJECT_PAUSE_*``, ``..._REJECTIONS``)."""

    gone_share: float = 0.3
    gone_factor: float = 5.0
    gone_min: int = 20
    gone_sample: int = 200
    key_min: int = 50
    key_share: float = 0.9
    key_sample: int = 200
    quarantine_rejections: int = 3
    #: Seconds an open breaker waits before a sample of held messages tries the service (0: only operators).
    probe_cooldown: float = 300.0
    #: The longest wait between two samples (each failed sample doubles the wait up to this).
    probe_cooldown_max: float = 3600.0
    #: Held messages one sample sends.
    probe_sample: int = 10

    @classmethod
    def from_settings(cls, settings: Any) -> Policy:
        """The policy of a :class:`~notifier.settings.Settings`."""
        return cls(
            gone_share=settings.gone_breaker_share,
            gone_factor=settings.gone_breaker_factor,
            gone_min=settings.gone_breaker_min,
            gone_sample=settings.gone_breaker_sample,
            key_min=settings.reject_pause_threshold,
            key_share=settings.reject_pause_ratio,
            key_sample=settings.reject_pause_sample,
            quarantine_rejections=settings.quarantine_rejections,
            probe_cooldown=settings.breaker_cooldown,
            probe_cooldown_max=max(settings.breaker_cooldown, settings.breaker_cooldown_max),
            probe_sample=settings.breaker_probe_sample,
        )

    def gone_threshold(self, normal_rate: float) -> float:
        """The 404/410 share above which a service's deletions are held: far above its normal rate."""
        return max(self.gone_share, self.gone_factor * normal_rate)

    def gone_abnormal(self, answers: Tally, normal_rate: float) -> bool:
        """True when these answers hold more 404/410 than pruning explains (at least ``gone_min``)."""
        share = answers.share(answers.gone)
        return answers.gone >= self.gone_min and share > self.gone_threshold(normal_rate)

    def key_sample_for(self, audience: int) -> int:
        """Answers a service must have given before a key problem is decided (a small campaign: all)."""
        return max(self.key_min, min(self.key_sample, audience)) if audience > 0 else self.key_sample

    def key_trips(self, so_far: Tally, batch: Tally, audience: int) -> bool:
        """True when a service rejects (nearly) everything: our key or subject, not the readers'."""
        return (
            so_far.rejected >= self.key_min
            and so_far.answered >= self.key_sample_for(audience)
            and batch.accepted == 0
            and so_far.share(so_far.rejected) >= self.key_share
        )

    def probe_verdict(self, kind: str, sample: Tally, normal_rate: float) -> str:
        """What a sample of held messages says of an open breaker: recovered, failing, or inconclusive.

        Key: recovered when the service accepted messages and rejected fewer than ``key_share`` of the
        sample (a few readers' bad subscriptions do not keep it shut). Gone: recovered when the
        sample's 404/410 share is at most the threshold that opened it. No answer at all (timeouts,
        a sample the campaign skipped): inconclusive.
        """
        if not sample.answered:
            return INCONCLUSIVE
        if kind == KEY:
            healthy = sample.accepted > 0 and sample.share(sample.rejected) < self.key_share
        else:
            healthy = sample.share(sample.gone) <= self.gone_threshold(normal_rate)
        return RECOVERED if healthy else FAILING

    def next_cooldown(self, cooldown: float) -> float:
        """The wait after a failed sample: twice the last one, at most ``probe_cooldown_max``."""
        return min(self.probe_cooldown_max, max(self.probe_cooldown, 2 * cooldown))


@dataclass(frozen=True)
class Trip:
    """A breaker that opened: which service, why, on which evidence."""

    kind: str
    service: str
    status: int
    count: int
    answers: int
    share: float
    normal_rate: float = 0.0
    cid: str = ""
    at: float = 0.0

    def reason(self) -> str:
        """What happened and what an operator does about it (shown on campaigns, ops pages, CLI)."""
        if self.kind == GONE:
            return (
                f"{self.service}: {self.count} of {self.answers} recent answers were HTTP 404/410 "
                f"({self.share:.0%}; normally {self.normal_rate:.1%}): deletions held for review and "
                f"sending to {self.service} held; check the push service and the network path, then "
                f"`notifier services resume {self.service}` and restore or release the held deletions"
            )
        return (
            f"{self.service}: HTTP {self.status} for {self.count} of {self.answers} answers "
            f"({self.share:.0%}): the push service refuses our key; check VAPID_PRIVATE_KEY and "
            f"VAPID_SUBJECT, then resume"
        )

    def to_json(self) -> str:
        """Stored form."""
        return json.dumps({**asdict(self), "reason": self.reason()}, separators=(",", ":"))

    @classmethod
    def from_json(cls, value: str) -> Trip | None:
        """A trip from its stored form, or None when unreadable."""
        try:
            data = json.loads(value)
            data.pop("reason", None)
            return cls(**data)
        except (ValueError, TypeError):
            return None


@dataclass(frozen=True)
class HeldDeletion:
    """A subscription a push service called gone while its gone breaker was open."""

    sid: str
    service: str
    p256dh: str
    status: int
    at: float
    cid: str


@dataclass(frozen=True)
class PendingDeletion:
    """A gone answer waiting for its service's answers to look normal (see the module docstring)."""

    sid: str
    service: str
    status: int
    p256dh: str
    index_field: str
    cid: str = ""

    def stored(self) -> str:
        """Stored form in ``push:gone-pending:{service}``."""
        return f"{self.status}|{self.p256dh}|{self.index_field}|{self.cid}"

    @classmethod
    def parse(cls, service: str, sid: str, value: str) -> PendingDeletion | None:
        """From the stored form."""
        parts = value.split("|")
        if len(parts) != 4 or not parts[0].isdigit():
            return None
        return cls(sid, service, int(parts[0]), parts[1], parts[2], parts[3])


@dataclass(frozen=True)
class Recent:
    """One batch's answers of a service, as kept in ``push:recent:{service}``."""

    answered: int
    gone: int
    at: float
    abnormal: bool

    def stored(self) -> str:
        """Stored form."""
        return f"{self.answered}|{self.gone}|{self.at:.3f}|{int(self.abnormal)}"

    @classmethod
    def parse(cls, value: str) -> Recent | None:
        """From the stored form, or None."""
        try:
            answered, gone, at, abnormal = value.split("|")
            return cls(int(answered), int(gone), float(at), abnormal == "1")
        except ValueError:
            return None


@dataclass(frozen=True)
class Probe:
    """The half-open side of a push service's open breakers (``push:probes`` hash service → JSON).

    After ``due`` (the trip's time plus the cool-down), the workers' maintenance takes up to
    :attr:`Policy.probe_sample` *real* held messages of a campaign holding the service (no
    synthetic message: a web push always shows a notification) and sends them as batch ``batch``
    of campaign ``cid``, the one batch the breaker lets through. Its answers decide, in the
    batch's own commit: every kind whose sample looks healthy closes (``recovered``), the others
    wait again for twice the cool-down (``attempt`` + 1), up to ``probe_cooldown_max``.
    """

    service: str
    due: float
    cooldown: float
    state: str = WAITING
    attempt: int = 0
    cid: str = ""
    batch: str = ""
    sids: tuple[str, ...] = ()
    started: float = 0.0
    #: What the last sample showed (shown to ops), e.g. ``"9 of 10 answers were HTTP 404/410"``.
    last: str = ""

    def to_json(self) -> str:
        """Stored form."""
        return json.dumps({**asdict(self), "sids": list(self.sids)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, value: str) -> Probe | None:
        """From the stored form, or None when unreadable."""
        try:
            data = json.loads(value)
            data["sids"] = tuple(str(s) for s in data.get("sids", ()))
            return cls(**data)
        except (ValueError, TypeError):
            return None

    def waiting(self, due: float, cooldown: float, *, attempt: int, last: str) -> Probe:
        """This probe waiting again until ``due``."""
        return Probe(self.service, due, cooldown, WAITING, attempt, last=last)


def sample_text(kind: str, sample: Tally) -> str:
    """What a sample's answers were, for the probe's ``last`` (ops, CLI)."""
    if not sample.answered:
        return "no answer to the sample"
    if kind == KEY:
        return (
            f"{sample.accepted} of {sample.answered} accepted, {sample.rejected} rejected (HTTP 400/401/403)"
        )
    return f"{sample.gone} of {sample.answered} answers were HTTP 404/410"


@dataclass
class BatchJudge:
    """The policy's view of one batch: which services are held, and what this batch's answers decide.

    Built from what Redis said when the batch started (:meth:`Breakers.judge`); :meth:`observe`
    is called for every answer as it arrives, so a breaker can open in the middle of a batch and
    the rest of the batch keeps its messages to that service back.
    """

    policy: Policy
    cid: str
    audience: int
    open: dict[str, dict[str, Trip]]
    holds: dict[str, str]
    so_far: dict[str, Tally]
    normal_rate: Callable[[str], float]
    recent_of: Callable[[str], list[Recent]]
    #: Services whose open breakers let this batch through: it is their sample (half-open, :class:`Probe`).
    probing: dict[str, Probe] = field(default_factory=dict)
    batch: dict[str, Tally] = field(default_factory=dict)
    trips: list[Trip] = field(default_factory=list)
    #: The latest rejection status of each service in this batch (named by a key trip).
    reject_status: dict[str, int] = field(default_factory=dict)
    held: set[str] = field(init=False)
    _recent: dict[str, list[Recent]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.held = (set(self.holds) | set(self.open)) - set(self.probing)

    def probe_verdicts(self) -> dict[str, dict[str, str]]:
        """For each service this batch samples: kind of open breaker → what the sample says of it."""
        found: dict[str, dict[str, str]] = {}
        for service in self.probing:
            sample = self.batch.get(service, Tally())
            rate = float(self.normal_rate(service))
            kinds = self.open.get(service, {})
            found[service] = {kind: self.policy.probe_verdict(kind, sample, rate) for kind in kinds}
        return found

    def reason(self, service: str) -> str:
        """Why messages to ``service`` are held back in this campaign."""
        trips = self.open.get(service, {})
        for kind in (KEY, GONE):
            if kind in trips:
                return trips[kind].reason()
        return self.holds.get(service) or f"{service}: held"

    def recent(self, service: str) -> list[Recent]:
        """The newest batches' answers of ``service`` before this one (read once per batch)."""
        found = self._recent.get(service)
        if found is None:
            found = self._recent[service] = self.recent_of(service)
        return found

    def window(self, service: str) -> Tally:
        """This batch's answers of ``service`` plus the newest batches', up to ``gone_sample`` answers."""
        total = Tally()
        total = total.plus(self.batch.get(service, Tally()))
        for entry in self.recent(service):
            if total.answered >= self.policy.gone_sample:
                break
            total = total.plus(Tally(entry.answered, 0, entry.gone, 0))
        return total

    def abnormal(self, service: str, answers: Tally) -> bool:
        """True when ``answers`` of ``service`` hold more 404/410 than its pruning explains."""
        return self.policy.gone_abnormal(answers, float(self.normal_rate(service)))

    def gone_action(self, service: str) -> str:
        """What to do with a gone answer of ``service`` now: delete, wait for evidence, or review.

        A batch whose own answers look abnormal waits even when older answers would outvote it:
        the older ones say nothing about an incident that has just begun.
        """
        if GONE in self.open.get(service, {}):
            return REVIEW
        rate = float(self.normal_rate(service))
        batch = self.batch.get(service, Tally())
        if batch.gone >= WAIT_MIN and batch.share(batch.gone) > self.policy.gone_threshold(rate):
            return WAIT
        if self.policy.gone_abnormal(self.window(service), rate):
            return WAIT
        return DELETE

    def _gone_trips(self, service: str, now: float) -> Trip | None:
        window = self.window(service)
        if window.answered < self.policy.gone_sample or not self.abnormal(service, window):
            return None
        if not self.abnormal(service, self.batch.get(service, Tally())):
            return None
        # One abnormal batch is a cluster of ids; an incident shows in another batch too.
        if not any(e.abnormal and now - e.at <= INCIDENT_WINDOW for e in self.recent(service)):
            return None
        rate = float(self.normal_rate(service))
        return Trip(GONE, service, 404, window.gone, window.answered, round(window.share(window.gone), 4),
                    round(rate, 4), self.cid, now)  # fmt: skip

    def rejections_count_against_readers(self, service: str) -> bool:
        """True when the service accepts our key (in this campaign): its rejections are the readers'."""
        if KEY in self.open.get(service, {}):
            return False
        return (self.so_far.get(service, Tally()).accepted + self.batch.get(service, Tally()).accepted) > 0

    def observe(self, service: str, kind: str, status: int, now: float | None = None) -> Trip | None:
        """Count one answer; returns the trip when it opened a breaker on ``service``."""
        tally = self.batch.get(service)
        if tally is None:
            tally = self.batch[service] = Tally()
        tally.add(kind, status)
        now = time.time() if now is None else now
        trip: Trip | None
        if kind == "gone":
            if GONE in self.open.get(service, {}):
                return None
            trip = self._gone_trips(service, now)
            if trip is not None and trip.status != status:
                trip = Trip(**{**asdict(trip), "status": status})
        elif kind == "rejected" and status in REJECT_STATUSES:
            self.reject_status[service] = status
            if KEY in self.open.get(service, {}):
                return None
            total = self.so_far.get(service, Tally()).plus(tally)
            if not self.policy.key_trips(total, tally, self.audience):
                return None
            trip = Trip(KEY, service, status, total.rejected, total.answered,
                        round(total.share(total.rejected), 4), 0.0, self.cid, now)  # fmt: skip
        else:
            return None
        if trip is None:
            return None
        self.open.setdefault(trip.service, {})[trip.kind] = trip
        self.held.add(trip.service)
        self.trips.append(trip)
        return trip

    def recheck_keys(self, now: float | None = None) -> list[Trip]:
        """Decide key problems again at the batch's end, with the answers recorded since it began.

        A worker starts its next batch while the previous one's answers are outstanding, so several
        batches of one campaign can be in flight with the answers so far they read when they began:
        none of them alone may see enough of a service's rejections. Read again at the end
        (:meth:`Breakers.refresh_tally`), their sum does. Returns the trips opened now.
        """
        now = time.time() if now is None else now
        opened: list[Trip] = []
        for service, tally in self.batch.items():
            if not tally.rejected or KEY in self.open.get(service, {}):
                continue
            total = self.so_far.get(service, Tally()).plus(tally)
            if not self.policy.key_trips(total, tally, self.audience):
                continue
            status = self.reject_status.get(service, 403)
            trip = Trip(KEY, service, status, total.rejected, total.answered,
                        round(total.share(total.rejected), 4), 0.0, self.cid, now)  # fmt: skip
            self.open.setdefault(service, {})[KEY] = trip
            self.held.add(service)
            self.trips.append(trip)
            opened.append(trip)
        return opened

    def refresh_open(self, open_now: Mapping[str, Mapping[str, Trip]]) -> None:
        """Take in breakers other workers opened while this batch ran (read again before writing)."""
        for service, kinds in open_now.items():
            for kind, trip in kinds.items():
                self.open.setdefault(service, {}).setdefault(kind, trip)
                self.held.add(service)


# Count readers' 400/401/403 against their subscriptions once the push service accepted something in the
# campaign (KEYS: campaign push tally, subs rejections, waiting list; ARGV: "{service}:accepted", ttl, ids).
# Until then the ids wait: with overlapping batches, a batch of only rejecting readers can be recorded before
# the batches the service accepted; the first recorded acceptance counts the waiting ones too.
_COUNT_REJECTIONS = """
local accepted = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if accepted > 0 then
  for i = 3, #ARGV do redis.call('HINCRBY', KEYS[2], ARGV[i], 1) end
  local waiting = redis.call('LRANGE', KEYS[3], 0, -1)
  for _, sid in ipairs(waiting) do redis.call('HINCRBY', KEYS[2], sid, 1) end
  redis.call('DEL', KEYS[3])
  return 1
end
if #ARGV >= 3 then
  for i = 3, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[2]))
end
return 0
"""


class Breakers:
    """Breaker state, the answers by service, and held and pending deletions, in Redis."""

    def __init__(self, r: redis.Redis, keys: Keys, policy: Policy) -> None:
        self.r = r
        self.keys = keys
        self.policy = policy
        self._rates: dict[str, tuple[float, float]] = {}
        self._count_rejections = r.register_script(_COUNT_REJECTIONS)

    # -- reading ----------------------------------------------------------------------------------

    @staticmethod
    def _parse_open(stored: Mapping[str, str]) -> dict[str, dict[str, Trip]]:
        found: dict[str, dict[str, Trip]] = {}
        for name, value in stored.items():
            kind, _, service = name.partition(":")
            trip = Trip.from_json(value)
            if kind in KINDS and service and trip is not None:
                found.setdefault(service, {})[kind] = trip
        return found

    def open(self) -> dict[str, dict[str, Trip]]:
        """Open breakers: service → kind → trip."""
        return self._parse_open(self.r.hgetall(self.keys.push_breakers))

    def campaign_tally(self, cid: str) -> dict[str, Tally]:
        """A campaign's answers so far, by push service."""
        return self._parse_tally(self.r.hgetall(self.keys.campaign_push(cid)))

    @staticmethod
    def _parse_tally(stored: Mapping[str, str]) -> dict[str, Tally]:
        found: dict[str, Tally] = {}
        for name, value in stored.items():
            service, _, what = name.rpartition(":")
            if what in ("answered", "accepted", "gone", "rejected") and service:
                setattr(found.setdefault(service, Tally()), what, int(value))
        return found

    def recent(self, service: str) -> list[Recent]:
        """The newest batches' answers of ``service`` (every worker and campaign), newest first."""
        stored = self.r.lrange(self.keys.push_recent(service), 0, RECENT_BATCHES - 1)
        found = [Recent.parse(v) for v in stored]
        return [e for e in found if e is not None]

    def normal_rate(self, service: str, now: float | None = None) -> float:
        """The share of its answers a service called gone over the last week of pruning (cached a minute)."""
        cached = self._rates.get(service)
        mono = time.monotonic()
        if cached is not None and cached[1] > mono:
            return cached[0]
        now = time.time() if now is None else now
        pipe = self.r.pipeline(transaction=False)
        for i in range(BASELINE_DAYS):
            day = self.keys.push_daily(_day(now - 86400 * i))
            pipe.hmget(day, f"{service}:answered", f"{service}:pruned")
        answered = pruned = 0
        for a, p in pipe.execute():
            answered += int(a or 0)
            pruned += int(p or 0)
        rate = pruned / answered if answered >= 100 else 0.0
        self._rates[service] = (rate, mono + BASELINE_TTL)
        return rate

    def probes(self) -> list[Probe]:
        """The half-open state of every service with an open breaker (cool-down, sample out)."""
        found = [Probe.from_json(v) for v in self.r.hgetall(self.keys.push_probes).values()]
        return sorted((p for p in found if p is not None), key=lambda p: p.service)

    def probe_of(self, service: str) -> Probe | None:
        """The half-open state of ``service``'s breakers, if any."""
        value = self.r.hget(self.keys.push_probes, service)
        return Probe.from_json(value) if value else None

    def judge(self, cid: str, audience: int, batch_id: str = "") -> BatchJudge:
        """The policy's view for a batch of campaign ``cid`` starting now (one round trip)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.keys.push_breakers)
        pipe.hgetall(self.keys.campaign_push(cid))
        pipe.hgetall(self.keys.campaign_holds(cid))
        pipe.hgetall(self.keys.push_probes)
        stored_open, stored_tally, holds, stored_probes = pipe.execute()
        probing: dict[str, Probe] = {}
        for value in stored_probes.values():
            probe = Probe.from_json(value)
            if probe is not None and probe.state == PROBING and (probe.cid, probe.batch) == (cid, batch_id):
                probing[probe.service] = probe
        return BatchJudge(
            self.policy,
            cid,
            audience,
            self._parse_open(stored_open),
            dict(holds),
            self._parse_tally(stored_tally),
            self.normal_rate,
            self.recent,
            probing,
        )

    def refresh_tally(self, judge: BatchJudge) -> None:
        """Read the campaign's answers so far again, for a batch's decisions at its end.

        A worker starts its next batch while the last answers of the previous one are outstanding,
        so the answers of batches recorded since this one began count too (a batch of only
        rejecting readers must see that the service accepted the batch before it).
        """
        judge.so_far = self._parse_tally(self.r.hgetall(self.keys.campaign_push(judge.cid)))

    def pending_counts(self, services: Iterable[str]) -> dict[str, int]:
        """How many gone answers wait on each of ``services``."""
        services = list(services)
        pipe = self.r.pipeline(transaction=False)
        for service in services:
            pipe.hlen(self.keys.push_gone_pending(service))
        if not services:
            return {}
        return {s: int(n) for s, n in zip(services, pipe.execute(), strict=True) if int(n)}

    def pending(self, service: str) -> list[PendingDeletion]:
        """Gone answers of ``service`` waiting for its answers to look normal."""
        stored = self.r.hgetall(self.keys.push_gone_pending(service))
        found = [PendingDeletion.parse(service, sid, value) for sid, value in stored.items()]
        return [p for p in found if p is not None]

    # -- writing, in the batch's pipeline -----------------------------------------------------------

    def record(
        self,
        pipe: redis.client.Pipeline,
        cid: str,
        batch: Mapping[str, Tally],
        pruned: Mapping[str, int],
        now: float,
    ) -> None:
        """Add a batch's answers to the campaign's figures, the service's recent batches and the day's."""
        campaign_key = self.keys.campaign_push(cid)
        day_key = self.keys.push_daily(_day(now))
        wrote = False
        for service, t in batch.items():
            if not t.answered:
                continue
            for name in ("answered", "accepted", "gone", "rejected"):
                n = getattr(t, name)
                if n:
                    pipe.hincrby(campaign_key, f"{service}:{name}", n)
            abnormal = self.policy.gone_abnormal(t, self.normal_rate(service, now))
            recent_key = self.keys.push_recent(service)
            pipe.lpush(recent_key, Recent(t.answered, t.gone, now, abnormal).stored())
            pipe.ltrim(recent_key, 0, RECENT_BATCHES - 1)
            pipe.expire(recent_key, RECENT_TTL)
            pipe.hincrby(day_key, f"{service}:answered", t.answered)
            wrote = True
        for service, n in pruned.items():
            if n:
                pipe.hincrby(day_key, f"{service}:pruned", n)
        if wrote:
            pipe.expire(campaign_key, 90 * 86400)
            pipe.expire(day_key, (BASELINE_DAYS + 1) * 86400)

    def trip(self, pipe: redis.client.Pipeline, trip: Trip) -> None:
        """Open a breaker (a first trip wins: its evidence stays what ops read) and alert ops."""
        pipe.hsetnx(self.keys.push_breakers, f"{trip.kind}:{trip.service}", trip.to_json())
        pipe.hset(self.keys.alerts, f"breaker:{trip.kind}:{trip.service}", trip.to_json())
        pipe.hdel(self.keys.alerts, f"recovered:{trip.service}")
        if self.policy.probe_cooldown > 0:
            # Half-open after the cool-down: a sample of held messages tries the service (Probe).
            first = Probe(trip.service, trip.at + self.policy.probe_cooldown, self.policy.probe_cooldown)
            pipe.hsetnx(self.keys.push_probes, trip.service, first.to_json())
        if trip.kind == KEY:
            # The campaign-level banner ops already know: a configuration problem with this campaign.
            pipe.hset(self.keys.alerts, "config", f"{int(trip.at)}|{trip.cid}|{trip.status}|{trip.reason()}")

    def settle_probes(
        self,
        pipe: redis.client.Pipeline,
        judge: BatchJudge,
        verdicts: Mapping[str, Mapping[str, str]],
        now: float,
    ) -> list[str]:
        """Queue what this batch's samples decided (its commit): close what recovered, wait longer otherwise.

        Returns the services whose breakers are all closed now (their campaigns are released after the
        commit). Held deletions stay held: deleting is never automatic after an incident.
        """
        recovered: list[str] = []
        config = self.r.hget(self.keys.alerts, "config") or ""
        for service, kinds in verdicts.items():
            probe = judge.probing[service]
            sample = judge.batch.get(service, Tally())
            closing = [kind for kind, verdict in kinds.items() if verdict == RECOVERED]
            for kind in closing:
                pipe.hdel(self.keys.push_breakers, f"{kind}:{service}")
                pipe.hdel(self.keys.alerts, f"breaker:{kind}:{service}")
                if kind == KEY and _config_alert_of(config, service):
                    pipe.hdel(self.keys.alerts, "config")
            still = [kind for kind in kinds if kind not in closing]
            last = "; ".join(f"{kind}: {sample_text(kind, sample)}" for kind in kinds)
            if not still:
                pipe.hdel(self.keys.push_probes, service)
                pipe.hincrby(self.keys.push_recoveries, service, 1)
                shown = {
                    "service": service,
                    "at": now,
                    "kinds": closing,
                    "attempt": probe.attempt + 1,
                    "sample": sample.answered,
                    "accepted": sample.accepted,
                    "last": last,
                    "held_deletions": self.held_count(service),
                }
                pipe.hset(self.keys.alerts, f"recovered:{service}", json.dumps(shown, separators=(",", ":")))
                recovered.append(service)
                continue
            failing = any(kinds[kind] == FAILING for kind in still)
            cooldown = self.policy.next_cooldown(probe.cooldown) if failing else probe.cooldown
            attempt = probe.attempt + 1 if failing else probe.attempt
            pipe.hset(
                self.keys.push_probes,
                service,
                probe.waiting(now + cooldown, cooldown, attempt=attempt, last=last).to_json(),
            )
        return recovered

    def replace_probe(self, probe: Probe, new: Probe | None) -> bool:
        """Compare-and-set the probe of a service (None: forget it); False when it changed meanwhile."""
        return bool(
            self.r.eval(
                _REPLACE_PROBE,
                1,
                self.keys.push_probes,
                probe.service,
                probe.to_json(),
                new.to_json() if new else "",
            )
        )

    def hold_deletions(
        self,
        pipe: redis.client.Pipeline,
        service: str,
        items: Iterable[tuple[str, str, int, str]],
        now: float,
    ) -> None:
        """Mark ``(sid, p256dh, status, cid)`` for review instead of deleting them (nothing is removed).

        Each campaign also remembers which readers it missed this way (``campaign:{cid}:missed:{service}``),
        so a restore can send them what they missed.
        """
        mapping: dict[str, str] = {}
        missed: dict[str, list[str]] = {}
        for sid, p256dh, status, cid in items:
            mapping[sid] = f"{p256dh}|{status}|{int(now)}|{cid}"
            if cid:
                missed.setdefault(cid, []).append(sid)
        if not mapping:
            return
        pipe.hset(self.keys.push_held_deletions(service), mapping=mapping)
        pipe.sadd(self.keys.push_held_services, service)
        for cid, sids in missed.items():
            pipe.sadd(self.keys.campaign_missed(cid, service), *sids)
            pipe.expire(self.keys.campaign_missed(cid, service), 30 * 86400)
            pipe.sadd(self.keys.push_held_campaigns(service), cid)
        pipe.expire(self.keys.push_held_campaigns(service), 30 * 86400)

    def review_pending(self, service: str, now: float | None = None) -> int:
        """Hold for review every gone answer of ``service`` still waiting while its gone breaker is open.

        A batch that decided "wait" just before another opened the breaker leaves its answers pending
        with nobody to settle them (the service is held): the maintenance moves them here. Idempotent.
        """
        waiting = self.pending(service)
        if not waiting:
            return 0
        now = time.time() if now is None else now
        pipe = self.r.pipeline(transaction=True)
        self.hold_deletions(pipe, service, [(p.sid, p.p256dh, p.status, p.cid) for p in waiting], now)
        self.drop_pending(pipe, service, [p.sid for p in waiting])
        pipe.execute()
        return len(waiting)

    def defer_deletions(self, pipe: redis.client.Pipeline, items: Iterable[PendingDeletion]) -> None:
        """Keep gone answers waiting (undeleted) until their service's answers look normal."""
        by_service: dict[str, dict[str, str]] = {}
        for p in items:
            by_service.setdefault(p.service, {})[p.sid] = p.stored()
        for service, mapping in by_service.items():
            key = self.keys.push_gone_pending(service)
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, 30 * 86400)

    def drop_pending(self, pipe: redis.client.Pipeline, service: str, sids: Iterable[str]) -> None:
        """Forget settled pending deletions."""
        sids = list(sids)
        if sids:
            pipe.hdel(self.keys.push_gone_pending(service), *sids)

    def count_rejection(self, pipe: redis.client.Pipeline, sid: str) -> None:
        """One more rejection in a row against a subscription (quarantined after a few)."""
        pipe.hincrby(self.keys.subs_rejections, sid, 1)

    def count_rejections(
        self, pipe: redis.client.Pipeline, cid: str, service: str, sids: Sequence[str]
    ) -> None:
        """Queue in ``pipe`` (after :meth:`record`): count ``sids``' rejections once ``service`` accepted
        anything in the campaign, else keep them waiting for its first acceptance (see the script)."""
        self._count_rejections(
            keys=[
                self.keys.campaign_push(cid),
                self.keys.subs_rejections,
                self.keys.campaign_rejections_waiting(cid, service),
            ],
            args=[f"{service}:accepted", 7 * 86400, *sids],
            client=pipe,
        )

    # -- operators ----------------------------------------------------------------------------------

    def close(self, service: str) -> list[str]:
        """Close the breakers of ``service`` (an operator resumed it); returns the kinds that were open."""
        fields = [f"{kind}:{service}" for kind in KINDS]
        pipe = self.r.pipeline(transaction=True)
        for name in fields:
            pipe.hexists(self.keys.push_breakers, name)
        pipe.hdel(self.keys.push_breakers, *fields)
        pipe.hdel(self.keys.alerts, *(f"breaker:{name}" for name in fields))
        pipe.hdel(self.keys.push_probes, service)
        *was_open, _, _, _ = pipe.execute()
        return [kind for kind, found in zip(KINDS, was_open, strict=True) if found]

    def held_services(self) -> list[str]:
        """Services with held deletions waiting for review."""
        return sorted(self.r.smembers(self.keys.push_held_services))

    def held_count(self, service: str) -> int:
        """How many deletions of ``service`` wait for review."""
        return int(self.r.hlen(self.keys.push_held_deletions(service)))

    def held_deletions(self, service: str, limit: int | None = None) -> list[HeldDeletion]:
        """The held deletions of ``service`` (by subscription id)."""
        found: list[HeldDeletion] = []
        for sid, value in self.r.hscan_iter(self.keys.push_held_deletions(service), count=1000):
            p256dh, status, at, cid = [*value.split("|", 3), "", "", ""][:4]
            found.append(HeldDeletion(sid, service, p256dh, int(status or 0), float(at or 0), cid))
            if limit is not None and len(found) >= limit:
                break
        return sorted(found, key=lambda h: int(h.sid) if h.sid.isdigit() else 0)

    def restore(self, service: str) -> int:
        """Keep every held subscription of ``service`` (the service was wrong): forget the marks.

        See :meth:`notifier.delivery.Delivery.restore_service`, which first sends them what they missed.
        """
        cids = self.held_campaigns(service)
        pipe = self.r.pipeline(transaction=True)
        pipe.hlen(self.keys.push_held_deletions(service))
        pipe.delete(self.keys.push_held_deletions(service))
        pipe.srem(self.keys.push_held_services, service)
        pipe.delete(
            self.keys.push_held_campaigns(service), *(self.keys.campaign_missed(c, service) for c in cids)
        )
        return int(pipe.execute()[0])

    def held_campaigns(self, service: str) -> list[str]:
        """Campaigns some of ``service``'s held deletions missed (their gone answer was held for review)."""
        return sorted(self.r.smembers(self.keys.push_held_campaigns(service)))

    def _missed_keys(self, cids: Iterable[str], service: str) -> list[str]:
        return [self.keys.campaign_missed(cid, service) for cid in cids]

    def missed(self, cid: str, service: str) -> set[str]:
        """The readers of ``service`` whose gone answer in campaign ``cid`` was held for review."""
        return set(self.r.smembers(self.keys.campaign_missed(cid, service)))

    def forget(self, service: str, sids: Iterable[str]) -> None:
        """Drop the marks of ``sids`` (deleted after all)."""
        sids = list(sids)
        if sids:
            self.r.hdel(self.keys.push_held_deletions(service), *sids)
        if not self.r.exists(self.keys.push_held_deletions(service)):
            self.r.srem(self.keys.push_held_services, service)
            cids = self.held_campaigns(service)
            self.r.delete(
                self.keys.push_held_campaigns(service), *(self.keys.campaign_missed(c, service) for c in cids)
            )


def _config_alert_of(config: str, service: str) -> bool:
    """True when the ``config`` banner (``time|cid|status|reason``) is this service's key trip."""
    reason = config.split("|", 3)[3] if config.count("|") >= 3 else ""
    return reason.startswith(f"{service}: HTTP ") and "refuses our key" in reason


# Compare-and-set a probe (KEYS: probes; ARGV: service, expected value, new value or '' to delete).
_REPLACE_PROBE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1
"""


def release_held_deletions(
    breakers: Breakers, store: SubscriptionStore, service: str, *, limit: int | None = None
) -> tuple[int, int]:
    """Delete the subscriptions held for review on ``service`` after all: ``(deleted, kept)``.

    A subscription the browser renewed since (its stored key is not the one the service
    called gone) is kept. Each deletion is the store's exact delete, so nothing else moves.
    """
    held = breakers.held_deletions(service, limit=limit)
    deleted = kept = 0
    for start in range(0, len(held), 500):
        chunk = held[start : start + 500]
        current = {sub.sid: sub for sub in store.load_many([h.sid for h in chunk])}
        pipe = store.r.pipeline(transaction=False)
        for h in chunk:
            sub = current.get(h.sid)
            if sub is not None and sub.p256dh == h.p256dh:
                store.delete(sub, pipe=pipe, exact=True)
                deleted += 1
            else:
                kept += 1
        pipe.execute()
        breakers.forget(service, [h.sid for h in chunk])
    return deleted, kept
