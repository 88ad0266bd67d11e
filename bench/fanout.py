"""One real campaign through the real stack (create + launch → plan job → batch jobs on workers → simulator).

Also the planning-only measurement: ``Delivery.plan`` over a large synthetic
audience with the real RQ batch enqueuer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stack import SIMULATOR_KEEPS, SimulatorProcess, Workers, cpu_seconds
from notifier.campaigns import FINAL, CampaignStore, validate_campaign
from notifier.context import Context
from notifier.delivery import Delivery
from notifier.polling import wait_for

CAMPAIGN = {
    "title": "Gempa M6,1 guncang Cianjur, warga diminta menjauhi bangunan retak",
    "body": "BMKG: gempa tidak berpotensi tsunami. Pantau informasi resmi dan hindari hoaks.",
    "url": "https://kabarkini.example/nasional/2026/11/30/gempa-cianjur-bmkg-tidak-berpotensi-tsunami",
    "image": "https://kabarkini.example/img/2026/11/30/gempa-cianjur-1200x630.jpg",
    "breaking": True,
}


def create_campaign(context: Context, title_suffix: str = "") -> tuple[str, Any]:
    """Validate and store a breaking campaign to everyone (not launched yet)."""
    item = validate_campaign(
        {**CAMPAIGN, "title": CAMPAIGN["title"] + title_suffix},
        topics=context.topics,
        source="cli",
        created_by="bench",
    )
    return CampaignStore(context.redis, context.keys).create(item), item


def run_campaign(
    context: Context,
    sim: SimulatorProcess,
    env: dict[str, str],
    log_dir: Path,
    *,
    n_workers: int,
    size: int,
    tag: str,
    redis_pid: int,
    progress: Callable[[int, int], None],
    timeout: float = 900.0,
) -> dict[str, Any]:
    """Start ``n_workers`` idle workers, send one campaign to the stored audience, and measure it."""
    from workers.jobs import launch

    store = CampaignStore(context.redis, context.keys)
    workers = Workers(env, log_dir)
    workers.start(n_workers, tag)
    try:
        workers.wait_ready(context.raw_redis)
        others = {"simulator": sim.pid, "redis": redis_pid}
        cpu_before = {
            **{f"worker{i}": cpu_seconds(pid) for i, pid in enumerate(workers.pids())},
            **{name: cpu_seconds(pid) for name, pid in others.items()},
        }
        received_before = int(sim.stats()["received"])
        cid, item = create_campaign(context, f" ({tag})")
        launch(context.raw_redis, cid, item.send_at)

        first_seen: list[float] = []

        def finished() -> bool:
            if size > SIMULATOR_KEEPS and not first_seen:
                # The simulator keeps the latest receive times only: a campaign larger than that takes its
                # first one while the first messages are still among them.
                got = int(sim.stats()["received"]) - received_before
                if 0 < got <= SIMULATOR_KEEPS:
                    first_seen.append(sim.receive_window(got)[0])
            campaign = store.get(cid)
            progress(campaign.done_count, campaign.counters["total"] or size)
            return campaign.state in FINAL

        wait_for(finished, timeout, message=f"campaign {cid} to finish", interval=0.1)
        campaign = store.get(cid)
        peak = dict(workers.peak_rss)
        cpu_after = {
            **{f"worker{i}": cpu_seconds(pid) for i, pid in enumerate(workers.pids())},
            **{name: cpu_seconds(pid) for name, pid in others.items()},
        }
    finally:
        workers.stop()
    stats = sim.stats()
    accepted = int(stats["received"]) - received_before
    first_rx, last_rx = sim.receive_window(min(accepted, SIMULATOR_KEEPS)) if accepted else (0.0, 0.0)
    if accepted > SIMULATOR_KEEPS:
        first_rx = first_seen[0] if first_seen else campaign.first_sent or first_rx
    k = campaign.counters
    created = campaign.created
    used = {name: cpu_after[name] - cpu_before[name] for name in cpu_before}
    per_msg = {
        "workers": sum(v for name, v in used.items() if name.startswith("worker")) / max(accepted, 1) * 1e6,
        "simulator": used["simulator"] / max(accepted, 1) * 1e6,
        "redis": used["redis"] / max(accepted, 1) * 1e6,
    }
    rx_span = last_rx - first_rx
    sent_span = (campaign.last_sent or 0) - (campaign.first_sent or 0)
    return {
        "cid": cid,
        "workers": n_workers,
        "size": size,
        "state": campaign.state,
        "counters": {
            name: int(k.get(name, 0))
            for name in ("total", "sent", "gone", "rejected", "failed", "retried", "deferred", "skipped")
        },
        "simulator_accepted": accepted,
        "batches": campaign.batches,
        "rate": accepted / rx_span if rx_span > 0 else 0.0,
        "rate_campaign_hash": int(k.get("sent", 0)) / sent_span if sent_span > 0 else 0.0,
        "first_accepted_after_create_s": round(first_rx - created, 4),
        "last_accepted_after_create_s": round(last_rx - created, 4),
        "done_after_create_s": round((campaign.finished or 0) - created, 4),
        "receive_span_s": round(rx_span, 4),
        "worker_peak_rss_mb": [round(v / 2**20, 1) for v in peak.values()],
        "cpu_us_per_msg": {name: round(v, 1) for name, v in per_msg.items()},
        # What the stack would do with both cores to itself (others share this machine): CPU time, not wall.
        "cpu_bound_rate": round((os.cpu_count() or 1) * 1e6 / sum(per_msg.values())) if accepted else 0,
    }


def measure_planning(context: Context, size: int) -> dict[str, Any]:
    """Time ``Delivery.plan`` over the stored audience, enqueuing real RQ batch jobs (no worker runs them)."""
    from rq import Queue

    from workers.jobs import batch_enqueuer
    from workers.queues import SEND_QUEUE, queue

    delivery = Delivery(context)
    cid, _ = create_campaign(context, " (planning)")
    started = time.perf_counter()
    batches = delivery.plan(cid, batch_enqueuer(context.raw_redis, cid))
    elapsed = time.perf_counter() - started
    q: Queue = queue(SEND_QUEUE, context.raw_redis)
    queued = q.count
    campaign = CampaignStore(context.redis, context.keys).get(cid)
    return {
        "size": size,
        "batches": batches,
        "jobs_queued": queued,
        "total": campaign.counters["total"],
        "seconds": round(elapsed, 3),
        "subs_per_s": round(size / elapsed) if elapsed else 0,
        "batch_size": context.settings.batch_size,
    }
