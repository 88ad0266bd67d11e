"""Deliver encrypted messages to push services over pooled keep-alive HTTP, and classify each answer.

This is the one boundary that speaks HTTP to push services. Every answer is
turned here into one :class:`Outcome` kind:

=========  ===========================================  ==========================
kind       answers                                      what the caller does
=========  ===========================================  ==========================
sent       201, 202                                     count, record last success
gone       404, 410                                     delete the subscription (behind the service's
                                                        gone breaker: notifier.breakers)
rejected   400, 401, 403, 413, other 4xx, unsafe host   count, never retry; 400/401/403 count against
                                                        the subscription, or open the key breaker
retry      429, 503 (Retry-After), other 5xx, timeout,  retry later with backoff; ``failed`` when
           connection error                             attempts are exhausted; 429/503 hold the service
deferred   (not sent: the service is on hold)           same attempt, after the hold
=========  ===========================================  ==========================

Requests go over :class:`Http1Pool`, a lean keep-alive HTTP/1.1 client on asyncio
protocols (aiohttp's per-request machinery cost more CPU than the encryption; see
bench/README.md). Requests are never redirected (a redirect could point into a
private network) and every one has a timeout. A 429 (or a 503 with ``Retry-After``) holds back
further messages to that push service only, for the time it asked, in every worker
(:mod:`notifier.holds`).
"""

from __future__ import annotations

from notifier.sending.http1 import KEEPALIVE, MAX_RESPONSE, Http1Pool, ResponseError
from notifier.sending.outcomes import (
    CONFIG_STATUSES,
    RETRY_AFTER_MAX,
    Outcome,
    OutcomeKind,
    classify,
    is_config_status,
    parse_retry_after,
)
from notifier.sending.port import PushSender
from notifier.sending.resolver import SafeResolver
from notifier.sending.sender import Message, Sender, origin_of

__all__ = [
    "CONFIG_STATUSES",
    "KEEPALIVE",
    "MAX_RESPONSE",
    "RETRY_AFTER_MAX",
    "Http1Pool",
    "Message",
    "Outcome",
    "OutcomeKind",
    "PushSender",
    "ResponseError",
    "SafeResolver",
    "Sender",
    "classify",
    "is_config_status",
    "origin_of",
    "parse_retry_after",
]
