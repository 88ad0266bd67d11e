"""HTTP/2 for the simulator: push POSTs on streams of a TLS connection whose ALPN said ``h2`` (RFC 9113).

Real push services speak HTTP/2 to senders that offer it, so the simulator does
too: the sender's HTTP/2 client is tested against it, and the benchmark measures
it. Like the HTTP/1.1 fast path (:mod:`notifier_simulator.fastpath`) it is
written for the one request a campaign sends and for a small CPU cost per message
(the simulator shares the cores with the sender it measures): frames are parsed
here from the bytes, request headers are decoded on ``hpack``'s table (the dynamic table
is the client's to use), and answers are encoded as literals that never touch
the table, from constant pieces.

Served: ``POST /wpush/{token}`` (a push, through the same rules and checks as over
HTTP/1.1, latency holds and stalls included) and ``DELETE /wpush/{token}``. The
controls (``/_sim/...``) and Firefox's WebSocket stay on HTTP/1.1; another request
gets 404 saying so.

What a client must respect is enforced: ``SETTINGS_MAX_CONCURRENT_STREAMS`` (a stream
over it is refused with ``RST_STREAM(REFUSED_STREAM)``), stream ids, the connection
preface, CONTINUATION ordering and frame sizes (``GOAWAY(PROTOCOL_ERROR)`` /
``FRAME_SIZE_ERROR``); answers' DATA respect the client's flow-control windows. The
server's receive windows are opened wide and kept open.
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import hpack

from notifier.headerblocks import BlockDecoder
from notifier_simulator.fastpath import HeldAnswers

if TYPE_CHECKING:
    from notifier_simulator.routes import Routes
    from notifier_simulator.state import Outcome

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    range(10)
)
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 0x5, 0x6, 0x7, 0x8, 0x9

SETTINGS_HEADER_TABLE_SIZE, SETTINGS_ENABLE_PUSH, SETTINGS_MAX_CONCURRENT_STREAMS = 0x1, 0x2, 0x3
SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE = 0x4, 0x5, 0x6

#: Streams a client may have open at once unless configured otherwise (FCM announces 100).
DEFAULT_MAX_STREAMS = 100
#: Our receive window per stream and (topped up) for the connection.
_WINDOW = 1 << 20
_CONNECTION_WINDOW = (1 << 31) - 1
_MAX_FRAME = 16384
_FRAME = struct.Struct(">I B I")  # length (24 bits, in the top of the first word) | type | flags | stream
_PUSH_PATH = re.compile(r"/wpush/([A-Za-z0-9_-]{1,512})")
_MAX_BODY = 64 * 1024
_ELSEWHERE = "this simulator serves push requests over HTTP/2, its controls over HTTP/1.1"


def _frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes((kind, flags)) + struct.pack(">I", stream_id) + payload


def _integer(value: int, prefix_bits: int, first: int) -> bytes:
    """An HPACK integer (RFC 7541 5.1) with ``first``'s high bits in front of the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _literal(index: int, value: bytes) -> bytes:
    """A header field as a literal without indexing, its name from the static table (RFC 7541 6.2.2)."""
    return _integer(index, 4, 0x00) + _integer(len(value), 7, 0x00) + value


# Static table indices (RFC 7541 appendix A) of the names answers use.
_STATUS, _CONTENT_LENGTH, _CONTENT_TYPE, _DATE, _LOCATION, _RETRY_AFTER, _SERVER = 8, 28, 31, 33, 46, 53, 54
_INDEX_OF = {
    "content-length": _CONTENT_LENGTH, "content-type": _CONTENT_TYPE, "date": _DATE,
    "location": _LOCATION, "retry-after": _RETRY_AFTER, "server": _SERVER,
}  # fmt: skip
_SERVER_FIELD = _literal(_SERVER, b"notifier-simulator")
_CREATED = _literal(_STATUS, b"201")


class _Date:
    """The ``date`` field, encoded once a second."""

    second = -1
    field = b""

    @classmethod
    def get(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.field = _literal(_DATE, formatdate(now, usegmt=True).encode("ascii"))
            cls.second = now
        return cls.field


class _Stream:
    __slots__ = ("body", "closed", "headers", "send_window", "size")

    def __init__(self, headers: list[tuple[bytes, bytes]], send_window: int) -> None:
        self.headers = headers
        self.body: list[bytes] = []
        self.size = 0
        self.closed = False  # reset by the client, or answered
        self.send_window = send_window


class Http2PushProtocol(asyncio.Protocol):
    """One client connection that negotiated ``h2``: push streams answered as over HTTP/1.1."""

    def __init__(
        self,
        routes: Routes,
        held: HeldAnswers,
        connections: set[Any],
        *,
        max_streams: int = DEFAULT_MAX_STREAMS,
    ) -> None:
        self.routes = routes
        self.held = held
        self.connections = connections
        self.max_streams = max_streams
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.preface = False
        self.decoder = BlockDecoder()
        self.streams: dict[int, _Stream] = {}
        self.last_stream = 0
        self.continuing: tuple[int, int, bytearray] | None = None  # stream, flags, header block so far
        self.peer_window = 65535  # what the client lets us send on the connection
        self.peer_initial = 65535  # the client's SETTINGS_INITIAL_WINDOW_SIZE
        self.peer_frame = _MAX_FRAME
        self.received = 0  # DATA bytes since our last connection WINDOW_UPDATE
        self.blocked: list[tuple[int, bytes]] = []  # answer bodies waiting for flow-control credit
        self.out: list[bytes] = []
        self.flushing = False
        self.goaway = False

    # -- asyncio callbacks ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """ALPN said h2: our SETTINGS first (the server preface), and a wide connection window."""
        self.transport = transport  # type: ignore[assignment]
        self.connections.add(self)
        self.routes.sim.note_h2(connection=True)
        settings = struct.pack(
            ">HIHIHI",
            SETTINGS_MAX_CONCURRENT_STREAMS, self.max_streams,
            SETTINGS_INITIAL_WINDOW_SIZE, _WINDOW,
            SETTINGS_ENABLE_PUSH, 0,
        )  # fmt: skip
        self._send(_frame(SETTINGS, 0, 0, settings))
        self._send(_frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", _CONNECTION_WINDOW - 65535)))

    def connection_lost(self, exc: Exception | None) -> None:
        """The client left: streams still held are dropped when their time comes."""
        self.connections.discard(self)
        for stream in self.streams.values():
            stream.closed = True
        self.transport = None

    def data_received(self, data: bytes) -> None:
        """Parse every complete frame; answer the requests they complete."""
        buf = self.buffer
        buf += data
        if not self.preface:
            if len(buf) < len(PREFACE):
                if not PREFACE.startswith(bytes(buf)):
                    self._abort(PROTOCOL_ERROR, b"no HTTP/2 connection preface")
                return
            if buf[: len(PREFACE)] != PREFACE:
                self._abort(PROTOCOL_ERROR, b"no HTTP/2 connection preface")
                return
            del buf[: len(PREFACE)]
            self.preface = True
        pos = 0
        size = len(buf)
        while size - pos >= 9 and self.transport is not None:
            head, flags, stream_id = _FRAME.unpack_from(buf, pos)
            length, kind = head >> 8, head & 0xFF
            stream_id &= 0x7FFFFFFF
            if length > _MAX_FRAME:
                self._abort(FRAME_SIZE_ERROR, b"frame larger than SETTINGS_MAX_FRAME_SIZE")
                return
            if size - pos - 9 < length:
                break
            payload = bytes(buf[pos + 9 : pos + 9 + length])
            pos += 9 + length
            self._frame(kind, flags, stream_id, payload)
        del buf[:pos]

    # -- frames -----------------------------------------------------------------------------------------

    def _frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if self.continuing is not None and kind != CONTINUATION:
            self._abort(PROTOCOL_ERROR, b"a header block must be followed by its CONTINUATION frames")
            return
        if kind == HEADERS:
            self._headers(flags, stream_id, payload)
        elif kind == DATA:
            self._data(flags, stream_id, payload)
        elif kind == CONTINUATION:
            self._continuation(flags, stream_id, payload)
        elif kind == SETTINGS:
            self._settings(flags, stream_id, payload)
        elif kind == WINDOW_UPDATE:
            self._window_update(stream_id, payload)
        elif kind == RST_STREAM:
            stream = self.streams.pop(stream_id, None)
            if stream is not None:
                stream.closed = True
        elif kind == PING:
            if len(payload) != 8:
                self._abort(FRAME_SIZE_ERROR, b"PING payload must be 8 bytes")
            elif not flags & ACK:
                self._send(_frame(PING, ACK, 0, payload))
        elif kind == GOAWAY:
            self.goaway = True
        elif kind == PUSH_PROMISE:
            self._abort(PROTOCOL_ERROR, b"a client must not send PUSH_PROMISE")
        # PRIORITY and unknown frame types are ignored (RFC 9113 5.5).

    def _headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0 or stream_id % 2 == 0:
            self._abort(PROTOCOL_ERROR, b"client streams have odd ids")
            return
        start, end = 0, len(payload)
        if flags & PADDED:
            if not payload:
                self._abort(PROTOCOL_ERROR, b"padded HEADERS without a pad length")
                return
            start, end = 1, len(payload) - payload[0]
        if flags & PRIORITY_FLAG:
            start += 5
        if start > end:
            self._abort(PROTOCOL_ERROR, b"HEADERS padding exceeds the frame")
            return
        block = bytearray(payload[start:end])
        if flags & END_HEADERS:
            self._header_block(stream_id, flags, bytes(block))
        else:
            self.continuing = (stream_id, flags, block)

    def _continuation(self, flags: int, stream_id: int, payload: bytes) -> None:
        if self.continuing is None or self.continuing[0] != stream_id:
            self._abort(PROTOCOL_ERROR, b"CONTINUATION without its HEADERS")
            return
        block = self.continuing[2]
        block += payload
        if len(block) > _MAX_BODY:
            self._abort(PROTOCOL_ERROR, b"header block too large")
            return
        if flags & END_HEADERS:
            first_flags = self.continuing[1]
            self.continuing = None
            self._header_block(stream_id, first_flags, bytes(block))

    def _header_block(self, stream_id: int, flags: int, block: bytes) -> None:
        try:
            # Decoded even for a stream we refuse: the client's HPACK table moves on either way.
            headers = self.decoder.decode(block, raw=True)
        except hpack.HPACKError:
            self._abort(COMPRESSION_ERROR, b"cannot decode the header block")
            return
        if stream_id in self.streams:
            return  # trailers on a request stream: nothing the simulator needs
        if stream_id <= self.last_stream:
            self._abort(PROTOCOL_ERROR, b"stream ids must increase")
            return
        self.last_stream = stream_id
        if self.goaway:
            self._send(_frame(RST_STREAM, 0, stream_id, struct.pack(">I", REFUSED_STREAM)))
            return
        # Open streams are those not closed; closed ones stay only while an answer's body is sent, so a
        # connection with fewer streams than the limit needs no count (a walk per stream cost ~4 us at 100).
        if len(self.streams) >= self.max_streams and (
            sum(1 for s in self.streams.values() if not s.closed) >= self.max_streams
        ):
            # Over SETTINGS_MAX_CONCURRENT_STREAMS: not processed, the client may send it again.
            self._send(_frame(RST_STREAM, 0, stream_id, struct.pack(">I", REFUSED_STREAM)))
            return
        stream = _Stream(headers, self.peer_initial)  # type: ignore[arg-type]
        self.streams[stream_id] = stream
        if flags & END_STREAM:
            self._request(stream_id, stream)

    def _data(self, flags: int, stream_id: int, payload: bytes) -> None:
        self.received += len(payload)
        if self.received > _CONNECTION_WINDOW // 2:
            self._send(_frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", self.received)))
            self.received = 0
        stream = self.streams.get(stream_id)
        if stream is None:
            if stream_id > self.last_stream or stream_id == 0:
                self._abort(PROTOCOL_ERROR, b"DATA on an idle stream")
            return  # a stream we refused or reset: its data is dropped
        start, end = 0, len(payload)
        if flags & PADDED:
            if not payload or payload[0] >= len(payload):
                self._abort(PROTOCOL_ERROR, b"DATA padding exceeds the frame")
                return
            start, end = 1, len(payload) - payload[0]
        stream.size += end - start
        if stream.size > _MAX_BODY:
            self._reset(stream_id, CANCEL)
            return
        stream.body.append(payload[start:end])
        if flags & END_STREAM:
            self._request(stream_id, stream)

    def _settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id != 0 or len(payload) % 6:
            self._abort(PROTOCOL_ERROR if stream_id else FRAME_SIZE_ERROR, b"malformed SETTINGS")
            return
        if flags & ACK:
            return
        for offset in range(0, len(payload), 6):
            code, value = struct.unpack_from(">HI", payload, offset)
            if code == SETTINGS_INITIAL_WINDOW_SIZE:
                if value > _CONNECTION_WINDOW:
                    self._abort(FLOW_CONTROL_ERROR, b"initial window too large")
                    return
                delta = value - self.peer_initial
                self.peer_initial = value
                for stream in self.streams.values():
                    stream.send_window += delta
            elif code == SETTINGS_MAX_FRAME_SIZE:
                if not _MAX_FRAME <= value <= (1 << 24) - 1:
                    self._abort(PROTOCOL_ERROR, b"bad SETTINGS_MAX_FRAME_SIZE")
                    return
                self.peer_frame = value
        self._send(_frame(SETTINGS, ACK, 0))
        self._unblock()

    def _window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            self._abort(FRAME_SIZE_ERROR, b"WINDOW_UPDATE payload must be 4 bytes")
            return
        increment = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
        if stream_id == 0:
            self.peer_window += increment
        else:
            stream = self.streams.get(stream_id)
            if stream is not None:
                stream.send_window += increment
        self._unblock()

    # -- requests and answers ---------------------------------------------------------------------------

    def _request(self, stream_id: int, stream: _Stream) -> None:
        method = path = b""
        headers: dict[str, str] = {}
        for name, value in stream.headers:
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif not name.startswith(b":"):
                key = name.decode("latin-1")
                if key not in headers:
                    headers[key] = value.decode("latin-1")
        body = b"".join(stream.body)
        stream.body = []
        found = _PUSH_PATH.fullmatch(path.decode("latin-1"))
        if found is None:
            self._answer_error(stream_id, 404, _ELSEWHERE)
            return
        token = found.group(1)
        if method == b"DELETE":
            if self.routes.sim.unsubscribe(self.routes.sim.origin + "/wpush/" + token):
                self._respond(stream_id, _literal(_STATUS, b"204") + _Date.get() + _SERVER_FIELD, b"")
            else:
                self._answer_error(stream_id, 404, "no such subscription")
            return
        if method != b"POST":
            self._answer_error(stream_id, 405, "push messages are POSTed")
            return
        self.routes.push_h2(
            token,
            headers,
            body,
            lambda outcome, hold: self._answer(stream_id, outcome, hold),
            lambda: self._wanted(stream_id),
        )

    def _wanted(self, stream_id: int) -> bool:
        """Whether the client still waits for this stream's answer (a stall asks before handling it)."""
        stream = self.streams.get(stream_id)
        return stream is not None and not stream.closed and self.transport is not None

    def _answer(self, stream_id: int, outcome: Outcome | None, hold: float) -> None:
        """The routes decided (``None``: the client gave up while a stall held it)."""
        if outcome is None:
            return
        if hold > 0:
            self.held.at(self.held.loop.time() + hold, self._answer_now, (stream_id, outcome))
        else:
            self._answer_now((stream_id, outcome))

    def _answer_now(self, item: tuple[int, Outcome]) -> None:
        stream_id, outcome = item
        if outcome.status == 201 and len(outcome.headers) == 1 and "Location" in outcome.headers:
            block = _CREATED + _literal(_LOCATION, outcome.headers["Location"].encode("latin-1"))
            self._respond(stream_id, block + _Date.get() + _SERVER_FIELD, b"")
            return
        body = b"" if outcome.status == 201 else json.dumps(outcome.error_body()).encode()
        self._respond(stream_id, self._block(outcome.status, outcome.headers, body), body)

    def _answer_error(self, stream_id: int, status: int, message: str) -> None:
        body = json.dumps({"code": status, "error": HTTPStatus(status).phrase, "message": message}).encode()
        self._respond(stream_id, self._block(status, {}, body), body)

    def _block(self, status: int, headers: Any, body: bytes) -> bytes:
        parts = [_literal(_STATUS, str(status).encode("ascii"))]
        for name, value in headers.items():
            lower = name.lower()
            index = _INDEX_OF.get(lower)
            encoded = value.encode("latin-1")
            if index is not None:
                parts.append(_literal(index, encoded))
            else:  # a literal name, without indexing
                raw = lower.encode("latin-1")
                parts.append(
                    b"\x00" + _integer(len(raw), 7, 0) + raw + _integer(len(encoded), 7, 0) + encoded
                )
        if body:
            parts.append(_literal(_CONTENT_TYPE, b"application/json; charset=utf-8"))
            parts.append(_literal(_CONTENT_LENGTH, str(len(body)).encode("ascii")))
        parts.append(_Date.get())
        parts.append(_SERVER_FIELD)
        return b"".join(parts)

    def _respond(self, stream_id: int, block: bytes, body: bytes) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.closed or self.transport is None:
            return  # reset by the client (or it left) while the answer was held: the answer is lost
        if not body:
            del self.streams[stream_id]
            self._send(_frame(HEADERS, END_HEADERS | END_STREAM, stream_id, block))
            return
        self._send(_frame(HEADERS, END_HEADERS, stream_id, block))
        stream.closed = True  # no new request data is read for it; the body follows as credit allows
        self.blocked.append((stream_id, body))
        self._unblock()

    def _unblock(self) -> None:
        if not self.blocked:
            return
        waiting = []
        for stream_id, body in self.blocked:
            stream = self.streams.get(stream_id)
            if stream is None:
                continue
            allowed = min(self.peer_window, stream.send_window, self.peer_frame)
            if allowed < len(body):
                if allowed > 0:
                    self._send(_frame(DATA, 0, stream_id, body[:allowed]))
                    self.peer_window -= allowed
                    stream.send_window -= allowed
                    body = body[allowed:]
                waiting.append((stream_id, body))
                continue
            self._send(_frame(DATA, END_STREAM, stream_id, body))
            self.peer_window -= len(body)
            del self.streams[stream_id]
        self.blocked = waiting

    def _reset(self, stream_id: int, code: int) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            stream.closed = True
        self._send(_frame(RST_STREAM, 0, stream_id, struct.pack(">I", code)))

    # -- writing and closing ----------------------------------------------------------------------------

    def _send(self, frame: bytes) -> None:
        self.out.append(frame)
        if not self.flushing:
            self.flushing = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self.flushing = False
        out, self.out = self.out, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))

    def _abort(self, code: int, reason: bytes) -> None:
        """A connection error (RFC 9113 5.4.1): GOAWAY with ``code``, then close."""
        if self.transport is None:
            return
        self.out.append(_frame(GOAWAY, 0, 0, struct.pack(">II", self.last_stream, code) + reason))
        self._flush()
        self.transport.close()
        self.transport = None

    def close(self) -> None:
        """Shutting down: GOAWAY(NO_ERROR) and drop the connection."""
        if self.transport is not None:
            self.out.append(_frame(GOAWAY, 0, 0, struct.pack(">II", self.last_stream, NO_ERROR)))
            self._flush()
            self.transport.abort()


def make_h2(
    routes: Routes, held: HeldAnswers, connections: set[Any], max_streams: int
) -> Callable[[], Http2PushProtocol]:
    """A factory of HTTP/2 protocols sharing the server's routes, held answers and connection set."""
    return lambda: Http2PushProtocol(routes, held, connections, max_streams=max_streams)
