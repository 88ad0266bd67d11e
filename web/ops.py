"""Ops: the live dashboard (``/ops``, roles ops/admin), ``/metrics`` (Prometheus), ``/healthz``, ``/readyz``.

Every figure is read from Redis and RQ's keys when asked, so any number of
site processes, workers and hosts show the same numbers. ``/metrics``,
``/healthz`` and ``/readyz`` need no login: bind them to an internal network
(see docs/deployment.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import redis
from flask import Blueprint, Flask, Response, jsonify, redirect, render_template, request, url_for
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from notifier import stats
from notifier.context import Context
from web.auth import require_role
from web.context import EXTENSION, ctx
from workers import inspect

bp = Blueprint("ops", __name__)

#: A worker must have sent a heartbeat this recently for /readyz.
READY_WORKER_WINDOW = 120.0
#: Failed jobs listed on the dashboard.
FAILED_SHOWN = 50


def summary(c: Context, *, now: float | None = None) -> dict[str, Any]:
    """Everything the dashboard shows, read now from Redis and RQ."""
    now = time.time() if now is None else now
    r, raw, keys = c.redis, c.raw_redis, c.keys
    failed = inspect.failed_jobs(raw, limit=FAILED_SHOWN)
    return {
        "now": now,
        "queues": inspect.queue_stats(raw, now=now),
        "workers": inspect.worker_rows(raw, r, keys, now=now),
        "failed": {"count": inspect.failed_count(raw), "jobs": failed},
        "throughput": stats.throughput(r, keys, now=now),
        "latency": stats.latency_histogram(r, keys),
        "campaigns": {
            "in_flight": stats.campaigns_in_flight(r, keys, now=now),
            "recent": stats.recent_campaigns(r, keys),
        },
        "push": {**stats.outcomes(r, keys), "alerts": stats.alerts(r, keys, now=now)},
        "subscribers": stats.subscribers(r, keys, c.topic_slugs, now=now),
    }


# -- dashboard ----------------------------------------------------------------------------------------


@bp.get("/ops/")
@require_role("ops", "admin")
def dashboard() -> str:
    """The live ops page (its script polls ``summary.json`` every 2 s)."""
    return render_template("ops/dashboard.html", site=ctx().settings.site_name)


@bp.get("/ops/summary.json")
@require_role("ops", "admin")
def summary_json() -> Response:
    """The dashboard's figures as JSON."""
    response = jsonify(summary(ctx()))
    response.headers["Cache-Control"] = "no-store"
    return response


def _done(message: str, **data: Any) -> Response:
    """JSON for the page's fetch calls, a redirect back to the dashboard for plain forms."""
    if request.accept_mimetypes.best == "application/json":
        return jsonify({"message": message, **data})
    return redirect(url_for("ops.dashboard") + "#failed", code=303)


def _not_failed(job_id: str) -> Response:
    message = f"job {job_id[:80]!r} is not in a failed-job registry (requeued or deleted already?)"
    if request.accept_mimetypes.best == "application/json":
        response = jsonify({"error": "not_found", "message": message})
        response.status_code = 404
        return response
    return Response(render_template("ops/message.html", heading="Not found", message=message), 404)


@bp.post("/ops/failed/<job_id>/requeue")
@require_role("ops", "admin")
def requeue(job_id: str) -> Response:
    """Put one failed job back on its queue."""
    if not inspect.requeue_failed(ctx().raw_redis, job_id):
        return _not_failed(job_id)
    return _done(f"requeued {job_id}", requeued=1)


@bp.post("/ops/failed/requeue-all")
@require_role("ops", "admin")
def requeue_all() -> Response:
    """Requeue every failed job."""
    n = inspect.requeue_all_failed(ctx().raw_redis)
    return _done(f"requeued {n} jobs", requeued=n)


@bp.post("/ops/failed/<job_id>/delete")
@require_role("ops", "admin")
def delete(job_id: str) -> Response:
    """Delete one failed job."""
    if not inspect.delete_failed(ctx().raw_redis, job_id):
        return _not_failed(job_id)
    return _done(f"deleted {job_id}", deleted=1)


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
        c.redis.ping()
        checks["redis"] = "ok"
    except (redis.RedisError, OSError) as exc:
        checks["redis"] = "unreachable"
        reasons.append(f"Redis does not answer: {type(exc).__name__}")
    try:
        checks["vapid_key"] = "ok" if c.vapid.public_key_b64 else "missing"
    except (AttributeError, ValueError):
        checks["vapid_key"] = "missing"
    if checks["vapid_key"] != "ok":
        reasons.append("the VAPID key is not loaded")
    if checks["redis"] == "ok":
        last = stats.last_worker_heartbeat(c.redis, c.keys)
        alive = inspect.alive_workers(c.raw_redis, c.redis, c.keys, now=now)
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
            "notifier_workers", "Workers by state (dead: missed heartbeat)", labels=["state"]
        )
        states: dict[str, int] = {"idle": 0, "busy": 0, "dead": 0}
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

        subs = stats.subscribers(r, keys, c.topic_slugs, now=now, sample=0)
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
        yield from (total, by_topic, quarantined)

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
