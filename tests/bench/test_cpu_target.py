"""The sender-CPU target: the workers' CPU per message over the encryption-only CPU per message, <= 1.25x."""

from __future__ import annotations

from typing import Any

from bench.runner import Options, evaluate


def _result(sender_cpu: float, encrypt_cpu: float) -> dict[str, Any]:
    def baseline(mode: str, procs: int, rate: float, cpu: float) -> dict[str, Any]:
        return {"mode": mode, "procs": procs, "ok": 1000, "rate": rate, "cpu_us_per_msg": cpu}

    campaign = {
        "size": 100_000,
        "workers": 2,
        "rate": 6000.0,
        "first_accepted_after_create_s": 0.1,
        "worker_peak_rss_mb": [80.0, 80.0],
        "cpu_us_per_msg": {"workers": sender_cpu, "simulator": 30.0, "redis": 3.0},
    }
    return {
        "http": {
            "baselines": {
                "naive_1p": baseline("naive", 1, 400.0, 2000.0),
                "async_1p": baseline("async", 1, 1300.0, 700.0),
                "encrypt_1p": baseline("encrypt", 1, 10_000.0, encrypt_cpu),
            },
            "campaigns": [campaign],
        }
    }


def test_sender_cpu_over_encrypt_only_cpu_is_a_target() -> None:
    name = "sender CPU/msg vs encrypt-only CPU/msg"
    ratios, targets = evaluate(_result(120.0, 100.0), Options(sizes=(100_000,), worker_counts=(2,)))
    assert ratios["cpu_sender_over_encrypt"] == 1.2
    assert targets[name] == {"value": 1.2, "goal": "<= 1.25x", "met": True}
    ratios, targets = evaluate(_result(166.0, 100.0), Options(sizes=(100_000,), worker_counts=(2,)))
    assert targets[name] == {"value": 1.66, "goal": "<= 1.25x", "met": False}
