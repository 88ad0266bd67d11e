"""One push request and its answer, the header set requests share, and the deadline watchdog.

The clients (:mod:`notifier.sending.http1`, :mod:`notifier.sending.http2`) carry
:class:`Exchange` objects and finish each exactly once, with an answer or an
error, by calling its ``done`` callback: no coroutine or future per message (at
thousands of messages a second, a task step per message was a visible share of
the sender's CPU).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

#: Largest response (head + body) read from a push service; error bodies are a few hundred bytes.
MAX_RESPONSE = 256 * 1024


class ResponseError(ConnectionError):
    """The push service answered something that is not a well-formed HTTP response."""


class HeadFields:
    """The header fields after ``Host``/``:authority`` that many requests share, in both wire forms.

    ``http1`` is the header lines (``Name: value\\r\\n`` ...) without ``Content-Length``;
    ``http2`` the same fields as lower-case ``(name, value)`` byte pairs for HPACK. A
    value with a line break is refused here, once, not per request.
    """

    __slots__ = ("http1", "http2")

    def __init__(self, fields: Mapping[str, str] | list[tuple[str, str]]) -> None:
        pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
        lines = []
        for name, value in pairs:
            if any(c in name or c in value for c in "\r\n\0") or ":" in name or not name:
                raise ValueError("a header name or value contains a line break or is malformed")
            lines.append(f"{name}: {value}\r\n")
        self.http1 = "".join(lines).encode("latin-1")
        self.http2 = tuple((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs)


class Exchange:
    """One request (``target`` on an origin, shared ``head``, ``body``) and, once over, its answer.

    ``done(exchange)`` is called exactly once: with ``status``/``headers``/``answer`` set, or with
    ``error`` (``TimeoutError``, a ``ConnectionError``, ``OSError``, ``UnsafeEndpoint``...).
    ``context`` is the caller's (the sender keeps its message there).
    """

    __slots__ = (
        "answer", "body", "conn", "context", "deadline", "done", "error", "finished", "head", "headers",
        "replays", "started", "status", "stream_id", "target", "timeout", "waiter",
    )  # fmt: skip

    def __init__(
        self,
        target: str,
        head: HeadFields,
        body: bytes,
        done: Callable[[Exchange], Any],
        timeout: float | None = None,
        context: Any = None,
    ) -> None:
        self.target = target
        self.head = head
        self.body = body
        self.done = done
        self.timeout = timeout
        self.context = context
        self.deadline = 0.0  # loop time: set when submitted (0: no deadline)
        self.started = 0.0  # loop time it was submitted
        self.status = 0
        self.headers: dict[str, str] = {}
        self.answer = b""
        self.error: BaseException | None = None
        self.finished = False
        self.conn: Any = None  # the connection carrying it, None while it waits for one
        self.stream_id = 0
        self.replays = 0  # times it was put back unsent (a stale keep-alive, a GOAWAY, REFUSED_STREAM)
        self.waiter: asyncio.Future[Any] | None = None  # a coroutine awaiting it (PushPool.exchange)

    def finish(self, status: int, headers: dict[str, str], answer: bytes) -> None:
        """The answer came: call ``done`` (once)."""
        if self.finished:
            return
        self.finished = True
        self.conn = None
        self.status, self.headers, self.answer = status, headers, answer
        self.done(self)

    def fail(self, error: BaseException) -> None:
        """No answer: call ``done`` with ``error`` (once)."""
        if self.finished:
            return
        self.finished = True
        self.conn = None
        self.error = error
        self.done(self)


def request_target(endpoint: str, origin: str) -> str:
    """The request target (path and query) of ``endpoint`` on ``origin``; no fragment, no line break."""
    target = endpoint[len(origin) :]
    if not target.startswith("/") or "#" in target:
        target = target.split("#", 1)[0] or "/"
        if not target.startswith("/"):
            target = "/" + target
    if "\n" in target or "\r" in target or " " in target:
        raise ValueError("the endpoint contains a space or a line break")
    return target


class Deadlines:
    """One timer for every exchange in flight: late ones get ``TimeoutError`` through ``expire``.

    A timer per request (``asyncio.timeout``) costs a timer handle and its cancellation per
    message. Exchanges with the same timeout reach their deadlines in the order they were
    submitted, so each timeout value keeps a FIFO: the watchdog looks at the heads only,
    drops the finished ones and expires the late ones.
    """

    __slots__ = ("_at", "_expire", "_handle", "_lines", "_loop")

    def __init__(self, expire: Callable[[Exchange], None]) -> None:
        self._expire = expire
        self._lines: dict[float, deque[Exchange]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, exchange: Exchange, loop: asyncio.AbstractEventLoop, now: float) -> None:
        """Give ``exchange`` its deadline (``timeout`` from ``now``) and watch it."""
        timeout = exchange.timeout
        if timeout is None:
            return
        exchange.deadline = deadline = now + timeout
        line = self._lines.get(timeout)
        if line is None:
            line = self._lines[timeout] = deque()
        # Answered ones leave from the head as new ones join: the line holds about what is in flight, not
        # every exchange of the last ``timeout`` seconds (at 5,000 a second and 10 s, 50,000 exchanges
        # with their bodies and messages: 150 MB of a worker's memory).
        while line and line[0].finished:
            line.popleft()
        line.append(exchange)
        if self._handle is None or deadline < self._at:
            if self._handle is not None:
                self._handle.cancel()
            self._loop = loop
            self._at = deadline
            self._handle = loop.call_at(deadline, self._run)

    def _run(self) -> None:
        self._handle = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        earliest = 0.0
        for line in list(self._lines.values()):  # an expiry's callback may submit a new exchange
            while line:
                head = line[0]
                if head.finished:
                    line.popleft()
                elif head.deadline <= now:
                    line.popleft()
                    self._expire(head)
                else:
                    if not earliest or head.deadline < earliest:
                        earliest = head.deadline
                    break
        if earliest:
            if self._handle is not None:  # set by a watch() from an expiry's callback
                if self._at <= earliest:
                    return
                self._handle.cancel()
            self._at = earliest
            self._handle = loop.call_at(earliest, self._run)

    def __len__(self) -> int:
        """Exchanges watched now (answered ones still in a line included, until they reach its head)."""
        return sum(len(line) for line in self._lines.values())

    def close(self) -> None:
        """Stop watching."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._lines.clear()
