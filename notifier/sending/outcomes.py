"""What a push service's answer means: one :class:`Outcome` per message, classified once, here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum

#: Longest wait we accept from a Retry-After header before treating the message as failed.
RETRY_AFTER_MAX = 3600.0
#: Statuses that mean the push service refused our credentials or request (VAPID key or subject), not the
#: subscriber: counted as ``rejected``, never held against the subscription, and raised to ops.
CONFIG_STATUSES = frozenset({400, 401, 403})


class OutcomeKind(StrEnum):
    """What became of one message. A ``StrEnum``: equal to its value, the name counted in Redis."""

    SENT = "sent"  # 201/202
    GONE = "gone"  # 404/410: the subscription is dead, delete it
    REJECTED = "rejected"  # other 4xx, an unsafe host, unencryptable keys: never retried
    RETRY = "retry"  # 429/503 (Retry-After), other 5xx, a timeout, a connection error
    DEFERRED = "deferred"  # held back locally while its push service rate-limits us: never sent
    FAILED = "failed"  # a retry with its attempts used up, or an alert that outlived its TTL

    @property
    def retryable(self) -> bool:
        """True for the kinds a later attempt can change (``retry``, ``deferred``)."""
        return self in (OutcomeKind.RETRY, OutcomeKind.DEFERRED)


def is_config_status(status: int | str) -> bool:
    """True for a status (an int, or as Redis stores it, a string) in :data:`CONFIG_STATUSES`."""
    if isinstance(status, str):
        return status.isdigit() and int(status) in CONFIG_STATUSES
    return status in CONFIG_STATUSES


@dataclass(slots=True)
class Outcome:
    """What became of one message."""

    sid: str
    kind: OutcomeKind
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


def classify(status: int, retry_after: str | None = None) -> tuple[OutcomeKind, float | None]:
    """The outcome kind of a push service's HTTP status (and its Retry-After, when it matters)."""
    if status in (200, 201, 202):
        return OutcomeKind.SENT, None
    if status in (404, 410):
        return OutcomeKind.GONE, None
    if status in (429, 503):
        return OutcomeKind.RETRY, parse_retry_after(retry_after)
    if status >= 500:
        return OutcomeKind.RETRY, None
    return OutcomeKind.REJECTED, None
