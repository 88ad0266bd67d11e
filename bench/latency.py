"""The latency section: one campaign at several push-service latencies, over HTTP/1.1 and HTTPS (HTTP/2).

Real push services answer in tens of milliseconds, a few per cent in several hundred;
the simulator on loopback answers in microseconds. Here the simulator holds each
answer by a latency rule (``POST /_sim/rules``: ``seconds``, and ``tail_fraction`` of
the answers held ``tail_factor`` times as long), and the same campaign (same audience,
same workers) runs at each latency. A rate is divided by the zero-latency rate of the
same scheme in the same run; HTTPS (the simulator's ``--tls``, HTTP/2 by ALPN) is
divided by plain HTTP at zero latency.

The rate here counts the whole campaign as a publisher sees it: accepted messages from
the first one the service received to the campaign's end (its last answer recorded),
so a batch tail that waits for its slowest answers shows in it. The receive-time rate
of the main table (first to last message received) is kept beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.audience import store_pipelined
from bench.fanout import run_campaign
from bench.stack import Bars, SimulatorProcess, stack_env
from notifier.context import Context
from notifier.redis_conn import EmbeddedRedis
from notifier.settings import Settings

#: Latencies of the section (ms), the first one 0: the baseline of every ratio.
LATENCIES_MS = (0, 20, 60, 150)
#: Share of answers in the tail, and how many times the latency they take.
TAIL_FRACTION = 0.05
TAIL_FACTOR = 8


@dataclass(frozen=True)
class LatencyOptions:
    """What the latency section runs (``size`` 0: skip it)."""

    size: int = 100_000
    workers: int = 2
    latencies_ms: tuple[int, ...] = LATENCIES_MS
    tail_fraction: float = TAIL_FRACTION
    tail_factor: float = TAIL_FACTOR
    #: "http" (HTTP/1.1 keep-alive), "https" (TLS, HTTP/2 by ALPN): the schemes, in this order.
    schemes: tuple[str, ...] = ("http", "https")


def rule(latency_ms: float, tail_fraction: float, tail_factor: float) -> dict[str, Any]:
    """The simulator's latency rule for ``latency_ms`` with its tail (every push matches)."""
    seconds = latency_ms / 1000
    out: dict[str, Any] = {"status": "latency", "seconds": seconds}
    if tail_fraction:
        out |= {"tail_fraction": tail_fraction, "tail_seconds": seconds * tail_factor}
    return out


def run_section(
    options: LatencyOptions,
    bars: Bars,
    redis_server: EmbeddedRedis,
    key_file: Path,
    work: Path,
    logs: Path,
    sims: list[SimulatorProcess],
    verify_fraction: float,
    mint_chunk: int,
) -> dict[str, Any]:
    """Every scheme at every latency; the result's ``latency`` part (ratios are made by :func:`ratios`)."""
    latencies = sorted(set(options.latencies_ms) | {0})
    out: dict[str, Any] = {
        "size": options.size,
        "workers": options.workers,
        "latencies_ms": latencies,
        "tail_fraction": options.tail_fraction,
        "tail_factor": options.tail_factor,
        "rate_is": "accepted / (campaign done - first message received)",
        "schemes": {},
    }
    for scheme in options.schemes:
        out["schemes"][scheme] = _scheme(
            options,
            latencies,
            bars,
            redis_server,
            key_file,
            work,
            logs,
            sims,
            verify_fraction,
            mint_chunk,
            tls=scheme == "https",
        )
    return out


def _scheme(
    options: LatencyOptions,
    latencies: list[int],
    bars: Bars,
    redis_server: EmbeddedRedis,
    key_file: Path,
    work: Path,
    logs: Path,
    sims: list[SimulatorProcess],
    verify_fraction: float,
    mint_chunk: int,
    *,
    tls: bool,
) -> dict[str, Any]:
    scheme = "https" if tls else "http"
    redis_server.client().flushall()
    sim = SimulatorProcess(logs, tls=tls, verify_fraction=verify_fraction, name=f"latency-{scheme}").start()
    sims.append(sim)
    try:
        env = stack_env(redis_server.url, key_file, work / "data", sim)
        context = Context.build(Settings.from_env(env))
        size = options.size
        with bars.counter(f"latency {scheme}: mint + store {size:,}", size) as advance:
            for chunk in _chunks(size, mint_chunk * 10):
                store_pipelined(context, sim.mint(chunk, chunk=mint_chunk), lambda n: None)
                advance(chunk)
        runs: list[dict[str, Any]] = []
        for ms in latencies:
            sim.clear_rules()
            if ms:
                sim.add_rule(rule(ms, options.tail_fraction, options.tail_factor))
            before = sim.stats()
            tag = f"latency-{scheme}-{ms}ms"
            with bars.task(f"latency {scheme}: {ms} ms / {options.workers} worker(s)", size) as update:
                campaign = run_campaign(
                    context,
                    sim,
                    env,
                    logs,
                    n_workers=options.workers,
                    size=size,
                    tag=tag,
                    redis_pid=redis_server.process.pid if redis_server.process else 0,
                    progress=update,
                )
            after = sim.stats()
            runs.append(_entry(ms, campaign, before, after))
        sim.clear_rules()
        stats = sim.stats()
        return {
            "runs": runs,
            "simulator_stats": {k: v for k, v in stats.items() if k != "rules"},
        }
    finally:
        sim.stop()
        sims.remove(sim)


def _chunks(total: int, step: int) -> Iterator[int]:
    done = 0
    while done < total:
        n = min(step, total - done)
        yield n
        done += n


def _entry(
    ms: int, campaign: dict[str, Any], before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    """One campaign at one latency: the rate to its end, beside the main table's figures."""
    span = campaign["done_after_create_s"] - campaign["first_accepted_after_create_s"]
    accepted = campaign["simulator_accepted"]
    return {
        "latency_ms": ms,
        "rate": round(accepted / span, 1) if span > 0 else 0.0,
        "rate_received": round(campaign["rate"], 1),
        "h2_streams": after["h2_streams"] - before["h2_streams"],
        "h2_connections": after["h2_connections"] - before["h2_connections"],
        **{
            name: campaign[name]
            for name in (
                "counters",
                "simulator_accepted",
                "state",
                "batches",
                "first_accepted_after_create_s",
                "last_accepted_after_create_s",
                "done_after_create_s",
                "cpu_us_per_msg",
                "cpu_bound_rate",
                "worker_peak_rss_mb",
            )
        },
    }


def ratios(section: dict[str, Any]) -> dict[str, float]:
    """Each latency's rate over the same scheme's zero-latency rate; HTTPS over HTTP at zero latency."""
    out: dict[str, float] = {}
    zero: dict[str, float] = {}
    for scheme, part in section.get("schemes", {}).items():
        by_ms = {run["latency_ms"]: run for run in part["runs"]}
        base = by_ms.get(0, {}).get("rate", 0.0)
        zero[scheme] = base
        for ms, run in by_ms.items():
            if ms:
                run["ratio_to_zero"] = out[f"latency_{scheme}_{ms}ms_over_0ms"] = _ratio(run["rate"], base)
            else:
                run["ratio_to_zero"] = 1.0
    if zero.get("http") and "https" in zero:
        out["latency_https_0ms_over_http_0ms"] = _ratio(zero["https"], zero["http"])
    return out


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def targets(section: dict[str, Any], target: Callable[[str, float, str, bool], None]) -> None:
    """The issue's goals: 60 ms (tail 8x) >= 0.85 and 150 ms >= 0.7 of 0 ms; HTTPS/h2 >= 0.9 of HTTP."""
    tail = f"{section['tail_fraction'] * 100:g} % at {section['tail_factor']:g}x"
    for scheme, part in section.get("schemes", {}).items():
        for run in part["runs"]:
            goal = {60: 0.85, 150: 0.7}.get(run["latency_ms"])
            if goal is None or "ratio_to_zero" not in run:
                continue
            value = run["ratio_to_zero"]
            audience = f"{section['size']:,} x{section['workers']}w"
            target(
                f"{scheme} {run['latency_ms']} ms ({tail}) vs 0 ms, {audience}",
                value,
                f">= {goal}",
                value >= goal,
            )
    schemes = section.get("schemes", {})
    if "http" in schemes and "https" in schemes:
        value = _ratio(_zero_rate(schemes["https"]), _zero_rate(schemes["http"]))
        target("https (HTTP/2) vs http at 0 ms, latency section", value, ">= 0.9", value >= 0.9)


def _cpu(run: dict[str, Any]) -> str:
    cpu = run["cpu_us_per_msg"]
    return f"{cpu['workers']} (+ {cpu['simulator']} + {cpu['redis']}); {run.get('cpu_bound_rate', 0):,}/s"


def _zero_rate(part: dict[str, Any]) -> float:
    return next((run["rate"] for run in part["runs"] if run["latency_ms"] == 0), 0.0)


def markdown(section: dict[str, Any]) -> list[str]:
    """The latency table's lines (one row per scheme and latency)."""
    tail = f"{section['tail_fraction'] * 100:g} % of answers at {section['tail_factor']:g}x the latency"
    lines = [
        "",
        f"Latency section: the same {section['size']:,}-subscriber campaign, {section['workers']} workers, "
        f"the simulator holding each answer the latency ({tail}); rate = accepted messages from the first "
        "received to the campaign's end (last answer recorded).",
        "",
        "| scheme | latency (ms) | tail (ms) | msg/s | x 0 ms | msg/s by receive times | HTTP/2 streams "
        "| sent / total | first accepted / done after create (s) "
        "| CPU µs/msg: sender (+ simulator + redis); idle-machine bound |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scheme, part in section.get("schemes", {}).items():
        for run in part["runs"]:
            ms = run["latency_ms"]
            k = run["counters"]
            tail_ms = f"{ms * section['tail_factor']:g}" if ms and section["tail_fraction"] else ""
            lines.append(
                f"| {scheme} | {ms} | {tail_ms} | {run['rate']:,.0f} | {run.get('ratio_to_zero', '')} "
                f"| {run['rate_received']:,.0f} | {run['h2_streams']:,} | {k['sent']:,} / {k['total']:,} "
                f"| {run['first_accepted_after_create_s']} / {run['done_after_create_s']} "
                f"| {_cpu(run)} |"
            )
    return lines
