"""The --million section: a small version runs end to end with exact counters; its arithmetic, targets, table."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench import fanout, million
from bench.runner import Bars, Options, _baseline_inputs, evaluate, markdown
from bench.stack import SimulatorProcess, bench_redis, write_vapid_key

SIZE = 2500
REFERENCE = 500


def test_a_small_million_section_runs_create_to_done_with_exact_counters(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # As with a million: the campaign is larger than the receive times the simulator keeps (the latest).
    monkeypatch.setattr(fanout, "SIMULATOR_KEEPS", 1000)
    work = Path(tempfile.mkdtemp(prefix="notifier-million-test-"))
    logs = work / "logs"
    logs.mkdir()
    server = bench_redis(work / "redis")
    server.start()
    sims: list[SimulatorProcess] = []
    try:
        section = million.run_section(
            million.MillionOptions(size=SIZE, reference=REFERENCE),
            Bars(None),
            server,
            write_vapid_key(work),
            work,
            logs,
            sims,
            0.02,
            1000,
            _baseline_inputs,
        )
    finally:
        for sim in sims:
            sim.stop()
        server.stop()
    assert not sims  # the section stopped its simulator
    for part, size in ((section["campaign"], SIZE), (section["reference"], REFERENCE)):
        k = part["counters"]
        assert part["state"] == "done" and k["total"] == k["sent"] == part["simulator_accepted"] == size, k
        assert k["failed"] == k["rejected"] == k["gone"] == k["retried"] == k["skipped"] == 0, k
        assert len(part["worker_peak_rss_mb"]) == 2 and all(mb > 10 for mb in part["worker_peak_rss_mb"])
    big = section["campaign"]
    # Its first receive time is the first message's, not the first of the latest 1,000 kept.
    assert 0 < big["first_accepted_after_create_s"] < 0.4 * big["last_accepted_after_create_s"], big
    enc = section["encrypt_only"]
    assert enc["procs"] == 2 and enc["ok"] == SIZE and enc["errors"] == 0 and enc["seconds"] > 0
    assert section["campaign_seconds"] == section["campaign"]["done_after_create_s"] > 0
    assert section["time_over_encrypt_only"] == round(section["campaign_seconds"] / enc["seconds"], 3)
    assert section["cpu_floor"] > section["sender_cpu_over_encrypt_cpu"] > 0
    assert section["worker_rss_growth"] > 0
    assert 0 < section["redis_used_memory_mb"] <= section["redis_used_memory_peak_mb"]
    assert 100 < section["redis_bytes_per_sub"] < 2000 and section["redis_rss_peak_mb"] > 0
    stats = section["simulator_stats"]
    assert stats["by_status"] == {"201": SIZE + REFERENCE} and stats["decrypt_failed"] == 0


def _section(seconds: float, encrypt_seconds: float, rss: float, ref_rss: float) -> dict[str, Any]:
    def campaign(size: int, peak: float) -> dict[str, Any]:
        return {
            "size": size,
            "counters": {"total": size, "sent": size},
            "simulator_accepted": size,
            "batches": size // 1000,
            "first_accepted_after_create_s": 0.1,
            "done_after_create_s": seconds,
            "cpu_us_per_msg": {"workers": 150.0, "simulator": 30.0, "redis": 4.0},
            "worker_peak_rss_mb": [peak, peak - 2],
        }

    section: dict[str, Any] = {
        "size": 1_000_000,
        "workers": 2,
        "encrypt_procs": 2,
        "verify_fraction": 0.02,
        "campaign": campaign(1_000_000, rss),
        "reference": campaign(10_000, ref_rss),
        "encrypt_only": {"seconds": encrypt_seconds, "cpu_us_per_msg": 100.0, "procs": 2},
        "redis_used_memory_mb": 400.0,
        "redis_bytes_per_sub": 380.0,
        "redis_used_memory_peak_mb": 450.0,
        "redis_rss_peak_mb": 500.0,
        "store_seconds": 90.0,
    }
    million.summarise(section)
    return section


def test_summary_targets_and_table() -> None:
    section = _section(seconds=120.0, encrypt_seconds=100.0, rss=88.0, ref_rss=80.0)
    assert section["time_over_encrypt_only"] == 1.2
    assert section["cpu_floor"] == 1.84 and section["sender_cpu_over_encrypt_cpu"] == 1.5
    assert section["worker_rss_growth"] == 1.1 and section["campaign_rate"] == round(1_000_000 / 120)

    result: dict[str, Any] = {"million": section}
    _, targets = evaluate(result, Options())
    time_target = targets["1,000,000 campaign x2w, create to done, vs encrypt-only x2p time"]
    assert time_target == {"value": 1.2, "goal": "<= 1.3x", "met": True}
    assert targets["worker RSS flat (1,000,000 vs 10,000)"] == {"value": 1.1, "goal": "<= 1.1x", "met": True}

    slow = _section(seconds=190.0, encrypt_seconds=100.0, rss=100.0, ref_rss=80.0)
    _, missed = evaluate({"million": slow}, Options())
    assert not missed["1,000,000 campaign x2w, create to done, vs encrypt-only x2p time"]["met"]
    assert not missed["worker RSS flat (1,000,000 vs 10,000)"]["met"]

    lines = million.markdown(section)
    text = "\n".join(lines)
    assert "create to done **120.0 s**" in text and "**1.2x**" in text and "**1.1x**" in text
    result.update(
        started="2026-12-01T00:00:00Z",
        elapsed_s=1.0,
        machine={"nproc": 2, "cpu_model": "x", "python": "3.11", "loadavg_at_start": [0.0, 0.0, 0.0]},
        targets=targets,
    )
    table = markdown(result)
    assert lines[1] in table and "| worker RSS flat (1,000,000 vs 10,000) | 1.1 | <= 1.1x | yes |" in table
