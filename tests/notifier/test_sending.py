"""Outcome classification at the HTTP boundary, and Retry-After parsing."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from notifier.sending import classify, parse_retry_after


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (201, "sent"),
        (202, "sent"),
        (404, "gone"),
        (410, "gone"),
        (413, "rejected"),
        (400, "rejected"),
        (401, "rejected"),
        (403, "rejected"),
        (429, "retry"),
        (503, "retry"),
        (500, "retry"),
        (502, "retry"),
    ],
)
def test_classify(status: int, kind: str) -> None:
    assert classify(status)[0] == kind


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    now = 1_800_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert classify(429, "3") == ("retry", 3.0)
