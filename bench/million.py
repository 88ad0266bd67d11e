"""The million: one whole 1,000,000-subscriber campaign on this machine, create to done (``--million``).

Beside planning a million (the main run's planning phase), this sends to a million, through the
same stack as every other campaign of the benchmark: a private Redis, the push service simulator as
its own process (plain HTTP, verifying the same share of messages), ``notifier worker`` processes
started fresh and idle. In order:

1. **Reference.** The first 10,000 subscribers are minted and stored, and a 10,000 campaign runs on
   the same workers' settings: the worker RSS the million's is compared with (flat: at most 1.1x).
2. **Audience.** The rest is minted by the simulator and stored with the subscribe API's validation
   and upsert script, pipelined, 10,000 at a time (the run never holds the whole audience); Redis's
   ``used_memory`` (less client buffers) before and after gives the bytes per subscriber.
3. **Encryption only.** ``notifier.crypto.encrypt`` alone in 2 processes for as many messages as the
   campaign sends: the physical bound of the same two cores, in time.
4. **The campaign.** Create + launch to ``done``, with a progress bar; worker RSS sampled every 0.1 s,
   Redis's ``used_memory`` and RSS every 0.5 s; the counters must be exact.

The time ratio (campaign create to done over the encryption-only time) includes everything the
campaign does on the two cores that encryption alone does not: HTTP, Redis, RQ, and the simulator,
which decrypts 2 % and answers every request on the same cores. ``cpu_floor`` gives the least that
ratio can be from the CPU the run measured: (sender + simulator + Redis CPU per message) over the
encryption-only CPU per message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import redis

from bench.audience import store_pipelined, stored_bytes
from bench.baselines import measure
from bench.fanout import run_campaign
from bench.stack import Bars, SimulatorProcess, stack_env
from notifier.context import Context
from notifier.redis_conn import EmbeddedRedis
from notifier.settings import Settings

#: Subscribers minted and stored at a time.
STORE_CHUNK = 10_000
#: Subscriptions (and one real message payload) the encryption-only processes cycle through.
BASELINE_SUBS = 20_000
#: Goals: the campaign's time within 1.3x the 2-process encryption-only time; worker RSS within 1.1x.
TIME_GOAL = 1.3
RSS_GOAL = 1.1


@dataclass(frozen=True)
class MillionOptions:
    """What the million section runs (``size`` 0: skip it)."""

    size: int = 0
    reference: int = 10_000
    workers: int = 2
    encrypt_procs: int = 2
    timeout: float = 7200.0


BaselineInputs = Callable[[Context, list[dict[str, Any]], Path, Path], Path]


@dataclass
class _RedisSample:
    used_peak: int = 0
    rss_peak: int = 0


@contextmanager
def _sample_redis(r: redis.Redis, pid: int, every: float = 0.5) -> Iterator[_RedisSample]:
    """Redis's ``used_memory`` (less client buffers) and RSS, their peaks while the block runs."""
    sample = _RedisSample()
    stop = threading.Event()
    process = psutil.Process(pid) if pid else None

    def run() -> None:
        while True:
            try:
                sample.used_peak = max(sample.used_peak, stored_bytes(r))
                if process is not None:
                    sample.rss_peak = max(sample.rss_peak, process.memory_info().rss)
            except (redis.RedisError, psutil.Error):
                pass
            if stop.wait(every):
                return

    thread = threading.Thread(target=run, name="redis-memory-sampler", daemon=True)
    thread.start()
    try:
        yield sample
    finally:
        stop.set()
        thread.join()


def _mb(n: float) -> float:
    return round(n / 2**20, 1)


def run_section(
    options: MillionOptions,
    bars: Bars,
    redis_server: EmbeddedRedis,
    key_file: Path,
    work: Path,
    logs: Path,
    sims: list[SimulatorProcess],
    verify_fraction: float,
    mint_chunk: int,
    baseline_inputs: BaselineInputs,
) -> dict[str, Any]:
    """The reference campaign, the audience, encryption alone, the campaign; the result's ``million`` part."""
    size, reference = options.size, min(options.reference, options.size)
    r = redis_server.client()
    r.flushall()
    redis_pid = redis_server.process.pid if redis_server.process else 0
    sim = SimulatorProcess(logs, verify_fraction=verify_fraction, name="million").start()
    sims.append(sim)
    try:
        env = stack_env(redis_server.url, key_file, work / "data", sim)
        context = Context.build(Settings.from_env(env))
        out: dict[str, Any] = {
            "size": size,
            "workers": options.workers,
            "encrypt_procs": options.encrypt_procs,
            "verify_fraction": verify_fraction,
        }
        kept: list[dict[str, Any]] = []
        empty = stored_bytes(r)

        def store(count: int, label: str) -> None:
            with bars.counter(label, count) as advance:
                left = count
                while left:
                    part = sim.mint(min(STORE_CHUNK, left), chunk=mint_chunk)
                    if len(kept) < BASELINE_SUBS:
                        kept.extend(part[: BASELINE_SUBS - len(kept)])
                    store_pipelined(context, part, lambda n: None)
                    left -= len(part)
                    advance(len(part))

        store(reference, f"million: mint + store {reference:,} (reference)")
        out["reference"] = _campaign(
            context, sim, env, logs, bars, options, reference, f"million-ref-{reference}", redis_pid
        )

        started = time.monotonic()
        store(size - reference, f"million: mint + store {size - reference:,} more")
        out["store_seconds"] = round(time.monotonic() - started, 1)
        audience = stored_bytes(r) - empty
        out["redis_used_memory_mb"] = _mb(stored_bytes(r))
        out["redis_bytes_per_sub"] = round(audience / size, 1)

        inputs = baseline_inputs(context, kept, work / "baseline-million.json", key_file)
        with bars.task(f"million: encrypt-only x{options.encrypt_procs}, {size:,} messages", None):
            out["encrypt_only"] = measure(
                "encrypt", inputs, options.encrypt_procs, limit=size, seconds=options.timeout, env=env
            )

        with _sample_redis(r, redis_pid) as sample:
            campaign = _campaign(context, sim, env, logs, bars, options, size, f"million-{size}", redis_pid)
        out["campaign"] = campaign
        out["redis_used_memory_peak_mb"] = _mb(sample.used_peak)
        out["redis_rss_peak_mb"] = _mb(sample.rss_peak)
        out["simulator_stats"] = {k: v for k, v in sim.stats().items() if k != "rules"}
        summarise(out)
        return out
    finally:
        sim.stop()
        sims.remove(sim)


def _campaign(
    context: Context,
    sim: SimulatorProcess,
    env: dict[str, str],
    logs: Path,
    bars: Bars,
    options: MillionOptions,
    size: int,
    tag: str,
    redis_pid: int,
) -> dict[str, Any]:
    with bars.task(f"million: campaign {size:,} / {options.workers} worker(s)", size) as update:
        campaign = run_campaign(
            context,
            sim,
            env,
            logs,
            n_workers=options.workers,
            size=size,
            tag=tag,
            redis_pid=redis_pid,
            progress=update,
            timeout=options.timeout,
        )
    k = campaign["counters"]
    if campaign["state"] != "done" or not k["sent"] == k["total"] == size == campaign["simulator_accepted"]:
        raise RuntimeError(f"the {size:,} campaign is not exact: {campaign}")
    return campaign


def summarise(out: dict[str, Any]) -> None:
    """The section's figures from its measurements: time ratio, CPU floor of that ratio, RSS growth."""
    campaign, enc, ref = out["campaign"], out["encrypt_only"], out["reference"]
    took = campaign["done_after_create_s"]
    out["campaign_seconds"] = took
    out["campaign_rate"] = round(campaign["simulator_accepted"] / took) if took > 0 else 0
    out["encrypt_only_seconds"] = enc["seconds"]
    out["time_over_encrypt_only"] = round(took / enc["seconds"], 3) if enc["seconds"] else 0.0
    cpu = campaign["cpu_us_per_msg"]
    enc_cpu = enc.get("cpu_us_per_msg") or 0.0
    out["cpu_floor"] = round(sum(cpu.values()) / enc_cpu, 3) if enc_cpu else 0.0
    out["sender_cpu_over_encrypt_cpu"] = round(cpu["workers"] / enc_cpu, 3) if enc_cpu else 0.0
    peak, ref_peak = max(campaign["worker_peak_rss_mb"] or [0]), max(ref["worker_peak_rss_mb"] or [0])
    out["worker_peak_rss_mb"] = peak
    out["reference_worker_peak_rss_mb"] = ref_peak
    out["worker_rss_growth"] = round(peak / ref_peak, 3) if ref_peak else 0.0


def ratios(section: dict[str, Any]) -> dict[str, float]:
    """The section's ratios for the result's ``ratios``."""
    return {
        "million_time_over_encrypt_only": section["time_over_encrypt_only"],
        "million_cpu_floor_of_that": section["cpu_floor"],
        "million_worker_rss_over_reference": section["worker_rss_growth"],
    }


def targets(section: dict[str, Any], target: Callable[[str, float, str, bool], None]) -> None:
    """The issue's goals: create to done within 1.3x the 2-process encryption-only time; RSS flat (1.1x)."""
    size, workers = section["size"], section["workers"]
    value = section["time_over_encrypt_only"]
    target(
        f"{size:,} campaign x{workers}w, create to done, vs encrypt-only x{section['encrypt_procs']}p time",
        value,
        f"<= {TIME_GOAL}x",
        0 < value <= TIME_GOAL,
    )
    growth = section["worker_rss_growth"]
    target(
        f"worker RSS flat ({size:,} vs {section['reference']['size']:,})",
        growth,
        f"<= {RSS_GOAL}x",
        0 < growth <= RSS_GOAL,
    )


def markdown(section: dict[str, Any]) -> list[str]:
    """The section's lines under the main table."""
    s, c, enc, ref = section, section["campaign"], section["encrypt_only"], section["reference"]
    cpu, k = c["cpu_us_per_msg"], c["counters"]
    rss = ", ".join(map(str, c["worker_peak_rss_mb"]))
    ref_rss = ", ".join(map(str, ref["worker_peak_rss_mb"]))
    return [
        "",
        f"**{s['size']:,} subscribers, end to end** ({s['workers']} workers, plain HTTP, the simulator "
        f"verifying {s['verify_fraction'] * 100:g} %): create to done **{s['campaign_seconds']} s** "
        f"({s['campaign_rate']:,} msg/s; first accepted after {c['first_accepted_after_create_s']} s), "
        f"sent {k['sent']:,} of {k['total']:,} in {c['batches']:,} batches. Encryption alone for as many "
        f"messages in {s['encrypt_procs']} processes: {s['encrypt_only_seconds']} s "
        f"({enc['cpu_us_per_msg']} µs CPU/msg); the campaign took **{s['time_over_encrypt_only']}x** that "
        f"(the CPU floor of this ratio on the shared cores: {s['cpu_floor']}x = sender {cpu['workers']} + "
        f"simulator {cpu['simulator']} + Redis {cpu['redis']} µs/msg over {enc['cpu_us_per_msg']}).",
        f"Worker peak RSS {rss} MB against {ref_rss} MB for {ref['size']:,} (**{s['worker_rss_growth']}x**). "
        f"Redis: {s['redis_used_memory_mb']} MB used with the audience ({s['redis_bytes_per_sub']} bytes "
        f"per subscriber), peak {s['redis_used_memory_peak_mb']} MB used and {s['redis_rss_peak_mb']} MB "
        f"RSS during the campaign; the audience was minted and stored in {s['store_seconds']} s.",
    ]
