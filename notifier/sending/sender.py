"""The sender: encrypt each message, POST it over the pool, and turn the answer into an Outcome."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver

from notifier.browsers import service_id
from notifier.crypto import b64url_decode, encrypt
from notifier.endpoints import EndpointPolicy
from notifier.errors import UnsafeEndpoint
from notifier.holds import ServiceHolds
from notifier.sending.http1 import Http1Pool
from notifier.sending.outcomes import RETRY_AFTER_MAX, Outcome, OutcomeKind, classify
from notifier.sending.resolver import SafeResolver
from notifier.settings import Settings
from notifier.vapid import VapidKey

SENT, REJECTED, RETRY, DEFERRED = (
    OutcomeKind.SENT,
    OutcomeKind.REJECTED,
    OutcomeKind.RETRY,
    OutcomeKind.DEFERRED,
)


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
    #: The key to sign with (a site's own); None: the sender's.
    vapid: VapidKey | None = None


def origin_of(endpoint: str) -> str:
    """``scheme://host[:port]`` of an endpoint (string slicing: this runs once per message)."""
    start = endpoint.find("//")
    if start < 0:
        parts = urlsplit(endpoint)
        return f"{parts.scheme}://{parts.netloc}"
    end = endpoint.find("/", start + 2)
    if end > 0 and "?" not in endpoint[start:end] and "#" not in endpoint[start:end]:
        return endpoint[:end]  # every real endpoint: a path follows the authority
    cut = [i for i in (end, endpoint.find("?", start + 2), endpoint.find("#", start + 2)) if i >= 0]
    return endpoint[: min(cut)] if cut else endpoint


class Sender:
    """One pooled HTTP client per worker process; sends many messages concurrently.

    Create it once per process and reuse it across batches so keep-alive
    connections (and the per-origin VAPID JWTs) survive from batch to batch.
    The pool's connections belong to the event loop that opened them.
    """

    def __init__(
        self,
        settings: Settings,
        vapid: VapidKey,
        policy: EndpointPolicy,
        *,
        resolver: AbstractResolver | None = None,
        holds: ServiceHolds | None = None,
    ) -> None:
        self.settings = settings
        self.vapid = vapid
        self.policy = policy
        #: DNS answers before the private-address check (None: the system's); tests inject a rebinding one.
        self.resolver = resolver
        #: Push services on hold after a 429/503 Retry-After: shared by every worker when backed by Redis.
        self.holds = holds if holds is not None else ServiceHolds(None)
        self._pool: Http1Pool | None = None
        self._service: dict[str, str] = {}
        self._checked_origins: dict[str, str] = {}
        self._origin_limits: dict[str, asyncio.Semaphore] = {}
        self._auth: dict[str, tuple[str, float]] = {}
        self._fields: dict[tuple[str, int, str, str], tuple[str, bytes]] = {}

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.settings.ca_file:
            context.load_verify_locations(cafile=str(self.settings.ca_file))
        return context

    def pool(self) -> Http1Pool:
        """The keep-alive connection pool (connections belong to the loop that opened them)."""
        if self._pool is None:
            # The system CA store takes ~20 ms of CPU to load: plain-HTTP senders never need it, so
            # it is loaded at the first https connection. An operator's CA file is loaded now, so a
            # bad one still fails here and not as a connection error.
            ssl_context = self._ssl_context() if self.settings.ca_file else self._ssl_context
            self._pool = Http1Pool(SafeResolver(self.policy, self.resolver), ssl_context)
        return self._pool

    async def close(self) -> None:
        """Close pooled connections."""
        if self._pool is not None:
            await self._pool.close()
        self._pool = None

    def _check_origin(self, endpoint: str, origin: str | None = None) -> str:
        """Check the endpoint against the policy once per origin; return the origin."""
        if origin is None:
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

    def _authorization(self, origin: str, endpoint: str, vapid: VapidKey | None = None) -> str:
        """The VAPID header of an origin and key, rebuilt at most once a minute (its JWT lives for hours)."""
        now = time.monotonic()
        key = vapid or self.vapid
        cache = origin if key is self.vapid else f"{origin} {key.key_id}"
        cached = self._auth.get(cache)
        if cached is not None and cached[1] > now:
            return cached[0]
        value = key.authorization(endpoint)
        self._auth[cache] = (value, now + 60.0)
        return value

    def _limit(self, origin: str) -> asyncio.Semaphore:
        sem = self._origin_limits.get(origin)
        if sem is None:
            sem = self._origin_limits[origin] = asyncio.Semaphore(self.settings.per_origin_concurrency)
        return sem

    def _head_fields(self, origin: str, message: Message) -> bytes:
        """The header lines after ``Host`` but Content-Length (cached: they repeat across a batch)."""
        authorization = self._authorization(origin, message.endpoint, message.vapid)
        key = (origin, message.ttl, message.urgency, message.topic)
        cached = self._fields.get(key)
        if cached is not None and cached[0] is authorization:
            return cached[1]
        lines = (
            f"TTL: {message.ttl}\r\nUrgency: {message.urgency}\r\nContent-Encoding: aes128gcm\r\n"
            f"Content-Type: application/octet-stream\r\nAuthorization: {authorization}\r\n"
        )
        if message.topic:
            lines += f"Topic: {message.topic}\r\n"
        if lines.count("\n") != 5 + bool(message.topic) or "\r\r" in lines:
            raise ValueError("a header value contains a line break")
        fields = lines.encode("latin-1")
        if len(self._fields) >= 256:
            self._fields.clear()
        self._fields[key] = (authorization, fields)
        return fields

    async def send(self, message: Message) -> Outcome:
        """Encrypt and POST one message; never raises for a push-service problem."""
        return await self._send(message, origin_of(message.endpoint))

    async def _send(self, message: Message, origin: str) -> Outcome:
        """:meth:`send` with the message's ``origin_of`` already known (send_all needs it anyway)."""
        try:
            self._check_origin(message.endpoint, origin)
        except UnsafeEndpoint as exc:
            return Outcome(message.sid, REJECTED, 0, detail=f"unsafe endpoint: {exc.message}")
        service = self._service.get(origin) or self._service.setdefault(origin, service_id(origin))
        wait = self.holds.wait(service)
        if wait > 0:
            return Outcome(
                message.sid, DEFERRED, 0, retry_after=wait, detail="push service on hold", origin=origin
            )
        pool = self._pool or self.pool()
        async with self._origin_limits.get(origin) or self._limit(origin):
            try:
                body = encrypt(message.payload, b64url_decode(message.p256dh), b64url_decode(message.auth))
            except ValueError as exc:
                return Outcome(message.sid, REJECTED, 0, detail=f"cannot encrypt: {exc}", origin=origin)
            started = time.monotonic()
            try:
                request = b"%s%sContent-Length: %d\r\n\r\n%s" % (
                    pool.request_head(message.endpoint, origin),
                    self._head_fields(origin, message),
                    len(body),
                    body,
                )
                status, answer_headers, answer = await pool.send(origin, request, self.settings.send_timeout)
                retry_after = answer_headers.get("retry-after")
                detail = answer[:300].decode("utf-8", "replace") if status >= 300 else ""
            except ValueError as exc:
                return Outcome(message.sid, REJECTED, 0, detail=f"cannot send: {exc}", origin=origin)
            except UnsafeEndpoint as exc:
                return Outcome(
                    message.sid, REJECTED, 0, detail=f"unsafe endpoint: {exc.message}", origin=origin
                )
            except TimeoutError:
                return Outcome(
                    message.sid,
                    RETRY,
                    0,
                    detail="timeout",
                    latency=time.monotonic() - started,
                    origin=origin,
                )
            except OSError as exc:
                return Outcome(
                    message.sid,
                    RETRY,
                    0,
                    detail=f"connection error: {type(exc).__name__}: {exc}"[:300],
                    latency=time.monotonic() - started,
                    origin=origin,
                )
        latency = time.monotonic() - started
        if status == 201:
            return Outcome(message.sid, SENT, 201, None, "", latency, origin, time.time())
        kind, wait_s = classify(status, retry_after)
        if status == 429 or (status == 503 and wait_s is not None):
            # The service asks us (every worker) to wait: 429 always, 503 when it says how long.
            self.holds.hold(service, min(wait_s if wait_s is not None else 1.0, RETRY_AFTER_MAX), status)
        return Outcome(
            message.sid,
            kind,
            status,
            retry_after=wait_s,
            detail=detail,
            latency=latency,
            origin=origin,
            at=time.time(),
        )

    async def send_all(
        self,
        messages: Sequence[Message],
        *,
        should_stop: Callable[[], bool] | None = None,
        on_outcome: Callable[[Outcome], Any] | None = None,
        keep_back: Callable[[str], bool] | None = None,
    ) -> tuple[list[Outcome], list[Message]]:
        """Send every message with up to ``concurrency`` in flight.

        Returns the outcomes and the messages never started: because ``should_stop``
        turned true (a cancel), or because ``keep_back(origin)`` said their push service
        is held now (a breaker opened while the batch ran, :mod:`notifier.breakers`).
        """
        outcomes: list[Outcome] = []
        unsent: list[Message] = []
        origin_list = [origin_of(message.endpoint) for message in messages]
        queue = zip(messages, origin_list, strict=True)
        stop = False
        send = self._send

        async def lane() -> None:
            nonlocal stop
            for message, origin in queue:
                if stop or (should_stop is not None and should_stop()):
                    stop = True
                    unsent.append(message)
                    continue
                if keep_back is not None and keep_back(origin):
                    unsent.append(message)
                    continue
                outcome = await send(message, origin)
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)

        # No more lanes than the per-origin limits let send at once: a lane beyond them would only
        # wait on an origin's semaphore (a future and a wake-up per message).
        origins = len(set(origin_list))
        lanes = min(
            self.settings.concurrency,
            max(1, len(messages)),
            max(1, origins * self.settings.per_origin_concurrency),
        )
        await asyncio.gather(*(lane() for _ in range(lanes)))
        return outcomes, unsent
