"""Sizing runs behind the table in docs/deployment.md: Redis memory, planning time and sender CPU, measured.

    .venv/bin/python -m bench.sizing --sizes 100000,1000000 --workers 2

For each size, on a fresh private Redis with its defaults (``deploy/redis.conf`` tunes nothing that bears on
memory; no persistence, which would measure the disk), with the push service simulator as its own process:

1. **Memory.** The audience is minted by the simulator and stored with the subscribe API's validation and
   upsert script, pipelined; ``used_memory`` (less client and AOF buffers) before and after, and the server's
   RSS (what the host must hold, fragmentation included).
2. **Planning.** ``Delivery.plan`` into real RQ batch jobs (nobody runs them), timed; the memory the queued
   jobs hold (their ids lists) until workers take them.
3. **Sending.** One campaign to everyone through ``notifier worker`` processes: CPU time (user + system,
   psutil) of the workers, of Redis and of the simulator per accepted message. CPU time, unlike wall time,
   hardly depends on the other engineers sharing the machine; wall time is recorded too.

Counts are exact (every campaign ends ``done`` with sent = total = accepted by the simulator, checked here).
The JSON goes to ``bench/results/sizing.json``; ``--table`` prints the docs table from a result file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.audience import store_pipelined, stored_bytes
from bench.fanout import measure_planning, run_campaign
from bench.runner import machine
from bench.stack import ROOT, SimulatorProcess, bench_redis, stack_env, write_vapid_key
from notifier.campaigns import CampaignStore
from notifier.context import Context
from notifier.settings import Settings
from workers.queues import SEND_QUEUE, queue

OUTPUT = ROOT / "bench" / "results" / "sizing.json"


def _log(message: str) -> None:
    print(f"[sizing {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure_size(size: int, workers: int, work: Path) -> dict[str, Any]:
    """One size: store, plan, send; every figure of it."""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    server = bench_redis(work / f"redis-{size}")
    server.start()
    assert server.process is not None
    redis_proc = psutil.Process(server.process.pid)
    sim = SimulatorProcess(logs, verify_fraction=0.02).start()
    try:
        env = stack_env(server.url, write_vapid_key(work), work / "data", sim)
        context = Context.build(Settings.from_env(env))
        r = server.client()
        before, rss_before = stored_bytes(r), redis_proc.memory_info().rss
        started = time.perf_counter()
        stored = 0
        while stored < size:  # minted and stored 10,000 at a time: the run never holds the whole audience
            part = sim.mint(min(10_000, size - stored))
            store_pipelined(context, part, lambda n: None)
            stored += len(part)
            if stored % 100_000 == 0:
                _log(f"{size:,}: stored {stored:,}")
        fill_s = time.perf_counter() - started
        audience_bytes = stored_bytes(r) - before
        rss_audience = redis_proc.memory_info().rss - rss_before
        _log(f"{size:,}: {audience_bytes / size:.1f} bytes per subscriber; planning")

        plan = measure_planning(context, size)
        queued_bytes = stored_bytes(r) - before - audience_bytes
        planning_cid = CampaignStore(context.redis, context.keys).list(0, 1)[0].cid
        queue(SEND_QUEUE, context.raw_redis).empty()
        CampaignStore(context.redis, context.keys).cancel(planning_cid)
        _log(f"{size:,}: planned in {plan['seconds']} s; sending with {workers} worker(s)")

        campaign = run_campaign(
            context, sim, env, logs, n_workers=workers, size=size, tag=f"sizing-{size}",
            redis_pid=server.process.pid, progress=lambda done, total: None, timeout=3600,
        )  # fmt: skip
        k = campaign["counters"]
        exact = k["sent"] == k["total"] == size == campaign["simulator_accepted"]
        if campaign["state"] != "done" or not exact:
            raise RuntimeError(f"campaign not exact: {campaign}")
        _log(f"{size:,}: sent; workers {campaign['cpu_us_per_msg']['workers']} µs/msg")
        return {
            "size": size,
            "workers": workers,
            "fill_seconds": round(fill_s, 1),
            "redis_bytes_per_sub": round(audience_bytes / size, 1),
            "redis_used_memory_mb": round((audience_bytes + before) / 2**20, 1),
            "redis_rss_per_sub": round(rss_audience / size, 1),
            "planning_seconds": plan["seconds"],
            "planning_batches": plan["batches"],
            "planning_subs_per_second": round(size / plan["seconds"]),
            "queued_job_bytes_per_sub": round(queued_bytes / size, 1),
            "campaign": campaign,
        }
    finally:
        sim.stop()
        server.stop()


def table(results: list[dict[str, Any]]) -> str:
    """The docs/deployment.md sizing table, extrapolated linearly from the largest measured run.

    Memory, planning and Redis CPU come from the largest run; worker CPU per message, which does not
    depend on the audience's size, is the median of every run.
    """
    by_size = {item["size"]: item for item in results}
    base = by_size[max(by_size)]
    per_sub = base["redis_bytes_per_sub"]
    rss_per_sub = max(base["redis_rss_per_sub"], per_sub)
    queued = base["queued_job_bytes_per_sub"]
    plan_rate = base["planning_subs_per_second"]
    worker_us = statistics.median(item["campaign"]["cpu_us_per_msg"]["workers"] for item in results)
    # Redis's CPU per message grows with the data (3.6 µs at 1 M, 1.9 at 100,000): the largest run's.
    redis_us = base["campaign"]["cpu_us_per_msg"]["redis"]
    lines = [
        "| subscribers | Redis memory (data; host RSS) | + queued batch jobs while planned | planning "
        "(one job) | send CPU (worker core-seconds) | Redis CPU per campaign |",
        "|---|---|---|---|---|---|",
    ]
    for n in (1_000_000, 10_000_000, 50_000_000):
        lines.append(
            f"| {n / 1e6:,.0f} M | {per_sub * n / 2**30:.2f} GiB; {rss_per_sub * n / 2**30:.2f} GiB "
            f"| {queued * n / 2**20:,.0f} MiB | {n / plan_rate:,.1f} s | {worker_us * n / 1e6:,.0f} "
            f"| {redis_us * n / 1e6:,.0f} s |"
        )
    target = 10_000_000 / 60
    cores = math.ceil(target * worker_us / 1e6)
    lines.append("")
    lines.append(
        f"10 M readers in 60 s = {target:,.0f} messages/s: at {worker_us:.0f} µs of worker CPU per message "
        f"({1e6 / worker_us:,.0f} messages/s per worker core) that is **{cores} worker cores** (+1 core "
        f"for the planning job for {10_000_000 / plan_rate:.0f} s), and Redis at "
        f"{target * redis_us / 1e6:.2f} of its one core."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the sizes given and write the JSON; or print the table of an earlier result (``--table``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--table", type=Path, default=None, help="print the table of this result file")
    args = parser.parse_args(argv)
    if args.table is not None:
        print(table(json.loads(args.table.read_text())["runs"]))
        return 0
    work = Path(tempfile.mkdtemp(prefix="notifier-sizing-"))
    load = os.getloadavg()
    result: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "load_at_start": [round(x, 2) for x in load],
        "runs": [],
    }
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            run = measure_size(size, args.workers, work)
            run["load_after"] = [round(x, 2) for x in os.getloadavg()]
            result["runs"].append(run)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result["runs"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
