"""Ops: the live dashboard (``/ops``, roles ops/admin), ``/metrics`` (Prometheus), ``/healthz``, ``/readyz``.

Every figure is read from Redis and RQ's keys when asked, so any number of
site processes, workers and hosts show the same numbers. ``/metrics``,
``/healthz`` and ``/readyz`` need no login: bind them to an internal network
(see docs/deployment.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis
from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime, format_time
from flask import Blueprint, Flask, Response, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext, lazy_pgettext, ngettext
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from notifier import stats
from notifier.context import Context
from notifier.sites import Site
from web.auth import current_user, require_role
from web.context import EXTENSION, ctx
from web.errors import json_error
from web.i18n import current_lang, number
from web.names import browser_names, service_name
from workers import inspect

bp = Blueprint("ops", __name__)

#: A worker must have sent a heartbeat this recently for /readyz.
READY_WORKER_WINDOW = 120.0
#: Failed jobs listed on the dashboard.
FAILED_SHOWN = 50


def summary(
    c: Context, *, now: float | None = None, site: str | None = None, sites: list[str] | None = None
) -> dict[str, Any]:
    """Everything the dashboard shows, read now from Redis and RQ (figures only, no words).

    Queues, workers, throughput and push services are the deployment's; subscribers and campaigns are
    ``site``'s when given, else those of ``sites`` (None: every site).
    """
    now = time.time() if now is None else now
    r, raw, keys = c.redis, c.raw_redis, c.keys
    failed = inspect.failed_jobs(raw, limit=FAILED_SHOWN)
    scheduled = inspect.scheduled_jobs(raw)
    scope = [site] if site else sites
    in_flight = stats.campaigns_in_flight(r, keys, now=now, sites=scope)
    visible = [s for s in c.sites if sites is None or s.id in sites]
    slugs = (
        c.site(site).topic_slugs if site else tuple(dict.fromkeys(t for s in visible for t in s.topic_slugs))
    )
    for row in in_flight:
        mine = [job["at"] for job in scheduled if job["campaign"] == row["id"]]
        row["retries_scheduled"] = len(mine)
        row["next_retry"] = min(mine) if mine else None
    return {
        "now": now,
        "queues": inspect.queue_stats(raw, now=now),
        "workers": inspect.worker_rows(raw, r, keys, now=now, scheduled=scheduled),
        "scheduled": {"count": len(scheduled), "next": scheduled[0]["at"] if scheduled else None},
        "failed": {"count": inspect.failed_count(raw), "jobs": failed},
        "throughput": stats.throughput(r, keys, now=now),
        "latency": stats.latency_histogram(r, keys),
        "campaigns": {"in_flight": in_flight, "recent": stats.recent_campaigns(r, keys, sites=scope)},
        "push": {
            **stats.outcomes(r, keys),
            "alerts": stats.alerts(r, keys, now=now),
            "services": stats.push_services(r, keys, now=now),
        },
        "subscribers": stats.subscribers(r, keys, slugs, now=now, site=site),
        "vapid": vapid_keys(c, [site] if site else [s.id for s in visible]),
        "site": site,
        "sites": stats.sites_summary(r, keys, visible) if len(c.sites) > 1 else [],
    }


def vapid_keys(c: Context, site_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Each site's VAPID keys with the readers each still holds (exact), current first."""
    out = []
    for site in c.sites:
        if site_ids is not None and site.id not in site_ids:
            continue
        infos = c.keyring.keys_of(site.id)
        current = next((i.key_id for i in infos if i.current), None)
        readers = c.subscriptions.count_by_key([i.key_id for i in infos], site=site.id, unbound_to=current)
        rows = [
            {
                "key_id": i.key_id,
                "current": i.current,
                "retired": i.retired,
                "configured": i.configured,
                "created": i.created,
                "readers": readers[i.key_id],
            }
            for i in infos
        ]
        rows.sort(key=lambda row: (not row["current"], row["retired"], -(row["created"] or 0)))
        out.append({"site": site.id, "name": site.name, "keys": rows})
    return out


# -- words for the figures (the page's language) ------------------------------------------------------

#: HTTP statuses push services answer, named. Status 0 (no HTTP answer) is split in :func:`named_statuses`.
STATUS_NAMES = {
    "201": lazy_gettext("accepted"),
    "202": lazy_gettext("accepted"),
    "400": lazy_gettext("bad request"),
    "401": lazy_gettext("VAPID refused"),
    "403": lazy_gettext("VAPID key mismatch"),
    "404": lazy_gettext("subscription gone"),
    "410": lazy_gettext("subscription gone"),
    "413": lazy_gettext("message too large"),
    "429": lazy_gettext("too many requests"),
    "500": lazy_gettext("push service error"),
    "502": lazy_gettext("push service unavailable"),
    "503": lazy_gettext("push service unavailable"),
    "504": lazy_gettext("push service timeout"),
}

#: Campaign and worker states, named.
STATE_NAMES = {
    "planning": lazy_pgettext("campaign state", "preparing"),
    "sending": lazy_pgettext("campaign state", "sending"),
    "paused": lazy_pgettext("campaign state", "paused"),
    "done": lazy_pgettext("campaign state", "done"),
    "cancelled": lazy_pgettext("campaign state", "cancelled"),
    "failed": lazy_pgettext("campaign state", "failed"),
    "draft": lazy_pgettext("campaign state", "draft"),
    "scheduled": lazy_pgettext("campaign state", "scheduled"),
    "idle": lazy_pgettext("worker state", "idle"),
    "busy": lazy_pgettext("worker state", "busy"),
    "waiting": lazy_pgettext("worker state", "waiting for scheduled retries"),
    "suspended": lazy_pgettext("worker state", "suspended"),
    "started": lazy_pgettext("worker state", "starting"),
    "dead": lazy_pgettext("worker state", "dead"),
}


def named_statuses(by_status: dict[str, int], by_kind: dict[str, int]) -> list[dict[str, Any]]:
    """One push service's answers as ``{code, label, count}``, status 0 split by what it was.

    Status 0 means no HTTP answer: either held back (never sent: the service had asked us to wait,
    counted as ``deferred``) or no answer (a timeout, a connection error, or refused before sending).
    """
    rows: list[dict[str, Any]] = []
    for code in sorted(by_status, key=lambda c: (not c.isdigit(), int(c) if c.isdigit() else 0, c)):
        count = by_status[code]
        if code == "0":
            held = min(count, by_kind.get("deferred", 0))
            if held:
                rows.append({"code": "0", "label": _("held back"), "count": held})
            if count - held:
                rows.append({"code": "0", "label": _("no answer"), "count": count - held})
            continue
        label = STATUS_NAMES.get(code)
        rows.append({"code": code, "label": str(label) if label is not None else "", "count": count})
    return rows


def alert_text(alert: dict[str, Any]) -> dict[str, str]:
    """The banner's headline and its likely cause, in the page's language."""
    kind = alert["kind"]
    if kind == "hold":
        who = service_name(alert["service"]) if alert["service"] != "other" else _("A push service")
        return {
            "message": _(
                "%(service)s is rate-limiting us (HTTP %(status)s): its messages are held back "
                "until %(until)s (it asked for %(seconds)s s).",
                service=who,
                status=alert["status"],
                until=clock_text(alert["until"]),
                seconds=number(round(alert["seconds"])),
            ),
            "cause": _(
                "Workers resume by themselves at that time; nothing is lost. If it keeps happening, "
                "send with fewer workers or smaller batches."
            ),
        }
    if kind == "campaign-hold":
        who = service_name(alert["service"]) if alert["service"] != "other" else _("A push service")
        return {
            "message": ngettext(
                "%(service)s limits this site (HTTP %(status)s): campaign “%(title)s” holds %(num)s message "
                "to it until %(until)s and sends it then, if it has not expired.",
                "%(service)s limits this site (HTTP %(status)s): campaign “%(title)s” holds %(num)s messages "
                "to it until %(until)s and sends them then, if they have not expired.",
                alert["held"],
                service=who,
                status=alert["status"],
                title=alert["title"],
                until=date_text(alert["until"]),
            ),
            "cause": _(
                "Chrome caps the pushes of a site it judges disruptive (pushes and prompts per minute of "
                "reader time, how readers engage) for 1 to 14 days. Nothing is lost and nothing is retried "
                "in between; send fewer pushes, and see the reader-health panel and the reader budget."
            ),
        }
    if kind == "paused":
        return {
            "message": _(
                "Campaign %(campaign)s paused itself: the push services refused our messages "
                "(HTTP %(status)s).",
                campaign=alert["campaign"],
                status=alert["status"] or "4xx",
            ),
            "cause": _(
                "Likely the VAPID key or subject: check VAPID_PRIVATE_KEY and VAPID_SUBJECT "
                "(and the key browsers subscribed with), then resume the campaign."
            ),
        }
    share = f"{alert['share']:.0%}"
    if kind == "429":
        message = _(
            "%(service)s: %(count)s answers “too many requests” (HTTP 429) in the last %(minutes)s min "
            "(%(share)s of its answers).",
            service=service_name(alert["service"]),
            count=number(alert["count"]),
            minutes=stats.SPIKE_WINDOW_MINUTES,
            share=share,
        )
        cause = _("The push service is throttling us; workers honour Retry-After. Consider fewer workers.")
    else:
        message = _(
            "%(service)s: %(count)s rejections (HTTP 400/401/403) in the last %(minutes)s min "
            "(%(share)s of its answers).",
            service=service_name(alert["service"]),
            count=number(alert["count"]),
            minutes=stats.SPIKE_WINDOW_MINUTES,
            share=share,
        )
        cause = _(
            "Likely the VAPID key or subject: check VAPID_PRIVATE_KEY and VAPID_SUBJECT "
            "(and the key browsers subscribed with)."
        )
    return {"message": message, "cause": cause}


def clock_text(ts: float) -> str:
    """A moment as the newsroom's clock reads it, e.g. ``14.05.30 WIB`` (the newsroom's time zone)."""
    moment = datetime.fromtimestamp(ts, ZoneInfo(ctx().settings.timezone))
    return f"{format_time(moment, 'HH:mm:ss', locale=_babel_lang())} {moment.strftime('%Z')}"


def date_text(ts: float) -> str:
    """A day and time as the newsroom reads it, e.g. ``2 Des 2026 14.05 WIB`` (for waits of days)."""
    moment = datetime.fromtimestamp(ts, ZoneInfo(ctx().settings.timezone))
    return f"{format_datetime(moment, 'd MMM y HH:mm', locale=_babel_lang())} {moment.strftime('%Z')}"


def _babel_lang() -> str:
    lang = current_lang()
    return lang if lang in ("id", "en") else "id"


def described(data: dict[str, Any]) -> dict[str, Any]:
    """:func:`summary` with the words the page shows: names of services, statuses, states, banners."""
    push = data["push"]
    services = sorted(set(push["by_service"]) | set(push["by_status"]))
    push["services"] = [
        {
            "id": service,
            "name": service_name(service),
            "kinds": push["by_service"].get(service, {}),
            "statuses": named_statuses(
                push["by_status"].get(service, {}), push["by_service"].get(service, {})
            ),
        }
        for service in services
    ]
    for alert in push["alerts"]:
        alert.update(alert_text(alert))
    subscribers = data["subscribers"]
    subscribers["services"] = [
        {"id": service, "name": service_name(service), **figures}
        for service, figures in subscribers["by_service"].items()
        if figures["total"] or service == "apple"
    ]
    data["state_names"] = {state: str(name) for state, name in STATE_NAMES.items()}
    sample = data["subscribers"]["sample"]
    browsers = browser_names()
    sample["browser_names"] = {family: browsers.get(family, family) for family in sample["by_browser"]}
    sample["lang_names"] = {code: language_name(code) for code in sample["by_lang"]}
    return data


def language_name(code: str) -> str:
    """A reader's language named in the page's language (``Inggris`` on an Indonesian page)."""
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name(current_lang())
    except (ValueError, UnknownLocaleError):
        return code
    return name[:1].upper() + name[1:] if name else code


# -- dashboard ----------------------------------------------------------------------------------------


@bp.get("/ops/")
@require_role("ops", "admin")
def dashboard() -> str:
    """The live ops page (its script polls ``summary.json`` every 2 s; ``?site=``: one site's figures)."""
    zone = ZoneInfo(ctx().settings.timezone)
    user = current_user()
    allowed = user.sites_for("ops", "admin") if user is not None else []
    sites = [s for s in ctx().sites if allowed is None or s.id in allowed]
    chosen = request.args.get("site", "")
    chosen = chosen if any(s.id == chosen for s in sites) else ""
    rules = shared_rules([ctx().site(chosen)] if chosen else sites or list(ctx().sites))
    return render_template(
        "ops/dashboard.html",
        sites=sites if len(ctx().sites) > 1 else [],
        chosen_site=chosen,
        zone=ctx().settings.timezone,
        zone_label=datetime.now(zone).strftime("%Z"),
        rate_window=stats.RATE_WINDOW,
        unreachable_after=rules["unreachable_after"],
        reader_budget=rules["reader_budget"],
    )


def shared_rules(sites: list[Site]) -> dict[str, int | None]:
    """The reader-standing rules the ``sites`` share; None for a rule they set differently."""
    settings = ctx().settings
    found = [site.standing_rules(settings) for site in sites]
    return {name: (found[0][name] if len({f[name] for f in found}) == 1 else None) for name in found[0]}


@bp.get("/ops/summary.json")
@require_role("ops", "admin")
def summary_json() -> Response:
    """The dashboard's figures as JSON (``?site=``: that site's subscribers and campaigns), with the names
    and banners in the page's language."""
    user = current_user()
    allowed = user.sites_for("ops", "admin") if user is not None else []
    if len(ctx().sites) == 1:
        allowed = None  # one site: its figures are the deployment's
    site = request.args.get("site") or None
    if site is not None and (ctx().sites.find(site) is None or (allowed is not None and site not in allowed)):
        return json_error(
            404, "unknown_site", _("There is no site %(site)s for this account.", site=repr(site[:40]))
        )
    if site is None and allowed is not None and len(allowed) == 1:
        site = allowed[0]
    response = jsonify(described(summary(ctx(), site=site, sites=allowed)))
    response.headers["Cache-Control"] = "no-store"
    return response


def _done(message: str, **data: Any) -> Response:
    """JSON for the page's fetch calls, a redirect back to the dashboard for plain forms."""
    if request.accept_mimetypes.best == "application/json":
        return jsonify({"message": message, **data})
    return redirect(url_for("ops.dashboard") + "#failed", code=303)


def _not_failed(job_id: str) -> Response:
    message = _(
        "Job %(job)s is not in a failed-job registry (requeued or deleted already?).", job=repr(job_id[:80])
    )
    if request.accept_mimetypes.best == "application/json":
        response = jsonify({"error": "not_found", "message": message})
        response.status_code = 404
        return response
    return Response(render_template("ops/message.html", heading=_("Not found"), message=message), 404)


@bp.post("/ops/failed/<job_id>/requeue")
@require_role("ops", "admin")
def requeue(job_id: str) -> Response:
    """Put one failed job back on its queue."""
    if not inspect.requeue_failed(ctx().raw_redis, job_id):
        return _not_failed(job_id)
    return _done(_("Requeued %(job)s.", job=job_id), requeued=1)


@bp.post("/ops/failed/requeue-all")
@require_role("ops", "admin")
def requeue_all() -> Response:
    """Requeue every failed job."""
    n = inspect.requeue_all_failed(ctx().raw_redis)
    return _done(ngettext("Requeued %(num)s job.", "Requeued %(num)s jobs.", n), requeued=n)


@bp.post("/ops/failed/<job_id>/delete")
@require_role("ops", "admin")
def delete(job_id: str) -> Response:
    """Delete one failed job."""
    if not inspect.delete_failed(ctx().raw_redis, job_id):
        return _not_failed(job_id)
    return _done(_("Deleted %(job)s.", job=job_id), deleted=1)


# -- health -------------------------------------------------------------------------------------------


@bp.get("/healthz")
def healthz() -> Response:
    """The process answers (no dependency is checked: that is /readyz)."""
    return jsonify({"status": "ok"})


def readiness(c: Context, *, now: float | None = None) -> tuple[bool, dict[str, Any]]:
    """Redis reachable, VAPID key loaded, a worker heard from recently: ``(ready, details)``."""
    now = time.time() if now is None else now
    checks: dict[str, Any] = {}
    reasons: list[str] = []
    try:
        # A write, not a PING: a primary demoted to replica (plain URL after a failover) or one refusing
        # writes (min-replicas-to-write) answers PING but would store no subscription.
        c.probe_redis.set(c.keys.ready_probe, repr(now), ex=60)
        checks["redis"] = "ok"
    except redis.ReadOnlyError as exc:
        checks["redis"] = "read-only"
        reasons.append(f"Redis answers but refuses writes (a replica?): {exc}")
    except redis.ResponseError as exc:
        checks["redis"] = "refusing writes"
        reasons.append(f"Redis refuses writes: {exc}")
    except (redis.RedisError, OSError) as exc:
        checks["redis"] = "unreachable"
        reasons.append(f"Redis does not answer: {type(exc).__name__}: {exc}")
    try:
        checks["vapid_key"] = "ok" if c.vapid.public_key_b64 else "missing"
    except (AttributeError, ValueError):
        checks["vapid_key"] = "missing"
    if checks["vapid_key"] != "ok":
        reasons.append("the VAPID key is not loaded")
    if checks["redis"] == "ok":
        try:
            last = stats.last_worker_heartbeat(c.redis, c.keys)
            alive = inspect.alive_workers(c.raw_redis, c.redis, c.keys, now=now)
        except (redis.RedisError, OSError) as exc:
            # The probe's write went through but Redis went away right after (a failover under way).
            checks["redis"] = "unreachable"
            reasons.append(f"Redis does not answer: {type(exc).__name__}: {exc}")
        else:
            checks["workers_alive"] = alive
            checks["last_worker_heartbeat"] = last
            if not alive or last is None or now - last > READY_WORKER_WINDOW:
                reasons.append("no worker was seen recently: start `notifier worker`")
    ready = not reasons
    return ready, {"status": "ready" if ready else "unavailable", "checks": checks, "reasons": reasons}


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """200 when ready, else 503 with the reasons (JSON)."""
    ready, details = readiness(ctx())
    if not ready:
        details = {"error": "not_ready", "message": "; ".join(details["reasons"]), **details}
    return jsonify(details), 200 if ready else 503


# -- Prometheus ---------------------------------------------------------------------------------------


class NotifierCollector(Collector):
    """Reads Redis and RQ at scrape time, so the figures cover every process and host."""

    def __init__(self, context: Context) -> None:
        self.c = context

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family (only ``notifier_redis_up 0`` when Redis is unreachable)."""
        up = GaugeMetricFamily("notifier_redis_up", "1 when Redis answered this scrape")
        try:
            families = list(self._families())
        except (redis.RedisError, OSError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _site_families(self, r: redis.Redis, keys: Any) -> Iterator[Metric]:
        """The figures of each site, labelled ``site`` (the unlabelled families are the deployment's)."""
        c = self.c
        ids = list(c.sites.ids)
        subscribers = GaugeMetricFamily(
            "notifier_site_subscribers", "Subscriptions of a site", labels=["site"]
        )
        by_topic = GaugeMetricFamily(
            "notifier_site_topic_subscribers",
            "Subscriptions of a site following a topic",
            labels=["site", "topic"],
        )
        for site_id, n in c.subscriptions.count_by_site(ids).items():
            subscribers.add_metric([site_id], n)
        for site in c.sites:
            for slug in site.topic_slugs:
                by_topic.add_metric([site.id, slug], c.subscriptions.count(slug, site=site.id))
        messages = CounterMetricFamily(
            "notifier_site_messages",
            "Push messages of a site's campaigns by push service and outcome",
            labels=["site", "service", "outcome"],
        )
        for site_id, services in stats.outcomes_by_site(r, keys, ids).items():
            for service, kinds in sorted(services.items()):
                for kind, n in sorted(kinds.items()):
                    messages.add_metric([site_id, service, kind], n)
        campaigns = GaugeMetricFamily(
            "notifier_site_campaigns",
            f"A site's campaigns by state (among its {stats.CAMPAIGN_STATE_LIMIT} most recent)",
            labels=["site", "state"],
        )
        for site_id in ids:
            for state, n in stats.campaigns_by_state(r, keys, site=site_id).items():
                campaigns.add_metric([site_id, state], n)
        yield from (subscribers, by_topic, messages, campaigns)
        yield from self._reader_families(r, keys, ids)

    def _reader_families(self, r: redis.Redis, keys: Any, ids: list[str]) -> Iterator[Metric]:
        """Each site's reader health, as ``/newsroom/readers`` shows it (``stats.reader_figures``: bitmaps
        and counters only, a few round trips per site, whatever the number of readers or campaigns)."""
        per_reader = GaugeMetricFamily(
            "notifier_site_pushes_per_reader",
            "Pushes accepted per reader who got any, per UTC day: today so far, and the average of the "
            f"last {stats.HEALTH_DAYS} days (the readers page's figure)",
            labels=["site", "period"],
        )
        clicked = GaugeMetricFamily(
            "notifier_site_readers_clicked",
            f"Readers of a site who clicked any push in the last {stats.CLICK_WINDOW_DAYS} days",
            labels=["site"],
        )
        clicked_share = GaugeMetricFamily(
            "notifier_site_readers_clicked_ratio",
            f"Share of a site's subscribers who clicked any push in the last {stats.CLICK_WINDOW_DAYS} days",
            labels=["site"],
        )
        over_budget = GaugeMetricFamily(
            "notifier_site_subscribers_over_budget",
            "Readers of a site who clicked none of the last pushes of its reader budget (urgent alerts only)",
            labels=["site"],
        )
        unreachable = GaugeMetricFamily(
            "notifier_site_subscribers_unreachable",
            "Subscriptions of a site whose browser showed none of their last pushes (urgent alerts only)",
            labels=["site"],
        )
        by_service = GaugeMetricFamily(
            "notifier_site_push_service_subscribers",
            "Subscriptions of a site by push service: all of them, and the unreachable ones",
            labels=["site", "service", "standing"],
        )
        for site_id in ids:
            figures = stats.reader_figures(r, keys, site=site_id)
            today = figures["daily"][-1]["per_reader"]
            if today is not None:
                per_reader.add_metric([site_id, "today"], today)
            if figures["per_reader_average"] is not None:
                per_reader.add_metric([site_id, f"{stats.HEALTH_DAYS}d"], figures["per_reader_average"])
            clicked.add_metric([site_id], figures["clicked"]["readers"])
            if figures["clicked"]["share"] is not None:
                clicked_share.add_metric([site_id], figures["clicked"]["share"])
            over_budget.add_metric([site_id], figures["over_budget"])
            unreachable.add_metric([site_id], figures["unreachable"])
            for service, counts in figures["by_service"].items():
                by_service.add_metric([site_id, service, "all"], counts["total"])
                by_service.add_metric([site_id, service, "unreachable"], counts["unreachable"])
        yield from (per_reader, clicked, clicked_share, over_budget, unreachable, by_service)

    def _families(self) -> Iterator[Metric]:
        c = self.c
        r, raw, keys = c.redis, c.raw_redis, c.keys
        now = time.time()
        depth = GaugeMetricFamily("notifier_queue_jobs", "Jobs waiting in an RQ queue", labels=["queue"])
        oldest = GaugeMetricFamily(
            "notifier_queue_oldest_job_age_seconds", "Age of the oldest waiting job", labels=["queue"]
        )
        registry = GaugeMetricFamily(
            "notifier_queue_registry_jobs", "Jobs in an RQ registry", labels=["queue", "registry"]
        )
        for q in inspect.queue_stats(raw, now=now):
            depth.add_metric([q["name"]], q["depth"])
            oldest.add_metric([q["name"]], q["oldest_age"] or 0.0)
            for label in inspect.REGISTRIES:
                registry.add_metric([q["name"], label], q[label])
        yield from (depth, oldest, registry)

        rows = inspect.worker_rows(raw, r, keys, now=now)
        workers = GaugeMetricFamily(
            "notifier_workers",
            "Workers by state (waiting: idle with retries scheduled; dead: missed heartbeat)",
            labels=["state"],
        )
        states: dict[str, int] = {"idle": 0, "busy": 0, "waiting": 0, "dead": 0}
        for w in rows:
            states[w["state"]] = states.get(w["state"], 0) + 1
        for state, n in sorted(states.items()):
            workers.add_metric([state], n)
        yield workers

        found = stats.outcomes(r, keys)
        messages = CounterMetricFamily(
            "notifier_messages", "Push messages by push service and outcome", labels=["service", "outcome"]
        )
        for service, kinds in sorted(found["by_service"].items()):
            for kind, n in sorted(kinds.items()):
                messages.add_metric([service, kind], n)
        responses = CounterMetricFamily(
            "notifier_push_responses", "Push service responses by HTTP status", labels=["service", "status"]
        )
        for service, codes in sorted(found["by_status"].items()):
            for code, n in sorted(codes.items()):
                responses.add_metric([service, code], n)
        yield from (messages, responses)

        hist = stats.latency_histogram(r, keys)
        latency = HistogramMetricFamily("notifier_send_latency_seconds", "Latency of one push request")
        latency.add_metric([], [(le, float(n)) for le, n in hist["buckets"]], sum_value=hist["sum"])
        yield latency

        slugs = tuple(dict.fromkeys(t for site in c.sites for t in site.topic_slugs))
        subs = stats.subscribers(r, keys, slugs, now=now, sample=0)
        total = GaugeMetricFamily("notifier_subscribers", "Stored push subscriptions")
        total.add_metric([], subs["total"])
        by_topic = GaugeMetricFamily(
            "notifier_topic_subscribers", "Subscriptions following a topic", labels=["topic"]
        )
        for slug, n in subs["by_topic"].items():
            by_topic.add_metric([slug], n)
        quarantined = GaugeMetricFamily(
            "notifier_subscribers_quarantined", "Subscriptions kept out of fan-out"
        )
        quarantined.add_metric([], subs["quarantined"])
        unreachable = GaugeMetricFamily(
            "notifier_subscribers_unreachable",
            "Subscriptions whose browser showed none of their last NOTIFIER_UNREACHABLE_AFTER pushes "
            "(breaking news only)",
        )
        unreachable.add_metric([], subs["unreachable"])
        over_budget = GaugeMetricFamily(
            "notifier_subscribers_over_budget",
            "Readers who clicked none of their last NOTIFIER_READER_BUDGET pushes (breaking news only)",
        )
        over_budget.add_metric([], subs["over_budget"])
        by_service = GaugeMetricFamily(
            "notifier_push_service_subscribers",
            "Subscriptions by push service: all of them, and the unreachable ones",
            labels=["service", "standing"],
        )
        for service, figures in subs["by_service"].items():
            by_service.add_metric([service, "all"], figures["total"])
            by_service.add_metric([service, "unreachable"], figures["unreachable"])
        yield from (total, by_topic, quarantined, unreachable, over_budget, by_service)

        by_key = GaugeMetricFamily(
            "notifier_vapid_key_subscribers",
            "Subscriptions bound to each VAPID key of each site (readers an old key still holds)",
            labels=["site", "key", "state"],
        )
        for site_keys in vapid_keys(c):
            for key in site_keys["keys"]:
                state = "current" if key["current"] else ("retired" if key["retired"] else "old")
                by_key.add_metric([site_keys["site"], key["key_id"], state], key["readers"])
        yield by_key

        push = stats.push_services(r, keys, now=now)
        breakers = GaugeMetricFamily(
            "notifier_push_breaker_open",
            "1 while a push service's breaker is open (gone: deletions held; key: our key refused)",
            labels=["service", "kind"],
        )
        probing = GaugeMetricFamily(
            "notifier_push_breaker_probing",
            "1 while a sample of held messages is trying an open breaker's push service (half-open)",
            labels=["service", "kind"],
        )
        for trip in push["breakers"]:
            breakers.add_metric([trip["service"], trip["kind"]], 1)
            probing.add_metric([trip["service"], trip["kind"]], 1 if trip["state"] == "probing" else 0)
        recoveries = CounterMetricFamily(
            "notifier_push_breaker_recoveries",
            "Times a push service's breakers closed by themselves after a healthy sample",
            labels=["service"],
        )
        for service, n in sorted(push["recoveries_total"].items()):
            recoveries.add_metric([service], n)
        held = GaugeMetricFamily(
            "notifier_push_held_deletions", "Deletions held for review, by push service", labels=["service"]
        )
        for service, n in push["held_deletions"].items():
            held.add_metric([service], n)
        holds = GaugeMetricFamily(
            "notifier_push_hold_seconds", "Seconds left of a 429/503 hold of a service", labels=["service"]
        )
        for hold in push["holds"]:
            holds.add_metric([hold["service"]], hold["seconds_left"])
        yield from (breakers, probing, recoveries, held, holds)

        yield from self._site_families(r, keys)

        failed = GaugeMetricFamily("notifier_failed_jobs", "Jobs in RQ's failed registries")
        failed.add_metric([], inspect.failed_count(raw))
        yield failed

        campaigns = GaugeMetricFamily(
            "notifier_campaigns",
            f"Campaigns by state (among the {stats.CAMPAIGN_STATE_LIMIT} most recent)",
            labels=["state"],
        )
        for state, n in stats.campaigns_by_state(r, keys).items():
            campaigns.add_metric([state], n)
        yield campaigns


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition."""
    from flask import current_app

    registry: CollectorRegistry = current_app.extensions["notifier.metrics"]
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4; charset=utf-8")


def register(app: Flask) -> None:
    """Register the blueprint and this app's Prometheus registry (not the process-global one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NotifierCollector(app.extensions[EXTENSION]))
    app.extensions["notifier.metrics"] = registry
    app.register_blueprint(bp)
