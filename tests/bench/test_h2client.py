"""The HTTP/2 client micro-benchmark runs, and every stream it opens is answered (no timing asserted)."""

from __future__ import annotations

from bench.h2client import run


def test_every_stream_is_answered_once() -> None:
    result = run(300)  # five bursts of streams, each answered in one read
    assert result["streams"] == result["answers"] == 300
    assert result["us_per_stream"] > 0
