"""The simulator's hot path: push POSTs parsed and answered straight from a keep-alive connection's bytes.

aiohttp's per-request machinery (request and response objects, routing, the
writer) cost the simulator ~100 µs of CPU per push message, on the same cores
as the sender it measures. :class:`PushProtocol` serves the one request a
campaign sends, ``POST /wpush/{token} HTTP/1.1`` with a ``Content-Length``
body, with a minimal parser and a pre-formatted answer; it hands the
connection (with every byte not yet answered) to aiohttp's request handler at
the first request that is anything else: a control endpoint, a WebSocket
upgrade, a ``DELETE``, a chunked or oversized body, ``Expect``, ``Connection:
close``, or a push while a ``stall`` rule exists. So the general server keeps
every behaviour it had, and the connection stays with it from then on.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from notifier_simulator.state import Outcome

#: ``POST /wpush/{token} HTTP/1.1``: tokens are base64url; anything else goes to aiohttp.
_PUSH_LINE = re.compile(rb"POST /wpush/([A-Za-z0-9_-]{1,512}) HTTP/1\.1\r\n")
#: A request head longer than this without its blank line is not a push: aiohttp answers it.
_MAX_HEAD = 16 * 1024
#: Request headers that change the framing or the connection: such a request goes to aiohttp.
_FRAMING = frozenset({"transfer-encoding", "expect", "upgrade"})
_SERVER = b"Server: notifier-simulator\r\n"


class _Date:
    """The ``Date`` header, formatted once a second."""

    second = -1
    line = b""

    @classmethod
    def header(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.line = b"Date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
            cls.second = now
        return cls.line


def response_bytes(outcome: Outcome, keep_alive: bool = True) -> bytes:
    """The whole HTTP/1.1 answer to a push: 201 with ``Location``, or the JSON error body."""
    headers = outcome.headers
    if outcome.status == 201 and keep_alive and len(headers) == 1 and "Location" in headers:
        return b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nLocation: %s\r\n%s%s\r\n" % (
            headers["Location"].encode("latin-1"),
            _Date.header(),
            _SERVER,
        )
    if outcome.status == 201:
        body = b""
        head = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n"
    else:
        body = json.dumps(outcome.error_body()).encode()
        head = (
            f"HTTP/1.1 {outcome.status} {HTTPStatus(outcome.status).phrase}\r\n"
            f"Content-Type: application/json; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        ).encode("latin-1")
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    if not keep_alive:
        extra += "Connection: close\r\n"
    return b"".join((head, extra.encode("latin-1"), _Date.header(), _SERVER, b"\r\n", body))


def alpn_protocol(transport: asyncio.BaseTransport) -> str | None:
    """What ALPN chose on ``transport`` (None for plain TCP, or when the client offered none)."""
    ssl_object = transport.get_extra_info("ssl_object")
    return ssl_object.selected_alpn_protocol() if ssl_object is not None else None


class HeldAnswers:
    """Answers a latency rule holds, each run when due: one timer per millisecond of due time.

    A timer per held answer would cost the simulator a timer handle per message at thousands of
    messages a second; answers due in the same millisecond share one.
    """

    __slots__ = ("buckets", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.buckets: dict[int, list[tuple[Callable[[Any], None], Any]]] = {}

    def at(self, due: float, callback: Callable[[Any], None], argument: Any) -> None:
        """Run ``callback(argument)`` at loop time ``due`` (rounded up to the millisecond)."""
        key = math.ceil(due * 1000)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = []
            self.loop.call_at(key / 1000, self._run, key)
        bucket.append((callback, argument))

    def _run(self, key: int) -> None:
        for callback, argument in self.buckets.pop(key, ()):
            callback(argument)


class PushProtocol(asyncio.Protocol):
    """One client connection: push POSTs answered here, anything else handed to aiohttp for good.

    ``answer(token, headers, body)`` returns the response bytes and how long to hold them
    (a latency rule), or None when the request must go to aiohttp (it then has had no
    effect); ``fallback()`` makes aiohttp's protocol for the connection; ``connections``
    holds the connections still served here (closed at shutdown). Held answers are written
    in request order (HTTP/1.1 answers a pipelining client in order): an answer never
    overtakes one held before it on the same connection, and a hand-over to aiohttp waits
    until every held answer is written.
    """

    __slots__ = (
        "answer", "buffer", "connections", "fallback", "held", "held_until", "http2", "max_body", "stash",
        "transport", "waiting",
    )  # fmt: skip

    def __init__(
        self,
        answer: Callable[[str, dict[str, str], bytes], tuple[bytes, float] | None],
        fallback: Callable[[], asyncio.Protocol],
        connections: set[PushProtocol],
        max_body: int,
        held: HeldAnswers | None = None,
        http2: Callable[[], asyncio.Protocol] | None = None,
    ) -> None:
        self.http2 = http2
        self.answer = answer
        self.fallback = fallback
        self.connections = connections
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.max_body = max_body
        self.held = held
        self.held_until = 0.0  # loop time the last held answer of this connection is written
        self.waiting = 0  # held answers not written yet
        self.stash: bytes | None = None  # bytes for aiohttp, waiting for the held answers before them

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """A client connected (over TLS: the handshake is done; ALPN ``h2`` goes to the HTTP/2 server)."""
        if self.http2 is not None and alpn_protocol(transport) == "h2":
            protocol = self.http2()
            transport.set_protocol(protocol)
            protocol.connection_made(transport)
            return
        self.transport = transport  # type: ignore[assignment]
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """The client left (or we closed it)."""
        self.connections.discard(self)
        self.transport = None

    def eof_received(self) -> bool:
        """The client closed its side: close ours (unanswered partial requests are dropped)."""
        return False

    def data_received(self, data: bytes) -> None:
        """Answer every complete push request in the buffer; hand over at the first other request."""
        if self.stash is not None:
            self.stash += data
            return
        if self.buffer:
            data = self.buffer + data
            self.buffer = b""
        transport = self.transport
        if transport is None:
            return
        pos = 0
        size = len(data)
        while pos < size:
            end = data.find(b"\r\n\r\n", pos)
            if end < 0:
                if size - pos > _MAX_HEAD:
                    self._hand_over(data[pos:])
                    return
                break
            line = _PUSH_LINE.match(data, pos)
            if line is None or line.end() > end + 2:
                self._hand_over(data[pos:])
                return
            headers: dict[str, str] = {}
            if line.end() < end:
                for field in data[line.end() : end].decode("latin-1").split("\r\n"):
                    name, colon, value = field.partition(":")
                    if not colon:
                        self._hand_over(data[pos:])
                        return
                    name = name.lower()
                    if name not in headers:
                        headers[name] = value.strip()
            length_text = headers.get("content-length", "0")
            connection = headers.get("connection")
            if (
                not length_text.isdigit()
                or (connection is not None and connection.lower() != "keep-alive")
                or not _FRAMING.isdisjoint(headers)
            ):
                self._hand_over(data[pos:])
                return
            length = int(length_text)
            if length > self.max_body:
                self._hand_over(data[pos:])
                return
            start = end + 4
            if size < start + length:
                break  # the body is still on its way
            answer = self.answer(line.group(1).decode("ascii"), headers, data[start : start + length])
            if answer is None:
                self._hand_over(data[pos:])
                return
            response, hold = answer
            if hold > 0 or self.waiting:
                self._hold(response, hold)
            else:
                transport.write(response)
            pos = start + length
        if pos < size:
            self.buffer = data[pos:]

    def _hold(self, response: bytes, hold: float) -> None:
        """Write ``response`` after ``hold`` seconds, and never before an answer held earlier."""
        held = self.held
        assert held is not None, "a latency rule needs the server's HeldAnswers"
        now = held.loop.time()
        due = max(now + hold, self.held_until)
        self.held_until = due
        self.waiting += 1
        held.at(due, self._write_held, response)

    def _write_held(self, response: bytes) -> None:
        self.waiting -= 1
        transport = self.transport
        if transport is None or transport.is_closing():
            return  # the client left: like a real service, the message was taken, the answer is lost
        transport.write(response)
        if not self.waiting:
            self.held_until = 0.0
            if self.stash is not None:
                stash, self.stash = self.stash, None
                self._hand_over(stash)

    def _hand_over(self, unanswered: bytes) -> None:
        if self.waiting:
            self.stash = unanswered  # aiohttp answers it once the held answers before it are out
            return
        transport = self.transport
        assert transport is not None
        self.connections.discard(self)
        self.transport = None
        protocol = self.fallback()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if unanswered:
            protocol.data_received(unanswered)

    def close(self) -> None:
        """Drop the connection (shutdown)."""
        if self.transport is not None:
            self.transport.abort()
