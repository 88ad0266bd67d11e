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

Requests go over :class:`PushPool`: HTTP/2 (the sans-IO ``h2`` library on asyncio
protocols) where a push service negotiates ``h2`` by ALPN, a lean keep-alive HTTP/1.1
client otherwise (aiohttp's per-request machinery cost more CPU than the encryption; see
bench/README.md). Requests are never redirected (a redirect could point into a private
network), every address is checked at connect time, and every request has a timeout. How
many are in flight per origin is the sender's :class:`~notifier.sending.sender.Window`,
sized by Little's law from the answers' rate and latency. A 429 (or a 503 with
``Retry-After``) holds back further messages to that push service only, for the time it
asked, in every worker (:mod:`notifier.holds`).
"""

from __future__ import annotations

from notifier.sending.exchange import MAX_RESPONSE, Exchange, HeadFields, ResponseError
from notifier.sending.http1 import KEEPALIVE
from notifier.sending.outcomes import (
    CONFIG_STATUSES,
    RETRY_AFTER_MAX,
    Outcome,
    OutcomeKind,
    classify,
    is_config_status,
    parse_retry_after,
)
from notifier.sending.pool import PushPool
from notifier.sending.port import PushSender
from notifier.sending.resolver import SafeResolver
from notifier.sending.sender import Message, Sender, Window, origin_of

__all__ = [
    "CONFIG_STATUSES",
    "KEEPALIVE",
    "MAX_RESPONSE",
    "RETRY_AFTER_MAX",
    "Exchange",
    "HeadFields",
    "Message",
    "Outcome",
    "OutcomeKind",
    "PushPool",
    "PushSender",
    "ResponseError",
    "SafeResolver",
    "Sender",
    "Window",
    "classify",
    "is_config_status",
    "origin_of",
    "parse_retry_after",
]
