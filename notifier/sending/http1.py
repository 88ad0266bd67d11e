"""One keep-alive HTTP/1.1 connection on an asyncio protocol, carrying one push request at a time.

Push requests are tiny (one ~300-byte POST, an empty 201 back), so aiohttp's
general machinery cost more CPU per message than the encryption: this parses the
answer straight from the received bytes. Connections are made, reused and
closed by :class:`notifier.sending.pool.PushPool`; this module knows the wire
format only. HTTP/1.1 is what plain-HTTP origins and services whose ALPN
answer is ``http/1.1`` get; :mod:`notifier.sending.http2` serves the others.
"""

from __future__ import annotations

import asyncio

from notifier.sending.exchange import MAX_RESPONSE, Exchange, ResponseError
from notifier.sending.owner import ConnectionOwner

#: Seconds an idle keep-alive connection is reused (push services keep them for minutes).
KEEPALIVE = 60.0

_Parsed = tuple[int, dict[str, str], bytes, bool]


def request_bytes(exchange: Exchange, host_line: bytes) -> bytes:
    """The whole HTTP/1.1 request of ``exchange``: request line, ``Host``, shared fields, length, body."""
    body = exchange.body
    return b"POST %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n%s" % (
        exchange.target.encode("latin-1"),
        host_line,
        exchange.head.http1,
        len(body),
        body,
    )


class Http1Connection(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection of one origin; its pool hands it one exchange at a time."""

    protocol = "http/1.1"

    def __init__(self, origin: ConnectionOwner) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.exchange: Exchange | None = None
        self.open = False
        self.eof = False
        self.got_bytes = False
        self.reused = False  # the current exchange went on a connection that had answered before
        self.idle_since = 0.0

    # -- asyncio callbacks ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Connected (after the TLS handshake, for https)."""
        self.transport = transport  # type: ignore[assignment]
        self.open = True

    def data_received(self, data: bytes) -> None:
        """Collect the answer; finish the exchange once it is complete."""
        self.got_bytes = True
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        """The peer closed its side: an answer without length ends here."""
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail the exchange in progress unless its answer is already complete."""
        was_open, self.open, self.eof = self.open, False, True
        if self.exchange is not None and not self._wake():
            exchange, self.exchange = self.exchange, None
            self.origin.lost(
                self, exchange, exc or ConnectionResetError("the push service closed the connection")
            )
        elif was_open:
            self.origin.closed(self)

    # -- requests ---------------------------------------------------------------------------------------

    def start(self, exchange: Exchange, reused: bool) -> None:
        """Carry ``exchange`` (its bytes are written by the pool's burst writer)."""
        self.exchange = exchange
        exchange.conn = self
        self.got_bytes = False
        self.reused = reused

    def write(self, data: bytes) -> None:
        """Write a request now (the pool's burst writer calls this)."""
        try:
            self.transport.write(data)  # type: ignore[union-attr]
        except (RuntimeError, OSError) as exc:  # the transport closed under us
            self.connection_lost(ConnectionResetError(f"cannot write the request: {exc}"))

    def fit(self, now: float, keepalive: float) -> bool:
        """Whether this idle connection may carry another request."""
        return self.open and not self.eof and now - self.idle_since < keepalive

    def cancel(self, exchange: Exchange) -> None:
        """Give up on ``exchange`` (a timeout): the connection is unusable mid-answer, so drop it."""
        if self.exchange is exchange:
            self.exchange = None
        self.close()

    def close(self) -> None:
        """Drop the connection (aborted: an unfinished answer is of no use)."""
        self.open = False
        if self.transport is not None:
            self.transport.abort()

    # -- parsing ----------------------------------------------------------------------------------------

    def _wake(self) -> bool:
        exchange = self.exchange
        if exchange is None:
            return False
        try:
            parsed = self._parse()
        except (ValueError, IndexError) as exc:
            self.exchange = None
            self.open = False
            self.origin.lost(self, exchange, ResponseError(f"malformed response: {exc}"))
            return True
        if parsed is None:
            if len(self.buffer) > MAX_RESPONSE:
                self.exchange = None
                self.open = False
                self.origin.lost(self, exchange, ResponseError("response larger than 256 KiB"))
                return True
            return False
        self.exchange = None
        status, headers, body, keep = parsed
        self.origin.answered(self, exchange, status, headers, body, keep and self.open and not self.eof)
        return True

    def _parse(self) -> _Parsed | None:
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
