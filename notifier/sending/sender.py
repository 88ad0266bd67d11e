"""The sender: encrypt each message, send it over the pool, and turn the answer into an Outcome.

Messages are started by one feeder per origin and finished by a callback from
the connection that got the answer: no coroutine, future or semaphore per
message. How many are in flight per origin is a :class:`Window` sized by
Little's law from what the origin does: in flight = answers per second x
their latency, doubled for the tail, within ``NOTIFIER_WINDOW_MIN`` ..
``NOTIFIER_PER_ORIGIN_CONCURRENCY`` (and ``NOTIFIER_CONCURRENCY`` for all
origins together); while the window is what holds the feeder back it also
widens by one per answer (slow start: doubled each round trip). A push
service 150 ms away gets ~10 times more requests in flight than one 15 ms
away for the same rate; a slow origin fills its own window and waits there,
the others go on.
"""

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
from notifier.sending.exchange import Exchange, HeadFields, request_target
from notifier.sending.outcomes import RETRY_AFTER_MAX, Outcome, OutcomeKind, classify
from notifier.sending.pool import PushPool
from notifier.sending.resolver import SafeResolver
from notifier.settings import Settings
from notifier.vapid import VapidKey

SENT, REJECTED, RETRY, DEFERRED = (
    OutcomeKind.SENT,
    OutcomeKind.REJECTED,
    OutcomeKind.RETRY,
    OutcomeKind.DEFERRED,
)

#: Messages a feeder starts before it lets the event loop read answers and write the burst. Each turn of
#: the loop costs a task step, an epoll wait and a burst write; at 16 they were ~4 us of a message's CPU
#: (one worker, 100k over HTTP/1.1: 129 -> 125.5 us a message at 64), while 64 encryptions (~6 ms) are
#: still small against any push service's latency.
CHUNK = 64
#: Seconds between two sizings of a window (each from the answers of that interval).
WINDOW_INTERVAL = 0.1
#: In flight = rate x latency x this: the slack that covers a latency tail and a growing rate.
HEADROOM = 2.0
#: A new origin's window, in floors (before its first answers tell its latency): slow start from there.
INITIAL_WINDOW = 4
#: Seconds a feeder waits for room before its origin counts as slow (see ``Sender._wait_for_room``).
PARK_AFTER = 0.5


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


class Window:
    """How many messages one origin may have in flight, sized by Little's law from its answers.

    Each :data:`WINDOW_INTERVAL` the answers of the interval give a rate and a mean latency;
    the window becomes ``rate x latency x HEADROOM`` plus the floor, within the bounds, and
    shrinks at most by a fifth per interval (a burst of fast answers must not close it).
    Once the CPU (or the service) is the bottleneck it settles at twice what is really in
    flight.

    While the window is the bottleneck (a feeder waits for room: ``starved``) each answer
    also widens it by one, so it doubles every round trip, like TCP's slow start: from its
    initial size (four floors) to 1,000 in two round trips, where the sizings alone (the answers
    of an interval tell the rate of the window one latency before) needed a second at 150 ms. A feeder
    waiting for room is woken once ``min(CHUNK, window / 8)`` places are free, not at each
    answer: at internet latency answers trickle in, and a wake-up per answer started one
    message per turn of the event loop.
    """

    __slots__ = (
        "answers",
        "ceiling",
        "floor",
        "inflight",
        "latency",
        "latency_sum",
        "limit",
        "since",
        "starved",
        "waiter",
    )

    def __init__(self, floor: int, ceiling: int, initial: int = 0) -> None:
        self.floor = floor
        self.ceiling = ceiling
        self.limit = max(floor, min(ceiling, initial))
        self.inflight = 0
        self.answers = 0
        self.latency_sum = 0.0
        self.latency = 0.0  # mean latency of the last sized interval (seconds)
        self.since = 0.0
        #: A feeder waits for room in this window (it is the bottleneck, not the CPU).
        self.starved = False
        self.waiter: asyncio.Future[None] | None = None

    def answered(self, latency: float, now: float) -> None:
        """One answer (or failure) came back after ``latency`` seconds."""
        self.inflight -= 1
        self.answers += 1
        self.latency_sum += latency
        elapsed = now - self.since
        if elapsed >= WINDOW_INTERVAL:
            if self.since:
                self._size(elapsed)
            self.since = now
            self.answers = 0
            self.latency_sum = 0.0
        if self.starved and self.limit < self.ceiling:
            self.limit += 1
        waiter = self.waiter
        if waiter is not None and self.inflight <= self.limit - min(CHUNK, max(1, self.limit >> 3)):
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _size(self, elapsed: float) -> None:
        rate = self.answers / elapsed
        self.latency = self.latency_sum / self.answers
        target = int(rate * self.latency * HEADROOM) + self.floor
        self.limit = max(self.floor, min(self.ceiling, max(target, self.limit * 4 // 5)))

    @property
    def at_ceiling(self) -> bool:
        """The window cannot grow any more: the origin is slow for the bounds, not the worker."""
        return self.limit >= self.ceiling


class _Run:
    """One :meth:`Sender.send_all` call: its outcomes, and when every message is started and answered."""

    __slots__ = (
        "error", "feeders", "keep_back", "on_outcome", "on_started", "outcomes", "outstanding", "parked",
        "should_stop", "started_all", "stop", "unsent", "waiter",
    )  # fmt: skip

    def __init__(
        self,
        should_stop: Callable[[], bool] | None,
        on_outcome: Callable[[Outcome], Any] | None,
        on_started: Callable[[], Any] | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.should_stop = should_stop
        self.on_outcome = on_outcome
        self.on_started = on_started
        self.outcomes: list[Outcome] = []
        self.unsent: list[Message] = []
        self.outstanding = 0  # started, not answered yet
        self.feeders = 0  # feeders still starting messages
        self.parked = 0  # of those, waiting on a window already at its ceiling
        self.started_all = False
        self.stop = False
        self.error: Exception | None = None
        self.keep_back: Callable[[str], bool] | None = None
        self.waiter: asyncio.Future[None] = loop.create_future()

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def answered(self, outcome: Outcome) -> None:
        self.outstanding -= 1
        if not self.outstanding and not self.feeders and not self.waiter.done():
            self.waiter.set_result(None)
        self.add(outcome)

    def release(self) -> None:
        """Every message is started (or only slow origins' wait): the caller may start other work."""
        if not self.started_all:
            self.started_all = True
            if self.on_started is not None:
                self.on_started()


class Sender:
    """One pool of connections per worker process; sends many messages concurrently.

    Create it once per process and reuse it across batches so keep-alive
    connections, HTTP/2 sessions, the per-origin windows and VAPID JWTs
    survive from batch to batch. The pool's connections belong to the event
    loop that opened them. Several :meth:`send_all` calls may run at once on
    that loop (a worker's overlapping batches): they share the windows.
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
        self._pool: PushPool | None = None
        self._service: dict[str, str] = {}
        self._checked_origins: dict[str, str] = {}
        self._windows: dict[str, Window] = {}
        self._total = 0  # in flight, all origins
        self._total_waiter: asyncio.Future[None] | None = None
        self._auth: dict[str, tuple[str, float]] = {}
        self._fields: dict[tuple[str, int, str, str, str], tuple[str, HeadFields]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.settings.ca_file:
            context.load_verify_locations(cafile=str(self.settings.ca_file))
        return context

    def pool(self) -> PushPool:
        """The connection pool (connections belong to the loop that opened them)."""
        if self._pool is None:
            # The system CA store takes ~20 ms of CPU to load: plain-HTTP senders never need it, so
            # it is loaded at the first https connection. An operator's CA file is loaded now, so a
            # bad one still fails here and not as a connection error.
            ssl_context = self._ssl_context() if self.settings.ca_file else self._ssl_context
            self._pool = PushPool(
                SafeResolver(self.policy, self.resolver),
                ssl_context,
                http2=self.settings.http2,
                max_connections=self.settings.per_origin_concurrency,
            )
        return self._pool

    async def close(self) -> None:
        """Close pooled connections."""
        if self._pool is not None:
            await self._pool.close()
        self._pool = None

    def windows(self) -> dict[str, dict[str, float]]:
        """Per origin: the window now, what is in flight, the latency it was sized for (ms), the protocol."""
        pool = self._pool
        return {
            origin: {
                "window": w.limit,
                "in_flight": w.inflight,
                "latency_ms": round(w.latency * 1000, 1),
                "protocol": pool.protocol(origin) if pool is not None else "",  # type: ignore[dict-item]
            }
            for origin, w in self._windows.items()
        }

    # -- per-origin checks and headers ------------------------------------------------------------------

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

    def _head_fields(self, origin: str, message: Message) -> HeadFields:
        """The header fields after ``Host`` but the length (cached: they repeat across a batch)."""
        authorization = self._authorization(origin, message.endpoint, message.vapid)
        key = (
            origin,
            message.ttl,
            message.urgency,
            message.topic,
            message.vapid.key_id if message.vapid else "",
        )
        cached = self._fields.get(key)
        if cached is not None and cached[0] is authorization:
            return cached[1]
        fields = [
            ("TTL", str(message.ttl)),
            ("Urgency", message.urgency),
            ("Content-Encoding", "aes128gcm"),
            ("Content-Type", "application/octet-stream"),
            ("Authorization", authorization),
        ]
        if message.topic:
            fields.append(("Topic", message.topic))
        head = HeadFields(fields)
        if len(self._fields) >= 256:
            self._fields.clear()
        self._fields[key] = (authorization, head)
        return head

    def _service_of(self, origin: str) -> str:
        """The push service an origin belongs to (holds and breakers are per service)."""
        service = self._service.get(origin)
        if service is None:
            service = self._service[origin] = service_id(origin)
        return service

    def _window(self, origin: str) -> Window:
        window = self._windows.get(origin)
        if window is None:
            settings = self.settings
            floor, ceiling = settings.window_min, settings.per_origin_concurrency
            window = self._windows[origin] = Window(floor, ceiling, INITIAL_WINDOW * floor)
        return window

    # -- sending ----------------------------------------------------------------------------------------

    async def send(self, message: Message) -> Outcome:
        """Encrypt and send one message; never raises for a push-service problem."""
        outcomes, _ = await self.send_all([message])
        return outcomes[0]

    async def send_all(
        self,
        messages: Sequence[Message],
        *,
        should_stop: Callable[[], bool] | None = None,
        on_outcome: Callable[[Outcome], Any] | None = None,
        on_started: Callable[[], Any] | None = None,
        keep_back: Callable[[str], bool] | None = None,
    ) -> tuple[list[Outcome], list[Message]]:
        """Send every message, as many in flight per origin as its window allows.

        Returns the outcomes and the messages never started: because ``should_stop``
        turned true (a cancel), or because ``keep_back(origin)`` said their push service
        is held now (a breaker opened while the batch ran, :mod:`notifier.breakers`).
        ``on_outcome`` sees each outcome as it comes;
        ``on_started`` is called once every message is started (or all that are left
        wait on origins whose windows are at their ceiling), while answers may still be
        outstanding: a worker then starts its next batch.
        """
        loop = self._loop = asyncio.get_running_loop()
        run = _Run(should_stop, on_outcome, on_started, loop)
        run.keep_back = keep_back
        groups: dict[str, list[Message]] = {}
        for message in messages:
            origin = origin_of(message.endpoint)
            group = groups.get(origin)
            if group is None:
                group = groups[origin] = []
            group.append(message)
        run.feeders = len(groups)
        try:
            if groups:
                await asyncio.gather(*(self._feed(run, origin, group) for origin, group in groups.items()))
            run.release()
            if run.outstanding:
                await run.waiter
        finally:
            run.release()
        if run.error is not None:
            raise run.error
        return run.outcomes, run.unsent

    async def _feed(self, run: _Run, origin: str, messages: list[Message]) -> None:
        """Start ``messages`` (all to ``origin``) as the origin's window and the global bound allow."""
        window = self._window(origin)
        total_max = self.settings.concurrency
        start = self._start
        should_stop = run.should_stop
        keep_back = run.keep_back
        i, n = 0, len(messages)
        try:
            while i < n:
                if run.stop or (should_stop is not None and should_stop()):
                    run.stop = True
                    run.unsent.extend(messages[i:])
                    return
                if keep_back is not None and keep_back(origin):
                    run.unsent.append(messages[i])  # its push service is held now: not sent
                    i += 1
                    continue
                if window.inflight >= window.limit or self._total >= total_max:
                    await self._wait_for_room(run, window, total_max)
                    continue  # check for a stop again: the wait may have been long
                start(run, messages[i], origin, window)
                i += 1
                if not i % CHUNK:
                    await asyncio.sleep(0)  # let answers in and the burst out
        finally:
            run.feeders -= 1
            if not run.feeders and not run.outstanding and not run.waiter.done():
                run.waiter.set_result(None)

    async def _wait_for_room(self, run: _Run, window: Window, total_max: int) -> None:
        """Wait until ``window`` (and the global bound) has room again.

        A feeder that waits on a window already at its ceiling, or longer than
        :data:`PARK_AFTER`, is *parked*: its origin is slow, not the worker. When every
        feeder of the run is parked, the run is released early (``on_started``): the
        worker takes its next batch, whose other origins need not wait for this one.
        """
        loop = asyncio.get_running_loop()
        parked = False

        def park() -> None:
            nonlocal parked
            parked = True
            run.parked += 1
            if run.parked >= run.feeders:
                run.release()

        timer = None
        if window.at_ceiling:
            park()
        else:
            timer = loop.call_later(PARK_AFTER, park)
        try:
            if window.inflight >= window.limit:
                waiter = window.waiter
                if waiter is None or waiter.done():
                    waiter = window.waiter = loop.create_future()
                window.starved = True
                try:
                    await waiter
                finally:
                    window.starved = False
            elif self._total >= total_max:
                waiter = self._total_waiter
                if waiter is None or waiter.done():
                    waiter = self._total_waiter = loop.create_future()
                await waiter
        finally:
            if timer is not None:
                timer.cancel()
            if parked:
                run.parked -= 1

    def _start(self, run: _Run, message: Message, origin: str, window: Window) -> None:
        """Check, encrypt and submit one message (or record why it cannot be sent)."""
        sid = message.sid
        try:
            self._check_origin(message.endpoint, origin)
        except UnsafeEndpoint as exc:
            run.add(Outcome(sid, REJECTED, 0, detail=f"unsafe endpoint: {exc.message}"))
            return
        wait = self.holds.wait(self._service_of(origin))
        if wait > 0:
            run.add(Outcome(sid, DEFERRED, 0, retry_after=wait, detail="push service on hold", origin=origin))
            return
        try:
            body = encrypt(message.payload, b64url_decode(message.p256dh), b64url_decode(message.auth))
        except ValueError as exc:
            run.add(Outcome(sid, REJECTED, 0, detail=f"cannot encrypt: {exc}", origin=origin))
            return
        try:
            target = request_target(message.endpoint, origin)
            head = self._head_fields(origin, message)
        except ValueError as exc:
            run.add(Outcome(sid, REJECTED, 0, detail=f"cannot send: {exc}", origin=origin))
            return
        exchange = Exchange(
            target, head, body, self._answered, self.settings.send_timeout, (run, message, window, origin)
        )
        window.inflight += 1
        self._total += 1
        run.outstanding += 1
        try:
            (self._pool or self.pool()).submit(origin, exchange)
        except ValueError as exc:  # an origin the pool cannot dial (a malformed host)
            exchange.fail(exc)

    def _answered(self, exchange: Exchange) -> None:
        """An exchange is over (answered or failed): make its outcome, free its place in the window."""
        run, message, window, origin = exchange.context
        loop = self._loop
        now = loop.time() if loop is not None else 0.0
        latency = now - exchange.started if exchange.started else 0.0
        window.answered(latency, now)
        self._total -= 1
        total_waiter = self._total_waiter
        total_max = self.settings.concurrency
        if total_waiter is not None and self._total <= total_max - min(CHUNK, max(1, total_max >> 3)):
            self._total_waiter = None
            if not total_waiter.done():
                total_waiter.set_result(None)
        try:
            run.answered(self._outcome(exchange, message, origin, latency))
        except Exception as exc:  # a caller's on_outcome failed: raised from send_all, not into a protocol
            run.error = run.error or exc

    def _outcome(self, exchange: Exchange, message: Message, origin: str, latency: float) -> Outcome:
        error = exchange.error
        if error is None:
            status = exchange.status
            if status == 201:
                return Outcome(message.sid, SENT, 201, None, "", latency, origin, time.time())
            retry_after = exchange.headers.get("retry-after")
            detail = exchange.answer[:300].decode("utf-8", "replace") if status >= 300 else ""
            kind, wait_s = classify(status, retry_after)
            if status == 429 or (status == 503 and wait_s is not None):
                # The service asks us (every worker) to wait: 429 always, 503 when it says how long.
                hold = min(wait_s if wait_s is not None else 1.0, RETRY_AFTER_MAX)
                self.holds.hold(self._service_of(origin), hold, status)
            return Outcome(
                message.sid, kind, status, retry_after=wait_s, detail=detail, latency=latency,
                origin=origin, at=time.time(),
            )  # fmt: skip
        if isinstance(error, UnsafeEndpoint):
            return Outcome(
                message.sid, REJECTED, 0, detail=f"unsafe endpoint: {error.message}", origin=origin
            )
        if isinstance(error, ValueError):
            return Outcome(message.sid, REJECTED, 0, detail=f"cannot send: {error}", origin=origin)
        if isinstance(error, TimeoutError):
            return Outcome(message.sid, RETRY, 0, detail="timeout", latency=latency, origin=origin)
        return Outcome(
            message.sid,
            RETRY,
            0,
            detail=f"connection error: {type(error).__name__}: {error}"[:300],
            latency=latency,
            origin=origin,
        )
