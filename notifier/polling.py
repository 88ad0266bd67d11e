"""Waiting for something to become true: the one polling loop of the service, the benchmark and the tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str = "condition",
    *,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something truthy, and return that.

    Raises :class:`TimeoutError` naming ``message`` after ``timeout`` seconds. ``sleep`` waits between
    calls (a browser test passes one that lets the browser's events run meanwhile).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {message}")
        sleep(interval)
