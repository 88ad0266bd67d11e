"""Deliver encrypted messages to push services over pooled keep-alive HTTP, and classify each answer.

This is the one boundary that speaks HTTP to push services. Every answer is
turned here into one :class:`Outcome` kind:

=========  ===========================================  ==========================
kind       answers                                      what the caller does
=========  ===========================================  ==========================
sent       201, 202                                     count, record last success
gone       404, 410                                     delete the subscription now
rejected   400, 401, 403, 413, other 4xx, unsafe host   count, never retry; 400/401/403 alert ops
retry      429, 503 (Retry-After), other 5xx, timeout,  retry later with backoff; ``failed`` when
           connection error                             attempts are exhausted
=========  ===========================================  ==========================

Requests are never redirected (a redirect could point into a private network)
and every one has a timeout. A 429 from an origin holds back further messages
to that origin only, for the time it asked.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from notifier.crypto import b64url_decode, encrypt
from notifier.endpoints import EndpointPolicy, is_public_address
from notifier.errors import UnsafeEndpoint
from notifier.settings import Settings
from notifier.vapid import VapidKey

#: Longest wait we accept from a Retry-After header before treating the message as failed.
RETRY_AFTER_MAX = 3600.0
CONFIG_STATUSES = frozenset({400, 401, 403})


@dataclass(slots=True)
class Message:
    """One push to one subscription."""

    sid: str
    endpoint: str
    p256dh: str
    auth: str
    payload: bytes
    ttl: int
    urgency: str = "normal"
    topic: str = ""


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


def origin_of(endpoint: str) -> str:
    """``scheme://host[:port]`` of an endpoint."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


class SafeResolver(AbstractResolver):
    """Resolves like the default resolver but refuses private addresses at connect time.

    The subscribe API checks endpoints when they are stored; DNS can change
    afterwards, so the sender checks every address it is about to connect to.
    """

    def __init__(self, policy: EndpointPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host`` and drop the answer when any address is not public."""
        results = await self.inner.resolve(host, port, family)
        if self.policy.operator_named(host.lower(), port):
            return results
        for result in results:
            if not is_public_address(result["host"]):
                raise UnsafeEndpoint(f"{host} resolves to a private address ({result['host']})")
        return results

    async def close(self) -> None:
        """Release the inner resolver."""
        await self.inner.close()


class Sender:
    """One pooled HTTP client per worker process; sends many messages concurrently.

    Create it once per process and reuse it across batches so keep-alive
    connections (and the per-origin VAPID JWTs) survive from batch to batch.
    The session is bound to the event loop that first uses it.
    """

    def __init__(
        self, settings: Settings, vapid: VapidKey, policy: EndpointPolicy, *, resolver: AbstractResolver | None = None
    ) -> None:
        self.settings = settings
        self.vapid = vapid
        self.policy = policy
        #: DNS answers before the private-address check (None: the system's); tests inject a rebinding one.
        self.resolver = resolver
        self._session: aiohttp.ClientSession | None = None
        self._blocked_until: dict[str, float] = {}
        self._checked_origins: dict[str, str] = {}
        self._origin_limits: dict[str, asyncio.Semaphore] = {}
        self._timeout = aiohttp.ClientTimeout(total=settings.send_timeout, connect=min(5.0, settings.send_timeout))

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.settings.ca_file:
            context.load_verify_locations(cafile=str(self.settings.ca_file))
        return context

    async def session(self) -> aiohttp.ClientSession:
        """The pooled session (created on first use, inside the running loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.settings.concurrency,
                limit_per_host=self.settings.per_origin_concurrency,
                ssl=self._ssl_context(),
                resolver=SafeResolver(self.policy, self.resolver),
                ttl_dns_cache=60,
                keepalive_timeout=60,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
        return self._session

    async def close(self) -> None:
        """Close pooled connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _check_origin(self, endpoint: str) -> str:
        """Check the endpoint against the policy once per origin; return the origin."""
        origin = origin_of(endpoint)
        verdict = self._checked_origins.get(origin)
        if verdict is None:
            try:
                self.policy.check(endpoint)
                verdict = ""
            except UnsafeEndpoint as exc:
                verdict = exc.message
            self._checked_origins[origin] = verdict
        if verdict:
            raise UnsafeEndpoint(verdict)
        return origin

    def _limit(self, origin: str) -> asyncio.Semaphore:
        sem = self._origin_limits.get(origin)
        if sem is None:
            sem = self._origin_limits[origin] = asyncio.Semaphore(self.settings.per_origin_concurrency)
        return sem

    async def send(self, message: Message) -> Outcome:
        """Encrypt and POST one message; never raises for a push-service problem."""
        try:
            origin = self._check_origin(message.endpoint)
        except UnsafeEndpoint as exc:
            return Outcome(message.sid, "rejected", 0, detail=f"unsafe endpoint: {exc.message}")
        blocked = self._blocked_until.get(origin)
        if blocked is not None:
            wait = blocked - time.monotonic()
            if wait > 0:
                return Outcome(message.sid, "deferred", 0, retry_after=wait, detail="origin rate limited", origin=origin)
            del self._blocked_until[origin]
        session = await self.session()
        async with self._limit(origin):
            try:
                body = encrypt(message.payload, b64url_decode(message.p256dh), b64url_decode(message.auth))
            except ValueError as exc:
                return Outcome(message.sid, "rejected", 0, detail=f"cannot encrypt: {exc}", origin=origin)
            headers = {
                "TTL": str(message.ttl),
                "Urgency": message.urgency,
                "Content-Encoding": "aes128gcm",
                "Content-Type": "application/octet-stream",
                "Authorization": self.vapid.authorization(message.endpoint),
            }
            if message.topic:
                headers["Topic"] = message.topic
            started = time.monotonic()
            try:
                async with session.post(message.endpoint, data=body, headers=headers, allow_redirects=False) as resp:
                    status = resp.status
                    retry_after = resp.headers.get("Retry-After")
                    detail = ""
                    if status >= 300:
                        detail = (await resp.content.read(300)).decode("utf-8", "replace")
                    else:
                        await resp.read()
            except UnsafeEndpoint as exc:
                return Outcome(message.sid, "rejected", 0, detail=f"unsafe endpoint: {exc.message}", origin=origin)
            except TimeoutError:
                return Outcome(message.sid, "retry", 0, detail="timeout", latency=time.monotonic() - started, origin=origin)
            except (aiohttp.ClientError, OSError) as exc:
                return Outcome(
                    message.sid, "retry", 0, detail=f"connection error: {type(exc).__name__}: {exc}"[:300],
                    latency=time.monotonic() - started, origin=origin,
                )
        latency = time.monotonic() - started
        kind, wait_s = classify(status, retry_after)
        if status == 429:
            hold = wait_s if wait_s is not None else 1.0
            self._blocked_until[origin] = max(self._blocked_until.get(origin, 0.0), time.monotonic() + min(hold, RETRY_AFTER_MAX))
        return Outcome(message.sid, kind, status, retry_after=wait_s, detail=detail, latency=latency, origin=origin)

    async def send_all(
        self,
        messages: Sequence[Message],
        *,
        should_stop: Callable[[], bool] | None = None,
        on_outcome: Callable[[Outcome], Any] | None = None,
    ) -> tuple[list[Outcome], list[Message]]:
        """Send every message with up to ``concurrency`` in flight.

        Returns the outcomes and the messages never started because
        ``should_stop`` turned true (a cancel or pause).
        """
        outcomes: list[Outcome] = []
        unsent: list[Message] = []
        queue = iter(messages)
        stop = False

        async def lane() -> None:
            nonlocal stop
            for message in queue:
                if stop or (should_stop is not None and should_stop()):
                    stop = True
                    unsent.append(message)
                    continue
                outcome = await self.send(message)
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)

        lanes = min(self.settings.concurrency, max(1, len(messages)))
        await asyncio.gather(*(lane() for _ in range(lanes)))
        return outcomes, unsent
