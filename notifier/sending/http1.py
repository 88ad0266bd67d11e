"""A lean keep-alive HTTP/1.1 client on asyncio protocols, for many tiny push requests."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp.abc import ResolveResult

from notifier.sending.resolver import SafeResolver

#: Largest response (head + body) read from a push service; error bodies are a few hundred bytes.
MAX_RESPONSE = 256 * 1024
#: Seconds an idle keep-alive connection is reused (push services keep them for minutes).
KEEPALIVE = 60.0


class ResponseError(ConnectionError):
    """The push service answered something that is not a well-formed HTTP/1.1 response."""


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time.

    Push requests are tiny (one ~300-byte POST, an empty 201 back), so aiohttp's
    general machinery cost more CPU per message than the encryption: this parses
    the answer straight from the received bytes.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, dict[str, str], bytes, bool]] | None = None
        self.deadline = 0.0  # loop time after which the pool's watchdog fails the pending request
        self.open = False
        self.eof = False
        self.got_bytes = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Connected."""
        self.transport = transport  # type: ignore[assignment]
        self.open = True

    def data_received(self, data: bytes) -> None:
        """Collect the answer; wake the request once it is complete."""
        self.got_bytes = True
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        """The peer closed its side: an answer without length ends here."""
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail a pending request unless its answer is already complete."""
        self.open = False
        self.eof = True
        waiter = self.waiter
        if waiter is not None and not waiter.done() and not self._wake():
            waiter.set_exception(exc or ConnectionResetError("the push service closed the connection"))

    def _wake(self) -> bool:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return False
        try:
            parsed = self._parse()
        except (ValueError, IndexError) as exc:
            waiter.set_exception(ResponseError(f"malformed response: {exc}"))
            return True
        if parsed is None:
            if len(self.buffer) > MAX_RESPONSE:
                waiter.set_exception(ResponseError("response larger than 256 KiB"))
                return True
            return False
        waiter.set_result(parsed)
        return True

    def _parse(self) -> tuple[int, dict[str, str], bytes, bool] | None:
        buf = self.buffer
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = buf[:end].decode("latin-1").split("\r\n")
        version, status_text = lines[0].split(" ", 2)[:2]
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not HTTP/1.x: {lines[0][:40]!r}")
        status = int(status_text)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if status in (204, 304) or status < 200:
            body, consumed = b"", start
        elif "transfer-encoding" in headers and "chunked" in headers["transfer-encoding"].lower():
            chunks: list[bytes] = []
            pos = start
            while True:
                line_end = buf.find(b"\r\n", pos)
                if line_end < 0:
                    return None
                size = int(bytes(buf[pos:line_end]).split(b";")[0].strip(), 16)
                if size == 0:
                    tail = buf.find(b"\r\n\r\n", line_end)
                    if tail < 0:
                        return None
                    consumed = tail + 4
                    break
                if len(buf) < line_end + 4 + size:
                    return None
                chunks.append(bytes(buf[line_end + 2 : line_end + 2 + size]))
                pos = line_end + 4 + size
            body = b"".join(chunks)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if len(buf) < start + length:
                return None
            body, consumed = bytes(buf[start : start + length]), start + length
        else:
            if not self.eof:
                return None  # the body runs until the connection closes
            body, consumed, keep = bytes(buf[start:]), len(buf), False
        del buf[:consumed]
        return status, headers, body, keep and not buf

    def start(
        self, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[tuple[int, dict[str, str], bytes, bool]]:
        """Expect one answer (the pool writes the request): (status, headers, body, reusable)."""
        self.got_bytes = False
        waiter = self.waiter = loop.create_future()
        return waiter

    def close(self) -> None:
        """Drop the connection (aborted: an unfinished answer is of no use)."""
        self.open = False
        if self.transport is not None:
            self.transport.abort()


class Http1Pool:
    """Keep-alive HTTP/1.1 connections per origin; every address is checked (SafeResolver) before use.

    Writes: requests are not written the moment they are ready but queued, and one callback
    (``call_soon``) writes everything queued in this turn of the event loop back to back. A lane
    encrypts for ~100 µs before it writes; written at once, every request found the push service's
    side idle and paid for waking it (on loopback that wake-up is charged to the sender's send
    syscall, ~40 µs per message on a 2-core VM). Written in a burst, only the first one does. The
    deadline still counts from :meth:`send`, so a queued request's wait is part of its timeout.

    Timeouts: instead of a timer per request (``asyncio.timeout`` costs a timer handle
    and its cancellation per message), the connections waiting for an answer are kept
    in ``_waiting`` and one watchdog timer, set for the earliest deadline, fails the
    late ones with ``TimeoutError``. Connecting (rare on keep-alive connections) has
    its own ``asyncio.timeout_at``.
    """

    def __init__(
        self,
        resolver: SafeResolver,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext],
        keepalive: float = KEEPALIVE,
    ) -> None:
        self.resolver = resolver
        #: The TLS context, or a function making it at the first https connection.
        self._ssl = ssl_context
        self.keepalive = keepalive
        self._idle: dict[str, list[_Connection]] = {}
        self._all: set[_Connection] = set()
        self._dns: dict[tuple[str, int], tuple[list[ResolveResult], float]] = {}
        self._origins: dict[str, tuple[str, str, int | None, bytes]] = {}
        self._waiting: set[_Connection] = set()
        self._watchdog: asyncio.TimerHandle | None = None
        self._watchdog_at = 0.0
        self._unsent: list[tuple[_Connection, bytes]] = []

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context for https origins (made on first use when the pool was given a function)."""
        if not isinstance(self._ssl, ssl.SSLContext):
            self._ssl = self._ssl()
        return self._ssl

    def request_head(self, endpoint: str, origin: str) -> bytes:
        """``POST <target> HTTP/1.1`` and ``Host``: how a request to ``endpoint`` (of ``origin``) starts."""
        target = endpoint[len(origin) :]
        if not target.startswith("/") or "#" in target:
            target = target.split("#", 1)[0] or "/"
            if not target.startswith("/"):
                target = "/" + target
        if "\n" in target or "\r" in target:
            raise ValueError("the endpoint contains a line break")
        return b"POST " + target.encode("latin-1") + b" HTTP/1.1\r\n" + self._parts(origin)[3]

    async def post(
        self,
        endpoint: str,
        origin: str,
        body: bytes,
        headers: dict[str, str],
        timeout: float | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """POST ``body`` to ``endpoint``; (status, lower-cased headers, body). Never follows redirects.

        ``origin`` is ``origin_of(endpoint)``; ``timeout`` bounds the whole exchange (``TimeoutError``).
        """
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if lines.count("\n") != len(headers) or "\r\r" in lines:
            raise ValueError("a header value contains a line break")
        return await self.send(
            origin,
            b"%s%sContent-Length: %d\r\n\r\n%s"
            % (self.request_head(endpoint, origin), lines.encode("latin-1"), len(body), body),
            timeout,
        )

    async def send(
        self, origin: str, request: bytes, timeout: float | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one complete request (head and body) to ``origin``; (status, lower-cased headers, body)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        for attempt in (1, 2):
            conn = self._take_idle(origin, loop)
            reused = conn is not None
            if conn is None:
                conn, reused = await self._acquire(origin, deadline)
            try:
                waiter = conn.start(loop)
                if not self._unsent:
                    loop.call_soon(self._flush)
                self._unsent.append((conn, request))
                if deadline is not None:
                    self._watch(conn, deadline, loop)
                try:
                    status, answer_headers, answer, keep = await waiter
                finally:
                    conn.waiter = None
                    self._waiting.discard(conn)
            except ConnectionError:
                conn.close()
                self._all.discard(conn)
                # A kept-alive connection the service had already closed: try once on a new one.
                if reused and not conn.got_bytes and attempt == 1:
                    continue
                raise
            except BaseException:
                conn.close()  # a timeout or cancel mid-request leaves the connection unusable
                self._all.discard(conn)
                raise
            if keep and conn.open:
                conn.idle_since = loop.time()
                self._idle.setdefault(origin, []).append(conn)
            else:
                conn.close()
                self._all.discard(conn)
            return status, answer_headers, answer
        raise ConnectionResetError("unreachable")  # pragma: no cover - the loop returns or raises

    def _flush(self) -> None:
        """Write the requests queued since the last flush, back to back (see the class docstring)."""
        unsent, self._unsent = self._unsent, []
        for conn, request in unsent:
            waiter = conn.waiter
            if waiter is None or waiter.done() or not conn.open:
                continue  # timed out, cancelled or disconnected before its turn: send() has dealt with it
            try:
                conn.transport.write(request)  # type: ignore[union-attr]
            except (RuntimeError, OSError) as exc:  # the transport closed under us
                waiter.set_exception(ConnectionResetError(f"cannot write the request: {exc}"))

    # -- the deadline watchdog ------------------------------------------------------------------------

    def _watch(self, conn: _Connection, deadline: float, loop: asyncio.AbstractEventLoop) -> None:
        conn.deadline = deadline
        self._waiting.add(conn)
        if self._watchdog is None or deadline < self._watchdog_at:
            if self._watchdog is not None:
                self._watchdog.cancel()
            self._watchdog_at = deadline
            self._watchdog = loop.call_at(deadline, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail the requests past their deadline; set the timer again for the next deadline."""
        self._watchdog = None
        now = loop.time()
        late = [conn for conn in self._waiting if conn.deadline <= now]
        for conn in late:
            self._waiting.discard(conn)
            waiter = conn.waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(TimeoutError())
        if self._waiting:
            self._watchdog_at = min(conn.deadline for conn in self._waiting)
            self._watchdog = loop.call_at(self._watchdog_at, self._expire, loop)

    # -- connections ----------------------------------------------------------------------------------

    def _parts(self, origin: str) -> tuple[str, str, int | None, bytes]:
        """(scheme, host, port, ``Host`` header line) of an origin, parsed once per origin."""
        parts = self._origins.get(origin)
        if parts is None:
            split = urlsplit(origin)
            if "\n" in split.netloc or "\r" in split.netloc:
                raise ValueError("the endpoint's host contains a line break")
            host_line = b"Host: " + split.netloc.encode("latin-1") + b"\r\n"
            parts = self._origins[origin] = (split.scheme, split.hostname or "", split.port, host_line)
        return parts

    def _take_idle(self, origin: str, loop: asyncio.AbstractEventLoop) -> _Connection | None:
        """A kept-alive connection to ``origin`` still fit for a request, or None."""
        idle = self._idle.get(origin)
        if idle:
            now = loop.time()
            while idle:
                conn = idle.pop()
                if conn.open and not conn.eof and now - conn.idle_since < self.keepalive:
                    return conn
                conn.close()
                self._all.discard(conn)
        return None

    async def _acquire(self, origin: str, deadline: float | None) -> tuple[_Connection, bool]:
        conn = self._take_idle(origin, asyncio.get_running_loop())
        if conn is not None:
            return conn, True
        async with asyncio.timeout_at(deadline):
            return await self._connect(*self._parts(origin)[:3]), False

    async def _connect(self, scheme: str, host: str, port: int | None) -> _Connection:
        tls = scheme == "https"
        port = port or (443 if tls else 80)
        addresses = await self._resolve(host, port)
        loop = asyncio.get_running_loop()
        error: OSError | None = None
        for address in addresses:
            try:
                _, conn = await loop.create_connection(
                    _Connection,
                    address["host"],
                    address["port"],
                    family=address["family"],
                    ssl=self.ssl_context if tls else None,
                    server_hostname=host if tls else None,
                )
            except OSError as exc:
                error = exc
                continue
            self._all.add(conn)
            return conn
        raise error or OSError(f"no address to connect to for {host}")

    async def _resolve(self, host: str, port: int) -> list[ResolveResult]:
        cached = self._dns.get((host, port))
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        results = await self.resolver.resolve(host, port, socket.AF_UNSPEC)
        self._dns[(host, port)] = (results, now + 60.0)
        return results

    async def close(self) -> None:
        """Close every connection and the resolver."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()
        self._waiting.clear()
        self._unsent.clear()
        await self.resolver.close()
