"""Read-only figures for ops, from our own Redis keys (RQ's keys are read in :mod:`workers.inspect`).

Every number here is read from Redis at call time, so the site, the CLI and
``/metrics`` agree however many worker processes and hosts write the counters.
Breakdowns that would need a full scan of millions of subscriptions (browser,
language, staleness) are computed on a bounded uniform sample and labelled as such.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import redis

from notifier.breakers import PROBING, RECOVERED_SHOWN, Probe, Trip
from notifier.campaigns import DRAFT, FINAL, SCHEDULED, Campaign, CampaignStore
from notifier.delivery import LATENCY_BUCKETS
from notifier.errors import NotFound
from notifier.keys import Keys
from notifier.sending.outcomes import is_config_status
from notifier.settings import Settings
from notifier.sites import Sites
from notifier.subscriptions import SubscriptionStore

#: A subscription not seen on the site for this long counts as stale.
STALE_SECONDS = 30 * 86400
#: Subscriptions read for the browser / language / staleness breakdowns.
DEFAULT_SAMPLE = 2000
#: Spike detection: at least this many responses of a kind in the window, and this share of all responses.
SPIKE_MIN_COUNT = 20
SPIKE_MIN_SHARE = 0.1
#: Spike window, minutes.
SPIKE_WINDOW_MINUTES = 5
#: Campaigns examined for the by-state figure (the most recent ones).
CAMPAIGN_STATE_LIMIT = 10_000
#: Seconds over which every send rate on the ops page is averaged (whole 10-second buckets, the
#: campaign timeline's resolution, so the campaign rows and the throughput panel use the same window).
RATE_WINDOW = 60
RATE_BUCKET = 10
#: Campaign outcomes that finish a message (the throughput counters count exactly these).
FINISHED = ("sent", "gone", "rejected", "failed")


def _minute(t: float) -> int:
    return int(t // 60) * 60


def rate_window_end(now: float) -> int:
    """The end of the rate window: the start of the current 10-second bucket (still filling)."""
    return int(now) // RATE_BUCKET * RATE_BUCKET


def throughput(r: redis.Redis, keys: Keys, *, now: float | None = None, minutes: int = 60) -> dict[str, Any]:
    """Messages finished per second over :data:`RATE_WINDOW`, per second for 120 s, the last hour by minute.

    ``rate`` is computed exactly as each in-flight campaign's ``rate`` (:func:`campaigns_in_flight`):
    messages finished (sent, gone, rejected, failed) in the same window, divided by its length, so
    with one campaign sending the two figures are equal. (``now_per_second`` is the same figure under
    its earlier name; ``last_minute`` is the count in that window.)
    """
    now = time.time() if now is None else now
    current = _minute(now)
    starts = [current - 60 * i for i in range(minutes - 1, -1, -1)]
    pipe = r.pipeline(transaction=False)
    for start in starts:
        pipe.hgetall(keys.throughput_minute(start))
    per_second: dict[int, int] = {}
    by_minute: list[list[int]] = []
    for start, data in zip(starts, pipe.execute(), strict=True):
        total = 0
        for second, count in data.items():
            per_second[int(second)] = per_second.get(int(second), 0) + int(count)
            total += int(count)
        by_minute.append([start, total])
    end = rate_window_end(now)
    in_window = sum(per_second.get(s, 0) for s in range(end - RATE_WINDOW, end))
    last = int(now) - 1  # the current second is still filling
    seconds = [[s, per_second.get(s, 0)] for s in range(last - 119, last + 1)]
    rate = round(in_window / RATE_WINDOW, 1)
    return {
        "rate": rate,
        "rate_window": RATE_WINDOW,
        "window_end": end,
        "now_per_second": rate,
        "last_minute": in_window,
        "last_hour": sum(count for _, count in by_minute),
        "seconds": seconds,
        "minutes": by_minute,
    }


def _split_pairs(data: dict[str, str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for field, count in data.items():
        service, _, what = field.rpartition(":")
        out.setdefault(service or "other", {})[what] = int(count)
    return out


def outcomes_by_site(
    r: redis.Redis, keys: Keys, sites: Sequence[str]
) -> dict[str, dict[str, dict[str, int]]]:
    """All-time outcomes by push service (``sent``, ``gone``, ...) of each site's campaigns."""
    pipe = r.pipeline(transaction=False)
    for site in sites:
        pipe.hgetall(keys.site_outcomes(site))
    return (
        {site: _split_pairs(data) for site, data in zip(sites, pipe.execute(), strict=True)} if sites else {}
    )


def outcomes(r: redis.Redis, keys: Keys) -> dict[str, dict[str, dict[str, int]]]:
    """All-time outcomes by push service (``sent``, ``gone``, ...) and HTTP status by push service."""
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(keys.outcomes_total)
    pipe.hgetall(keys.statuses_total)
    by_kind, by_status = pipe.execute()
    return {"by_service": _split_pairs(by_kind), "by_status": _split_pairs(by_status)}


def latency_histogram(r: redis.Redis, keys: Keys) -> dict[str, Any]:
    """The send latency histogram as cumulative ``(le, count)`` pairs plus sum and count.

    The batch recording (``notifier/delivery/recording.py``) writes one non-cumulative count per bucket;
    Prometheus wants them cumulative.
    """
    data = r.hgetall(keys.latency)
    running = 0
    buckets: list[tuple[str, int]] = []
    for bound in [*(str(b) for b in LATENCY_BUCKETS), "+Inf"]:
        running += int(data.get(bound, 0))
        buckets.append((bound, running))
    return {"buckets": buckets, "sum": float(data.get("sum", 0.0)), "count": running}


def _cause(status: str) -> str:
    if is_config_status(status):
        return (
            "VAPID key or subject: check VAPID_PRIVATE_KEY and VAPID_SUBJECT "
            "(and the key browsers subscribed with)"
        )
    return "rate limit: the push service is throttling us; workers honour Retry-After, consider fewer workers"


def push_holds(r: redis.Redis, keys: Keys, *, now: float | None = None) -> list[dict[str, Any]]:
    """Push services that asked us to wait (429, or 503 with Retry-After) and whose wait has not ended.

    Each row: ``service``, ``until`` (unix time), ``status``, ``seconds`` (the Retry-After asked) and
    ``since`` (when it was asked), soonest end first. Holds that ended are left out (and their
    entries are dropped, the hash stays as small as the number of push services).
    """
    now = time.time() if now is None else now
    rows: list[dict[str, Any]] = []
    ended: list[str] = []
    for service, value in r.hgetall(keys.push_holds).items():
        try:
            until, status, seconds, since = (float(part) for part in value.split("|"))
        except ValueError:
            ended.append(service)
            continue
        if until <= now:
            ended.append(service)
            continue
        rows.append(
            {"service": service, "until": until, "status": int(status), "seconds": seconds, "since": since}
        )
    if ended:
        r.hdel(keys.push_holds, *ended)
    return sorted(rows, key=lambda row: (row["until"], row["service"]))


def alerts(
    r: redis.Redis,
    keys: Keys,
    *,
    now: float | None = None,
    window_minutes: int = SPIKE_WINDOW_MINUTES,
    min_count: int = SPIKE_MIN_COUNT,
    min_share: float = SPIKE_MIN_SHARE,
) -> list[dict[str, Any]]:
    """Banners for ops: a push service asked us to wait (until when), a push service's breaker opened, a
    campaign paused itself, or 400/401/403 or 429 responses spiked recently (a 429 spike of a service on
    hold is that hold's banner)."""
    now = time.time() if now is None else now
    found: list[dict[str, Any]] = []
    held: set[str] = set()
    for hold in push_holds(r, keys, now=now):
        held.add(hold["service"])
        found.append(
            {
                "kind": "hold",
                **hold,
                "message": (
                    f"{hold['service']} asked us to wait (HTTP {hold['status']}, Retry-After "
                    f"{hold['seconds']:.0f} s): its messages are held back until then"
                ),
                "cause": _cause("429"),
            }
        )
    store = CampaignStore(r, keys)
    for cid, service, _release, until in store.pending_releases():
        # A long Retry-After (Chrome caps a site it judges disruptive for 1 to 14 days): the campaign waits.
        try:
            campaign = store.get(cid)
        except NotFound:
            continue
        hold = store.long_holds(cid).get(service)
        status, seconds = (hold[1], hold[2]) if hold else (429, until - now)
        waiting = store.held_count(cid, service)
        found.append(
            {
                "kind": "campaign-hold",
                "service": service,
                "campaign": cid,
                "title": campaign.title,
                "until": until,
                "status": status,
                "seconds": seconds,
                "held": waiting,
                "message": (
                    f"{service} limits this site (HTTP {status}, Retry-After {seconds:.0f} s): "
                    f"campaign {cid} holds {waiting} messages to it until then and sends them if they "
                    "have not expired"
                ),
                "cause": (
                    "Chrome caps a site it judges disruptive (pushes and prompts per minute of reader time, "
                    "engagement) for 1 to 14 days: see the reader-health panel and the reader budget"
                ),
            }
        )
    config = r.hget(keys.alerts, "config")
    if config:
        stamp, cid, status, reason = [*config.split("|", 3), "", "", ""][:4]
        if stamp.isdigit() and now - int(stamp) < 86400:
            found.append(
                {
                    "kind": "paused",
                    "at": int(stamp),
                    "campaign": cid,
                    "status": status,
                    "message": reason,
                    "cause": _cause(status if is_config_status(status) else "400"),
                }
            )
    probes = _probes(r, keys)
    for name, value in sorted(r.hgetall(keys.push_breakers).items()):
        kind, _, service = name.partition(":")
        trip = Trip.from_json(value)
        if trip is None:
            continue
        probe = probes.get(service)
        found.append(
            {
                "kind": f"breaker-{kind}",
                "at": int(trip.at),
                "service": service,
                "campaign": trip.cid,
                "status": str(trip.status),
                "count": trip.count,
                "share": trip.share,
                "probe": probe_row(probe) if probe else None,
                "message": trip.reason() + (f"; {probe_text(probe, now)}" if probe else ""),
                "cause": (
                    "the push service (or a proxy or route in between) answers 404/410 to far more "
                    "readers than usual: deletions are held, `notifier services held` lists them"
                    if kind == "gone"
                    else _cause("401")
                ),
            }
        )
    for service, shown in recoveries(r, keys, now=now).items():
        kinds = " and ".join("404/410" if k == "gone" else "key" for k in shown["kinds"])
        held = shown.get("held_deletions", 0)
        found.append(
            {
                "kind": "breaker-recovered",
                **shown,
                "message": (
                    f"{service} recovered by itself: its {kinds} breaker closed after a sample of held "
                    f"messages was answered normally ({shown['last']}); the held messages went out"
                    + (f"; {held} deletions still wait for review" if held else "")
                ),
                "cause": (
                    "nothing to do unless deletions wait for review: `notifier services held` lists them, "
                    "restore keeps them (and re-sends what they missed), release deletes them"
                ),
            }
        )
    current = _minute(now)
    pipe = r.pipeline(transaction=False)
    for i in range(window_minutes):
        pipe.hgetall(keys.status_minute(current - 60 * i))
    totals: Counter[str] = Counter()
    kinds: Counter[tuple[str, str]] = Counter()
    for data in pipe.execute():
        for field, count in data.items():
            service, _, status = field.rpartition(":")
            totals[service] += int(count)
            if is_config_status(status):
                kinds[(service, "rejected")] += int(count)
            elif status == "429":
                kinds[(service, "429")] += int(count)
    for (service, kind), count in sorted(kinds.items()):
        if kind == "429" and service in held:
            continue
        share = count / totals[service] if totals[service] else 0.0
        if count >= min_count and share >= min_share:
            label = "rejections (HTTP 400/401/403)" if kind == "rejected" else "rate limiting (HTTP 429)"
            found.append(
                {
                    "kind": kind,
                    "service": service,
                    "count": count,
                    "share": round(share, 3),
                    "message": (
                        f"{service}: {count} {label} in the last {window_minutes} min "
                        f"({share:.0%} of its responses)"
                    ),
                    "cause": _cause("400" if kind == "rejected" else "429"),
                }
            )
    return found


def _probes(r: redis.Redis, keys: Keys) -> dict[str, Probe]:
    found = (Probe.from_json(v) for v in r.hgetall(keys.push_probes).values())
    return {p.service: p for p in found if p is not None}


def probe_row(probe: Probe) -> dict[str, Any]:
    """The half-open state of a service's breakers, for ops: ``probing`` (a sample is out) or ``waiting``."""
    return {
        "state": probe.state,
        "due": probe.due,
        "cooldown": probe.cooldown,
        "attempt": probe.attempt,
        "sample": len(probe.sids) if probe.state == PROBING else 0,
        "campaign": probe.cid if probe.state == PROBING else "",
        "last": probe.last,
    }


def probe_text(probe: Probe, now: float) -> str:
    """The half-open state in words (CLI, banner's English text)."""
    if probe.state == PROBING:
        return f"probing: {len(probe.sids)} held messages of campaign {probe.cid} are trying it now"
    wait = max(0.0, probe.due - now)
    text = f"next sample in {wait:.0f} s" if wait else "next sample as soon as a held message can try it"
    return text + (f" (last sample: {probe.last})" if probe.last else "")


def recoveries(r: redis.Redis, keys: Keys, *, now: float | None = None) -> dict[str, dict[str, Any]]:
    """Breakers that closed by themselves in the last :data:`RECOVERED_SHOWN` seconds, by service."""
    now = time.time() if now is None else now
    found: dict[str, dict[str, Any]] = {}
    for name, value in r.hgetall(keys.alerts).items():
        if not name.startswith("recovered:"):
            continue
        try:
            shown = json.loads(value)
        except ValueError:
            continue
        if isinstance(shown, dict) and now - float(shown.get("at", 0)) < RECOVERED_SHOWN:
            found[name.partition(":")[2]] = shown
    return found


def push_services(r: redis.Redis, keys: Keys, *, now: float | None = None) -> dict[str, Any]:
    """Open breakers (and their half-open samples), recoveries, deletions held for review, and 429/503
    holds, by push service (ops, /metrics)."""
    now = time.time() if now is None else now
    breakers: list[dict[str, Any]] = []
    probes = _probes(r, keys)
    for _, value in sorted(r.hgetall(keys.push_breakers).items()):
        trip = Trip.from_json(value)
        if trip is not None:
            probe = probes.get(trip.service)
            breakers.append(
                {
                    "service": trip.service,
                    "kind": trip.kind,
                    "since": trip.at,
                    "reason": trip.reason(),
                    "state": probe.state if probe else "open",
                    "probe": probe_row(probe) if probe else None,
                }
            )
    services = sorted(r.smembers(keys.push_held_services))
    pipe = r.pipeline(transaction=False)
    for service in services:
        pipe.hlen(keys.push_held_deletions(service))
    held = dict(zip(services, (int(n) for n in pipe.execute()), strict=True)) if services else {}
    holds = [
        {"service": h["service"], "status": h["status"], "seconds_left": round(h["until"] - now, 1)}
        for h in push_holds(r, keys, now=now)
    ]
    recovered = {service: int(n) for service, n in r.hgetall(keys.push_recoveries).items()}
    return {
        "breakers": breakers,
        "held_deletions": held,
        "holds": holds,
        "recovered": recoveries(r, keys, now=now),
        "recoveries_total": recovered,
    }


def subscribers(
    r: redis.Redis,
    keys: Keys,
    topics: Sequence[str],
    *,
    now: float | None = None,
    sample: int = DEFAULT_SAMPLE,
    days: int = 30,
    site: str | None = None,
) -> dict[str, Any]:
    """Totals by topic and by push service, unreachable and over-budget readers (exact), by browser /
    language / staleness (on a sample), added and removed per day.

    Of every site, or of ``site`` only (its bitmap ANDed into each figure).
    """
    now = time.time() if now is None else now
    store = SubscriptionStore(r, keys)
    if site is None:
        pipe = r.pipeline(transaction=False)
        pipe.bitcount(keys.subs_live)
        pipe.bitcount(keys.subs_quarantined)
        for slug in topics:
            pipe.bitcount(keys.subs_topic(slug))
        pipe.hgetall(keys.subs_daily("added"))
        pipe.hgetall(keys.subs_daily("removed"))
        results = pipe.execute()
        total, quarantined = int(results[0]), int(results[1])
        by_topic = {slug: int(n) for slug, n in zip(topics, results[2 : 2 + len(topics)], strict=True)}
        added, removed = results[-2], results[-1]
    else:
        total = store.count(site=site)
        quarantined = store.quarantined_count(site=site)
        by_topic = {slug: store.count(slug, site=site) for slug in topics}
        added = r.hgetall(keys.subs_daily_site("added", site))
        removed = r.hgetall(keys.subs_daily_site("removed", site))
    day_list = [time.strftime("%Y-%m-%d", time.gmtime(now - 86400 * i)) for i in range(days - 1, -1, -1)]
    daily = [{"day": d, "added": int(added.get(d, 0)), "removed": int(removed.get(d, 0))} for d in day_list]

    browsers: Counter[str] = Counter()
    langs: Counter[str] = Counter()
    stale = 0
    read = 0
    for sub in store.sample(sample, site=site):
        read += 1
        browsers[sub.browser] += 1
        langs[sub.lang] += 1
        if sub.seen and now - sub.seen > STALE_SECONDS:
            stale += 1
    standing = store.standing(site=site)
    return {
        "site": site,
        "total": total,
        "quarantined": quarantined,
        # Unreachable: their browser showed none of their last NOTIFIER_UNREACHABLE_AFTER pushes; over
        # budget: they clicked none of their last NOTIFIER_READER_BUDGET. Both get breaking news only.
        "unreachable": standing["unreachable"],
        "over_budget": standing["over_budget"],
        "by_service": standing["by_service"],
        "by_topic": by_topic,
        "daily": daily,
        "sample": {
            "size": read,
            "of": total,
            "exact": read >= total,
            "by_browser": dict(browsers.most_common()),
            "by_lang": dict(langs.most_common()),
            "stale": stale,
            "stale_days": STALE_SECONDS // 86400,
        },
    }


def average_rate(c: Campaign, now: float) -> float:
    """Messages finished per second over the whole send: from the first answer to the last one when the
    campaign has ended, to ``now`` while it runs (a push service's hold slows it, as the readers feel it).

    The one definition for the ops row and the campaign page.
    """
    if not c.first_sent:
        return 0.0
    finished = sum(c.counters.get(kind, 0) for kind in FINISHED)
    end = (c.last_sent or now) if c.state in FINAL else now
    return round(finished / max(0.001, end - c.first_sent), 1)


def campaign_rates(r: redis.Redis, keys: Keys, c: Campaign, *, now: float | None = None) -> dict[str, Any]:
    """One campaign's ``rate`` (last :data:`RATE_WINDOW` s) and ``average_rate``, as its ops row has them."""
    now = time.time() if now is None else now
    timeline = r.hgetall(keys.campaign_timeline(c.cid))
    running = c.state not in FINAL
    return {
        "rate": window_rate(timeline, rate_window_end(now)) if running else 0.0,
        "average_rate": average_rate(c, now),
        "rate_window": RATE_WINDOW,
    }


def window_rate(timeline: dict[str, str], end: int) -> float:
    """Messages finished per second in ``[end - RATE_WINDOW, end)`` from a campaign's 10 s timeline."""
    total = 0
    for field, count in timeline.items():
        bucket, _, kind = field.partition(":")
        if kind in FINISHED and bucket.isdigit() and end - RATE_WINDOW <= int(bucket) < end:
            total += int(count)
    return round(total / RATE_WINDOW, 1)


def campaigns_in_flight(
    r: redis.Redis, keys: Keys, *, now: float | None = None, sites: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Campaigns planning, sending or paused (of ``sites``, else of every site): progress, send rate,
    messages waiting to be retried.

    ``rate`` is messages finished per second over the last :data:`RATE_WINDOW` seconds (the same
    window and the same count as :func:`throughput`'s ``rate``); ``average_rate`` is over the whole
    send so far, first message to last (or now).
    """
    now = time.time() if now is None else now
    end = rate_window_end(now)
    active = CampaignStore(r, keys).active(sites=sites)
    pipe = r.pipeline(transaction=False)
    for c in active:
        pipe.hgetall(keys.campaign_timeline(c.cid))
    timelines = pipe.execute() if active else []
    rows: list[dict[str, Any]] = []
    for c, timeline in zip(active, timelines, strict=True):
        started = c.started or c.created
        latency = c.last_sent - started if c.last_sent else None
        rows.append(
            {
                "id": c.cid,
                "site": c.site,
                "title": c.title,
                "state": c.state,
                "reason": c.reason,
                "progress": round(c.progress, 4),
                "done": c.done_count,
                "total": c.counters["total"],
                "counters": c.counters,
                "pending": c.pending,
                "started": started,
                "latency": round(latency, 3) if latency is not None else None,
                "rate": window_rate(timeline, end),
                "rate_window": RATE_WINDOW,
                "average_rate": average_rate(c, now),
            }
        )
    return rows


def recent_campaigns(
    r: redis.Redis, keys: Keys, limit: int = 10, *, sites: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The latest campaigns (of ``sites``, else of all) with their ``latency``: seconds from the first message
    accepted to the last (the page's "first to last send", as long as the campaign page's "elapsed")."""
    rows: list[dict[str, Any]] = []
    for c in CampaignStore(r, keys).list(0, limit, sites=sites):
        first = c.first_sent or c.started
        rows.append(
            {
                "id": c.cid,
                "site": c.site,
                "title": c.title,
                "state": c.state,
                "total": c.counters["total"],
                "sent": c.counters["sent"],
                "progress": round(c.progress, 4),
                "latency": round(c.last_sent - first, 3) if c.last_sent and first else None,
            }
        )
    return rows


def campaigns_by_state(
    r: redis.Redis, keys: Keys, limit: int = CAMPAIGN_STATE_LIMIT, *, site: str | None = None
) -> dict[str, int]:
    """How many of the ``limit`` most recent campaigns (of ``site``, else of all) are in each state."""
    return CampaignStore(r, keys).count_by_state(limit, site=site)


def seen_workers(r: redis.Redis, keys: Keys, *, since: float = 0.0) -> list[dict[str, Any]]:
    """Worker records kept by the worker heartbeat hook (name, last heartbeat, deadline, host, pid ...)."""
    names = r.zrangebyscore(keys.workers_seen, since, "+inf", withscores=True)
    if not names:
        return []
    infos = r.hmget(keys.workers_info, [name for name, _ in names])
    out: list[dict[str, Any]] = []
    for (name, beat), raw in zip(names, infos, strict=True):
        info: dict[str, Any] = json.loads(raw) if raw else {}
        info["name"] = name
        info["last_heartbeat"] = float(beat)
        out.append(info)
    return out


def last_worker_heartbeat(r: redis.Redis, keys: Keys) -> float | None:
    """Unix time of the most recent heartbeat of any worker, or None when none was ever seen."""
    newest = r.zrevrange(keys.workers_seen, 0, 0, withscores=True)
    return float(newest[0][1]) if newest else None


def sites_summary(r: redis.Redis, keys: Keys, sites: Sequence[Any]) -> list[dict[str, Any]]:
    """Per site: its subscribers (exact), campaigns stored and in flight, and messages sent so far."""
    if not sites:
        return []
    store = SubscriptionStore(r, keys)
    campaigns = CampaignStore(r, keys)
    counts = store.count_by_site([s.id for s in sites])
    sent = outcomes_by_site(r, keys, [s.id for s in sites])
    rows = []
    for site in sites:
        rows.append(
            {
                "id": site.id,
                "name": site.name,
                "origins": list(site.origins),
                "subscribers": counts.get(site.id, 0),
                "campaigns": campaigns.count(sites=[site.id]),
                "in_flight": len(campaigns.active(sites=[site.id])),
                "sent": sum(kinds.get("sent", 0) for kinds in sent.get(site.id, {}).values()),
            }
        )
    return rows


#: Days of the reader-health panel's pushes-per-reader figure, and of its "clicked anything" window.
HEALTH_DAYS = 14
CLICK_WINDOW_DAYS = 30
#: Campaigns the panel ranks by click-through rate (the most recent ones with a sent message).
HEALTH_CAMPAIGNS = 50


def _days(now: float, n: int) -> list[str]:
    return [time.strftime("%Y-%m-%d", time.gmtime(now - 86400 * i)) for i in range(n - 1, -1, -1)]


def reader_figures(
    r: redis.Redis,
    keys: Keys,
    *,
    site: str,
    now: float | None = None,
    days: int = HEALTH_DAYS,
    click_days: int = CLICK_WINDOW_DAYS,
) -> dict[str, Any]:
    """A site's reader-health figures from bitmaps and counters only: two round trips, no per-reader or
    per-campaign work (what ``/metrics`` computes at every scrape, and the page's figures).

    ``daily`` per UTC day (pushes accepted, readers who got any, pushes per reader of those readers),
    ``per_reader_average`` over those days, ``clicked`` (readers who clicked any push in ``click_days``
    days, their share of current subscribers), ``over_budget`` / ``unreachable`` (urgent alerts only),
    ``by_service`` ({service: {total, unreachable}}) and ``subscribers``.
    """
    now = time.time() if now is None else now
    store = SubscriptionStore(r, keys)
    site_key = keys.subs_site(site)
    day_list = _days(now, days)
    scratch = keys.scratch("health")
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(keys.sent_daily(site))
    for day in day_list:
        pipe.bitop("AND", scratch, keys.readers_sent(day), site_key)
        pipe.bitcount(scratch)
    clicked_keys = [keys.readers_clicked(day) for day in _days(now, click_days)]
    pipe.bitop("OR", scratch, *clicked_keys)
    pipe.bitop("AND", scratch, scratch, site_key)
    pipe.bitcount(scratch)
    pipe.delete(scratch)
    replies = pipe.execute()
    sent_by_day = replies[0]
    reached = [int(n) for n in replies[2 : 1 + 2 * len(day_list) : 2]]
    clicked = int(replies[-2])
    daily = []
    for day, readers in zip(day_list, reached, strict=True):
        sent = int(sent_by_day.get(day, 0))
        daily.append(
            {
                "day": day,
                "sent": sent,
                "readers": readers,
                "per_reader": round(sent / readers, 2) if readers else None,
            }
        )
    total = store.count(site=site)
    standing = store.standing(site=site)
    with_readers = [d for d in daily if d["readers"]]
    return {
        "site": site,
        "subscribers": total,
        "daily": daily,
        "per_reader_average": (
            round(sum(d["sent"] for d in with_readers) / sum(d["readers"] for d in with_readers), 2)
            if with_readers
            else None
        ),
        "clicked": {
            "readers": clicked,
            "days": click_days,
            "share": round(clicked / total, 4) if total else None,
        },
        "over_budget": standing["over_budget"],
        "unreachable": standing["unreachable"],
        "by_service": standing["by_service"],
    }


def reader_health(
    r: redis.Redis,
    keys: Keys,
    *,
    site: str,
    now: float | None = None,
    days: int = HEALTH_DAYS,
    click_days: int = CLICK_WINDOW_DAYS,
    campaigns: int = HEALTH_CAMPAIGNS,
) -> dict[str, Any]:
    """How a site's readers take its pushes (exact, from bitmaps), the figures Chrome judges a site by.

    :func:`reader_figures` (pushes per reader per day, readers who clicked in ``click_days`` days,
    readers over budget and unreachable), and ``campaigns``: the most recent campaigns that sent
    anything, by click-through rate (clicks per notification shown, or per message sent when no
    ``shown`` receipt came), best first.
    """
    figures = reader_figures(r, keys, site=site, now=now, days=days, click_days=click_days)
    ranked = []
    for c in CampaignStore(r, keys).list(0, campaigns, sites=[site]):
        if not c.counters["sent"]:
            continue
        ranked.append(
            {
                "id": c.cid,
                "title": c.title,
                "breaking": c.breaking,
                "created": c.created,
                "sent": c.counters["sent"],
                "shown": c.counters["shown"],
                "clicked": c.counters["clicked"],
                "ctr": c.click_through_rate,
            }
        )
    ranked.sort(key=lambda row: (row["ctr"] or 0.0, row["sent"]), reverse=True)
    return {**figures, "campaigns": ranked}


def audience_for(
    store: SubscriptionStore, topics: Sequence[str], site: str, sites: Sites, settings: Settings
) -> dict[str, int]:
    """Who a campaign of ``site`` to ``topics`` would go to now, by that site's reader-standing rules
    (as its planning applies them): ``total``, ``reached`` by a non-breaking one, ``unreachable``,
    ``over_budget``. A site no longer configured leaves nobody out (its campaigns fail at planning)."""
    known = sites.find(site)
    rules = known.standing_rules(settings) if known else {"unreachable_after": 0, "reader_budget": 0}
    return store.audience_breakdown(
        topics, site=site, unreachable=rules["unreachable_after"] > 0, budget=rules["reader_budget"] > 0
    )


def left_out(
    store: SubscriptionStore, campaign: Campaign, sites: Sites, settings: Settings
) -> dict[str, Any]:
    """Readers a non-breaking campaign leaves out at planning: the unreachable and those over their budget
    (they get urgent alerts only).

    Once planned, the counts its planning wrote (``total`` does not include them); before (a draft, a
    scheduled one), what its site's rules would leave out now, as compose counts them. ``readers``: the
    audience beside them (the campaign's ``total``, or compose's size before planning). ``shown``: the
    campaign leaves readers out at all (an urgent alert and a test send do not); ``urgent``: an urgent
    one; ``planned``: the counts are its planning's.
    """
    test = campaign.audience.startswith("test:")
    planned = campaign.state not in (DRAFT, SCHEDULED)
    if not planned and not test:
        detail = audience_for(store, campaign.topics, campaign.site, sites, settings)
        counts = {
            "readers": detail["total"] if campaign.breaking else detail["reached"],
            "unreachable": detail["unreachable"],
            "over_budget": detail["over_budget"],
        }
    else:
        counts = {name: campaign.counters[name] for name in ("unreachable", "over_budget")}
        counts["readers"] = campaign.counters["total"]
    return {
        **counts,
        "planned": planned,
        "shown": not campaign.breaking and not test,
        "urgent": campaign.breaking and not test,
    }


def left_out_text(figures: dict[str, Any]) -> str:
    """``left out: N unreachable, M over budget`` (the command line's words; pages translate theirs)."""
    return f"left out: {figures['unreachable']} unreachable, {figures['over_budget']} over budget"
