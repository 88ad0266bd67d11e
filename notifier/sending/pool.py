"""The sender's connections: per push-service origin, HTTP/2 where ALPN says ``h2``, else keep-alive HTTP/1.1.

:class:`PushPool` takes :class:`~notifier.sending.exchange.Exchange` objects
(``submit``) and finishes each through its callback. Per origin
(:class:`Origin`) it keeps the connections and a queue of exchanges waiting
for one:

- **https** origins are dialled with ALPN ``h2, http/1.1``. The first connection
  tells which one the service speaks; an ``h2`` service then gets streams on a
  few connections (a new one only when every open one is at the server's
  ``SETTINGS_MAX_CONCURRENT_STREAMS`` or our per-connection cap), an
  ``http/1.1`` one a connection per request in flight. Plain **http** origins
  (tests, a simulator) speak HTTP/1.1.
- Every address is checked at connect time (:class:`~notifier.sending.resolver.SafeResolver`:
  DNS may have changed since the endpoint was stored), redirects are answers
  like any other (never followed), and every exchange has a deadline
  (:class:`~notifier.sending.exchange.Deadlines`: one timer for all).
- **Writes** are not made the moment a request is ready but queued, and one
  callback (``call_soon``) writes everything queued in this turn of the event
  loop back to back: a burst costs the push service's side one wake-up, and on
  HTTP/2 one write (one TLS record) carries every stream of the burst.

How many requests are in flight is the caller's decision (the sender's
per-origin window); the pool only bounds connections per origin.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import ResolveResult

from notifier.errors import UnsafeEndpoint
from notifier.sending.exchange import Deadlines, Exchange, HeadFields, request_target
from notifier.sending.http1 import KEEPALIVE, Http1Connection, request_bytes
from notifier.sending.http2 import Http2Connection
from notifier.sending.resolver import SafeResolver

#: Streams one HTTP/2 connection carries at most (the server may allow fewer).
H2_STREAMS = 256
#: HTTP/2 connections per origin at most (each up to ``H2_STREAMS`` streams).
H2_CONNECTIONS = 16
#: HTTP/1.1 connections opened at once per origin (more follow as these complete).
CONNECTING_AT_ONCE = 64
#: Seconds a TCP (+ TLS) connect may take.
CONNECT_TIMEOUT = 10.0

Connection = Http1Connection | Http2Connection


class Origin:
    """One origin's connections (HTTP/2 or HTTP/1.1) and the exchanges waiting for a connection."""

    def __init__(self, pool: PushPool, origin: str) -> None:
        split = urlsplit(origin)
        if "\n" in split.netloc or "\r" in split.netloc or " " in split.netloc:
            raise ValueError("the endpoint's host contains a space or a line break")
        self.pool = pool
        self.name = origin
        self.tls = split.scheme == "https"
        self.host = split.hostname or ""
        self.port = split.port or (443 if self.tls else 80)
        self.host_line = b"Host: " + split.netloc.encode("latin-1") + b"\r\n"
        self.authority = split.netloc.encode("latin-1")
        #: What the service speaks: "h2", "http/1.1", or "" until the first https connection tells.
        self.protocol = "" if self.tls and pool.http2 else "http/1.1"
        self.idle: list[Http1Connection] = []
        self.h1: set[Http1Connection] = set()
        self.h2: list[Http2Connection] = []
        self.connecting = 0
        self.queue: deque[Exchange] = deque()

    # -- placing exchanges ------------------------------------------------------------------------------

    def submit(self, exchange: Exchange) -> None:
        """Send ``exchange`` on a free connection or stream, else queue it (and open connections)."""
        if self.queue or not self._place(exchange):
            self.queue.append(exchange)
            self._grow()

    def _place(self, exchange: Exchange) -> bool:
        for conn in self.h2:
            if conn.room() > 0:
                conn.start(exchange, self.authority)
                return True
        idle = self.idle
        if idle:
            pool = self.pool
            now = pool.loop.time()
            while idle:
                conn = idle.pop()
                if conn.fit(now, pool.keepalive):
                    self._start_h1(conn, exchange, reused=True)
                    return True
                conn.close()
                self.h1.discard(conn)
        return False

    def _start_h1(self, conn: Http1Connection, exchange: Exchange, *, reused: bool) -> None:
        conn.start(exchange, reused)
        self.pool.write_soon(conn, exchange, request_bytes(exchange, self.host_line))

    def _pump(self) -> None:
        """Place queued exchanges while there is room; open connections for the rest."""
        queue = self.queue
        while queue:
            head = queue[0]
            if head.finished:  # timed out while it waited
                queue.popleft()
                continue
            if not self._place(head):
                break
            queue.popleft()
        if queue:
            self._grow()

    def _next(self) -> Exchange | None:
        queue = self.queue
        while queue:
            head = queue.popleft()
            if not head.finished:
                return head
        return None

    def _grow(self) -> None:
        """Open connections for the queue: one at a time on HTTP/2 (or until the protocol is known)."""
        pool = self.pool
        if self.protocol == "http/1.1":
            waiting = len(self.queue) - self.connecting
            room = pool.max_connections - len(self.h1) - self.connecting
            for _ in range(min(waiting, room, CONNECTING_AT_ONCE - self.connecting)):
                pool.connect(self)
        elif (
            self.connecting == 0
            and len(self.h2) < H2_CONNECTIONS
            # A connection still waiting for the server's SETTINGS will have room soon.
            and all(conn.settled for conn in self.h2)
        ):
            pool.connect(self)

    # -- what connections report --------------------------------------------------------------------------

    def connected(self, conn: Connection) -> None:
        """A new connection is up (its protocol chosen by ALPN)."""
        if isinstance(conn, Http2Connection):
            self.protocol = "h2"
            self.h2.append(conn)
            self._pump()
            return
        self.protocol = "http/1.1"
        self.h1.add(conn)
        exchange = self._next()
        if exchange is None:
            conn.idle_since = self.pool.loop.time()
            self.idle.append(conn)
        else:
            self._start_h1(conn, exchange, reused=False)
        if self.queue:
            self._grow()

    def connect_failed(self, error: BaseException) -> None:
        """A connection could not be made: fail the waiting exchanges it was for."""
        alone = not self.h1 and not self.h2 and not self.connecting
        if alone or isinstance(error, UnsafeEndpoint):
            # Nothing else will carry them (or the address is refused): fail every waiting exchange.
            while (exchange := self._next()) is not None:
                exchange.fail(error)
        elif (exchange := self._next()) is not None:
            exchange.fail(error)
        if self.queue:
            self._grow()

    def answered(
        self,
        conn: Connection,
        exchange: Exchange,
        status: int,
        headers: dict[str, str],
        body: bytes,
        keep: bool,
    ) -> None:
        """``exchange`` got its answer; its connection (or stream) is free for the next one."""
        if isinstance(conn, Http1Connection):
            if keep and conn.open:
                following = self._next()
                if following is not None:
                    self._start_h1(conn, following, reused=True)
                else:
                    conn.idle_since = self.pool.loop.time()
                    self.idle.append(conn)
            else:
                conn.close()
                self.h1.discard(conn)
                if self.queue:
                    self._grow()
            exchange.finish(status, headers, body)
            return
        exchange.finish(status, headers, body)
        if self.queue:
            self._pump()

    def lost(self, conn: Http1Connection, exchange: Exchange, error: BaseException) -> None:
        """An HTTP/1.1 connection broke (or answered garbage) while it carried ``exchange``."""
        conn.close()
        self.closed(conn)
        if (
            conn.reused
            and not conn.got_bytes
            and exchange.replays == 0
            and isinstance(error, ConnectionError)
            and not exchange.finished
        ):
            # A kept-alive connection the service had already closed: once more on a new one.
            exchange.replays += 1
            exchange.conn = None
            self.queue.appendleft(exchange)
            self._grow()
            return
        exchange.fail(error)

    def closed(self, conn: Connection) -> None:
        """A connection is gone (closed by either side); forget it."""
        if isinstance(conn, Http1Connection):
            self.h1.discard(conn)
            if conn in self.idle:
                self.idle.remove(conn)
        elif conn in self.h2:
            self.h2.remove(conn)
        if self.queue:
            self._grow()

    def replay(self, exchange: Exchange, *, refused: bool = False) -> None:
        """The server did not process ``exchange`` (GOAWAY above it, REFUSED_STREAM): send it again.

        A refused stream is sent again at most three times; one a GOAWAY left unprocessed as long
        as its deadline allows (a server may close every connection after so many requests).
        """
        if exchange.finished:
            return
        exchange.conn = None
        if refused:
            if exchange.replays >= 3:
                exchange.fail(ConnectionResetError("the push service refused the stream three times"))
                return
            exchange.replays += 1
        self.queue.appendleft(exchange)
        self._pump()

    def more_room(self, conn: Http2Connection) -> None:
        """The server allows more streams now."""
        if self.queue:
            self._pump()

    def going_away(self, conn: Http2Connection) -> None:
        """GOAWAY: no new streams on ``conn``; another connection takes the queue."""
        if conn in self.h2:
            self.h2.remove(conn)
        if self.queue:
            self._pump()

    def close(self) -> None:
        """Drop every connection."""
        for conn in [*self.h1, *self.h2]:
            conn.close()
        self.h1.clear()
        self.h2.clear()
        self.idle.clear()


class _Switch(asyncio.Protocol):
    """Protocol for a fresh connection: once TLS is up, hands it to HTTP/2 or HTTP/1.1 as ALPN chose."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.chosen: Connection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Pick the protocol and hand the transport over before any byte is read."""
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        conn: Connection = (
            Http2Connection(self.origin, self.origin.pool.h2_streams)
            if alpn == "h2"
            else Http1Connection(self.origin)
        )
        transport.set_protocol(conn)  # type: ignore[arg-type]
        conn.connection_made(transport)
        self.chosen = conn


class PushPool:
    """Connections to push services, per origin; every address is checked (SafeResolver) before use."""

    def __init__(
        self,
        resolver: SafeResolver,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext],
        *,
        keepalive: float = KEEPALIVE,
        http2: bool = True,
        max_connections: int = 1024,
        h2_streams: int = H2_STREAMS,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.resolver = resolver
        #: The TLS context, or a function making it at the first https connection.
        self._ssl = ssl_context
        self.keepalive = keepalive
        self.http2 = http2
        self.max_connections = max_connections
        self.h2_streams = h2_streams
        self.connect_timeout = connect_timeout
        self._origins: dict[str, Origin] = {}
        self._dns: dict[tuple[str, int], tuple[list[ResolveResult], float]] = {}
        self._deadlines = Deadlines(self._expire)
        self._unsent: list[tuple[Http1Connection, Exchange, bytes]] = []
        self._dirty: list[Http2Connection] = []
        self._flushing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the pool's connections belong to (the first that used it)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context for https origins (made at first use when given a function); ALPN offers h2."""
        if not isinstance(self._ssl, ssl.SSLContext):
            self._ssl = self._ssl()
        self._ssl.set_alpn_protocols(["h2", "http/1.1"] if self.http2 else ["http/1.1"])
        return self._ssl

    def origin(self, origin: str) -> Origin:
        """The state of ``origin`` (``scheme://host[:port]``), made at its first use."""
        state = self._origins.get(origin)
        if state is None:
            state = self._origins[origin] = Origin(self, origin)
        return state

    def protocol(self, origin: str) -> str:
        """What ``origin`` speaks: ``h2``, ``http/1.1``, or ``""`` before its first connection."""
        state = self._origins.get(origin)
        return state.protocol if state is not None else ""

    # -- requests ---------------------------------------------------------------------------------------

    def submit(self, origin: str, exchange: Exchange) -> None:
        """Send ``exchange`` to ``origin``; its ``done`` callback is called once, answered or failed."""
        state = self._origins.get(origin) or self.origin(origin)
        loop = self._loop or self.loop
        exchange.started = now = loop.time()
        if exchange.timeout is not None:
            self._deadlines.watch(exchange, loop, now)
        state.submit(exchange)

    async def exchange(self, origin: str, exchange: Exchange) -> Exchange:
        """Submit ``exchange`` and wait for it; cancelling the wait gives the exchange up."""
        waiter: asyncio.Future[Exchange] = self.loop.create_future()

        def done(ex: Exchange) -> None:
            if not waiter.done():
                waiter.set_result(ex)

        exchange.done = done
        exchange.waiter = waiter
        self.submit(origin, exchange)
        try:
            return await waiter
        except asyncio.CancelledError:
            self._give_up(exchange, asyncio.CancelledError())
            raise

    async def post(
        self,
        endpoint: str,
        origin: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """POST ``body`` to ``endpoint`` (of ``origin``); (status, lower-cased headers, body). No redirects.

        ``timeout`` bounds the whole exchange (``TimeoutError``); a header value with a line
        break is a ``ValueError`` before anything is sent.
        """
        exchange = Exchange(request_target(endpoint, origin), HeadFields(headers), body, _ignore, timeout)
        await self.exchange(origin, exchange)
        if exchange.error is not None:
            raise exchange.error
        return exchange.status, exchange.headers, exchange.answer

    # -- the burst writer -------------------------------------------------------------------------------

    def write_soon(self, conn: Http1Connection, exchange: Exchange, data: bytes) -> None:
        """Write an HTTP/1.1 request with the others of this loop turn (see the module docstring)."""
        self._unsent.append((conn, exchange, data))
        if not self._flushing:
            self._flushing = True
            self.loop.call_soon(self._flush)

    def flush_soon(self, conn: Http2Connection) -> None:
        """Write an HTTP/2 connection's framed bytes with the others of this loop turn."""
        self._dirty.append(conn)
        if not self._flushing:
            self._flushing = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flushing = False
        if self._unsent:
            unsent, self._unsent = self._unsent, []
            for conn, exchange, data in unsent:
                waiter = exchange.waiter
                if waiter is not None and waiter.cancelled():
                    self._give_up(exchange, asyncio.CancelledError())  # cancelled before its turn
                # Timed out or disconnected before its turn: already finished.
                elif conn.exchange is exchange and conn.open:
                    conn.write(data)
        if self._dirty:
            dirty, self._dirty = self._dirty, []
            for h2conn in dirty:
                h2conn.flush()

    # -- deadlines and giving up ------------------------------------------------------------------------

    def _expire(self, exchange: Exchange) -> None:
        self._give_up(exchange, TimeoutError())

    def _give_up(self, exchange: Exchange, error: BaseException) -> None:
        """Stop ``exchange`` where it is (its connection, stream or the queue) and fail it."""
        if exchange.finished:
            return
        conn = exchange.conn
        if conn is not None:
            conn.cancel(exchange)
            if isinstance(conn, Http1Connection):
                conn.origin.closed(conn)  # a connection mid-answer cannot be reused
        exchange.fail(error)

    # -- connections ------------------------------------------------------------------------------------

    def connect(self, origin: Origin) -> None:
        """Open one more connection to ``origin`` (in the background)."""
        origin.connecting += 1
        task = self.loop.create_task(self._connect(origin))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, origin: Origin) -> None:
        try:
            async with asyncio.timeout(self.connect_timeout):
                conn = await self._open(origin)
        except asyncio.CancelledError:
            origin.connecting -= 1
            raise
        except (OSError, UnsafeEndpoint, ValueError, ssl.SSLError) as exc:
            origin.connecting -= 1
            origin.connect_failed(exc)
            return
        origin.connecting -= 1
        if conn.open:
            origin.connected(conn)
        else:
            origin.connect_failed(ConnectionResetError("the push service closed the new connection"))

    async def _open(self, origin: Origin) -> Connection:
        addresses = await self._resolve(origin.host, origin.port)
        context = self.ssl_context if origin.tls else None
        error: OSError | None = None
        for address in addresses:
            try:
                _, switch = await self.loop.create_connection(
                    lambda: _Switch(origin),
                    address["host"],
                    address["port"],
                    family=address["family"],
                    ssl=context,
                    server_hostname=origin.host if origin.tls else None,
                )
            except OSError as exc:
                error = exc
                continue
            assert switch.chosen is not None
            return switch.chosen
        raise error or OSError(f"no address to connect to for {origin.host}")

    async def _resolve(self, host: str, port: int) -> list[ResolveResult]:
        cached = self._dns.get((host, port))
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        results = await self.resolver.resolve(host, port, socket.AF_UNSPEC)
        self._dns[(host, port)] = (results, now + 60.0)
        return results

    async def close(self) -> None:
        """Close every connection and the resolver; open exchanges fail with ``ConnectionResetError``."""
        self._deadlines.close()
        for task in list(self._tasks):
            task.cancel()
        for origin in self._origins.values():
            for exchange in list(origin.queue):
                exchange.fail(ConnectionResetError("the sender closed"))
            origin.queue.clear()
            origin.close()
        self._origins.clear()
        self._unsent.clear()
        self._dirty.clear()
        await self.resolver.close()


def _ignore(exchange: Exchange) -> Any:
    return None
