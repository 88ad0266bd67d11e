"""The latency section's arithmetic: ratios to the same scheme's 0 ms, HTTPS over HTTP, targets, table."""

from __future__ import annotations

from typing import Any

from bench import latency
from bench.runner import Options, evaluate, markdown


def _run(ms: int, rate: float) -> dict[str, Any]:
    return {
        "latency_ms": ms,
        "rate": rate,
        "rate_received": rate * 1.1,
        "h2_streams": 0,
        "h2_connections": 0,
        "counters": {"total": 1000, "sent": 1000},
        "simulator_accepted": 1000,
        "state": "done",
        "batches": 1,
        "first_accepted_after_create_s": 0.1,
        "last_accepted_after_create_s": 0.5,
        "done_after_create_s": 0.6,
        "cpu_us_per_msg": {"workers": 200.0, "simulator": 30.0, "redis": 5.0},
        "cpu_bound_rate": 8511,
        "worker_peak_rss_mb": [100.0, 100.0],
    }


def _section() -> dict[str, Any]:
    return {
        "size": 100_000,
        "workers": 2,
        "latencies_ms": [0, 20, 60, 150],
        "tail_fraction": 0.05,
        "tail_factor": 8,
        "schemes": {
            "http": {"runs": [_run(0, 6000), _run(20, 5900), _run(60, 5000), _run(150, 4300)]},
            "https": {"runs": [_run(0, 5500), _run(20, 5400), _run(60, 5300), _run(150, 3000)]},
        },
    }


def test_ratios_are_to_the_same_schemes_zero_latency() -> None:
    section = _section()
    ratios = latency.ratios(section)
    assert ratios["latency_http_60ms_over_0ms"] == round(5000 / 6000, 3)
    assert ratios["latency_https_150ms_over_0ms"] == round(3000 / 5500, 3)
    assert ratios["latency_https_0ms_over_http_0ms"] == round(5500 / 6000, 3)
    assert "latency_http_0ms_over_0ms" not in ratios
    assert [run["ratio_to_zero"] for run in section["schemes"]["http"]["runs"]] == [1.0, 0.983, 0.833, 0.717]


def test_targets_and_table_in_the_whole_result() -> None:
    result: dict[str, Any] = {
        "started": "2026-12-01T00:00:00Z",
        "elapsed_s": 1.0,
        "machine": {"nproc": 2, "cpu_model": "x", "python": "3.11", "loadavg_at_start": [1.0, 1.0, 1.0]},
        "latency": _section(),
    }
    result["ratios"], result["targets"] = evaluate(result, Options())
    verdicts = {name: (t["value"], t["met"]) for name, t in result["targets"].items()}
    assert verdicts == {
        "http 60 ms (5 % at 8x) vs 0 ms, 100,000 x2w": (0.833, False),
        "http 150 ms (5 % at 8x) vs 0 ms, 100,000 x2w": (0.717, True),
        "https 60 ms (5 % at 8x) vs 0 ms, 100,000 x2w": (0.964, True),
        "https 150 ms (5 % at 8x) vs 0 ms, 100,000 x2w": (0.545, False),
        "https (HTTP/2) vs http at 0 ms, latency section": (0.917, True),
    }
    table = markdown(result)
    assert (
        "| http | 60 | 480 | 5,000 | 0.833 | 5,500 | 0 | 1,000 / 1,000 | 0.1 / 0.6 | 200.0 (+ 30.0 + 5.0); 8,511/s |"
        in table
    )
    assert "| https | 0 |  | 5,500 | 1.0 |" in table


def test_the_rule_holds_the_tail_at_its_factor() -> None:
    assert latency.rule(60, 0.05, 8) == {
        "status": "latency",
        "seconds": 0.06,
        "tail_fraction": 0.05,
        "tail_seconds": 0.48,
    }
    assert latency.rule(20, 0.0, 8) == {"status": "latency", "seconds": 0.02}


def test_bad_latency_options_are_refused_before_anything_runs() -> None:
    from click.testing import CliRunner

    from notifier_cli import main

    for args, said in (
        (["--latency-schemes", "ftp"], "expected http and/or https"),
        (["--latency-ms", "20,x"], "comma-separated milliseconds"),
        (["--latency-ms", "-5"], "between 0 and 7500 ms"),
        (["--latency-ms", "7000", "--latency-tail-factor", "10"], "under 60 s"),
    ):
        outcome = CliRunner().invoke(main, ["bench", "--no-readme", *args])
        assert outcome.exit_code == 2 and said in outcome.output, (args, outcome.output)
