"""A worker raises its open-file limit to what NOTIFIER_CONCURRENCY connections in flight need."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

PROBE = (
    "import logging, resource; from workers.worker import raise_open_files; "
    "logging.basicConfig(level=logging.WARNING, format='%(message)s'); "
    "print(raise_open_files(1000, logging.getLogger('t')), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
)


def _run(soft: int, hard: int) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return subprocess.run(
        [sys.executable, "-c", PROBE],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def _hard() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 20 if hard == resource.RLIM_INFINITY else hard


@pytest.mark.skipif(_hard() < 1256, reason="the hard open-file limit here is below what the probe asks")
def test_the_soft_limit_is_raised_to_concurrency_plus_spare() -> None:
    done = _run(512, _hard())
    assert done.stdout.split() == ["1256", "1256"], done
    assert done.stderr == ""


def test_a_hard_limit_too_low_is_used_whole_and_said() -> None:
    done = _run(300, 600)
    assert done.stdout.split() == ["600", "600"], done
    assert "open-file limit 600 is below NOTIFIER_CONCURRENCY + 256 = 1256" in done.stderr


def test_a_higher_soft_limit_is_left_alone() -> None:
    done = _run(min(4096, _hard()), _hard())
    if min(4096, _hard()) >= 1256:
        assert done.stdout.split() == [str(min(4096, _hard()))] * 2
