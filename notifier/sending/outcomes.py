"""What a push service's answer means: one :class:`Outcome` per message, classified once, here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

#: Longest wait we accept from a Retry-After header before treating the message as failed.
RETRY_AFTER_MAX = 3600.0
CONFIG_STATUSES = frozenset({400, 401, 403})


@dataclass(slots=True)
class Outcome:
    """What became of one message."""

    sid: str
    kind: str  # sent | gone | rejected | retry | deferred (held back locally, never sent)
    status: int = 0
    retry_after: float | None = None
    detail: str = ""
    latency: float = 0.0
    origin: str = ""
    at: float = 0.0  # wall-clock time the push service answered (0 when it never did)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, moment.timestamp() - now)


def classify(status: int, retry_after: str | None = None) -> tuple[str, float | None]:
    """The outcome kind of a push service's HTTP status (and its Retry-After, when it matters)."""
    if status in (200, 201, 202):
        return "sent", None
    if status in (404, 410):
        return "gone", None
    if status in (429, 503):
        return "retry", parse_retry_after(retry_after)
    if status >= 500:
        return "retry", None
    return "rejected", None
