"""One HTTP/2 connection on an asyncio protocol, framed by the sans-IO ``h2`` library: many push streams.

FCM, Mozilla autopush and Apple negotiate ``h2`` by ALPN; one connection then
carries many concurrent streams, so a worker keeps hundreds of messages in
flight over a handful of connections, and one write (one TLS record, one
syscall) carries every request the sender prepared in an event-loop turn.

What the server says is respected (RFC 9113):

- ``SETTINGS_MAX_CONCURRENT_STREAMS``: never more streams open than it allows; no stream
  is opened before its first SETTINGS frame (the first thing a server sends) says how many;
  :meth:`room` tells the pool how many more.
- ``GOAWAY``: no new stream; streams above ``last_stream_id`` were not processed
  and go back to the pool to be sent again; the others run to their end, then the
  connection closes.
- ``RST_STREAM``: ``REFUSED_STREAM`` means "not processed": sent again; any other
  code fails that message only.
- Flow control: a body is sent when the stream's and the connection's windows
  allow it, the rest when ``WINDOW_UPDATE`` opens them; received DATA is
  acknowledged so the server's windows reopen.

The ``h2`` state machines, windows and settings are used as they are, with five
economies for a client that opens a stream per message (each once a
measured share of the sender's CPU; together they took the h2 client's cost
from ~50 to ~17 µs a message, measured alone):

- the count of open streams is kept here (h2 counts by walking every stream at
  each new one);
- request paths are sent as never-indexed literals without Huffman coding (each is
  different: indexing them would only churn HPACK's dynamic table, and
  Huffman-coding 150 characters in Python costs more than the bytes it saves), and
  the other fields' encoded bytes are reused while HPACK's table holds still;
- a push request's HEADERS and DATA go through h2's connection and stream state
  machines and windows in one call (:meth:`_H2.send_request`), written as bytes,
  not built as hyperframe objects and walked through header checks the
  configuration turns off;
- an answer that is one HEADERS frame ending its stream (a 201, most of what comes
  back) goes through the same state machines and gives h2's own events
  (:meth:`_H2.receive_answers`); every other frame is h2's to parse, in order;
- header blocks are decoded in one pass
  (:class:`notifier.headerblocks.BlockDecoder`), with hpack's own table,
  limits and errors (hpack's decoder copies the rest of the block for each field).
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.connection import AllowedStreamIDs, ConnectionInputs
from h2.errors import ErrorCodes
from h2.stream import StreamInputs, StreamState
from hpack import Encoder, NeverIndexedHeaderTuple
from hpack.hpack import encode_integer
from hpack.table import HeaderTable

from notifier.headerblocks import BlockDecoder
from notifier.sending.exchange import MAX_RESPONSE, Exchange, ResponseError
from notifier.sending.owner import ConnectionOwner

_CONFIG = h2.config.H2Configuration(
    client_side=True,
    header_encoding=None,
    # Headers are built here from validated parts (HeadFields refuses line breaks); h2's per-field
    # validation and normalisation of our own requests would only cost CPU per message. An answer's
    # fields are only read (the status must parse as an integer, Retry-After is parsed like any
    # other input): h2's checks of their form (~5 us a message here) protect nothing.
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
    validate_inbound_headers=False,
    normalize_inbound_headers=False,
)
_METHOD = (b":method", b"POST")
_SCHEME = (b":scheme", b"https")
_PATH = b":path"
_STATUS = b":status"
#: "Literal header field never indexed" (0001) with the name ``:path``: static table index 4.
_NEVER_INDEXED_PATH = b"\x14"
#: A frame header (RFC 9113 4.1): length (24 bits) and type in the first word, flags, stream id.
_FRAME_HEAD = struct.Struct(">IBI")
_DATA, _HEADERS, _PUSH_PROMISE, _CONTINUATION = 0x0, 0x1, 0x5, 0x9
_END_STREAM, _END_HEADERS, _PADDED, _PRIORITY = 0x1, 0x4, 0x8, 0x20
#: A whole push answer in one HEADERS frame: the end of its headers and of its stream, nothing else.
_ANSWER_FLAGS = _END_STREAM | _END_HEADERS


class _Table(HeaderTable):
    """HPACK's dynamic table, counting the entries added (indices shift with each)."""

    def __init__(self) -> None:
        super().__init__()
        self.added = 0

    def add(self, name: bytes, value: bytes) -> None:
        """Add an entry (and count it)."""
        self.added += 1
        super().add(name, value)


class _Encoder(Encoder):
    """HPACK without Huffman coding, remembering the encoded fields every request repeats.

    A push request's literals are paths and tokens, not prose: Huffman-coding them in Python
    costs more than the bytes it saves. Of its fields only ``:path`` differs from request to
    request; once the others are in the dynamic table they encode as the same index bytes,
    as long as the table does not change. So the fields before and after ``:path`` are
    encoded by hpack as usual, and their bytes reused while the table holds still: ``:path``
    is sent never-indexed (it adds nothing), and a table size change or an entry added by
    any other block ends the memo.
    """

    def __init__(self) -> None:
        super().__init__()
        self.header_table = _Table()
        self._memo: dict[tuple[tuple[Any, ...], tuple[Any, ...]], tuple[tuple[int, int], bytes, bytes]] = {}

    def encode(self, headers, huffman=True):  # type: ignore[no-untyped-def]
        """Encode ``headers`` (never Huffman-coded), a request's constant fields from the memo."""
        if self.table_size_changes or len(headers) < 4 or headers[3][0] != _PATH:
            return super().encode(headers, huffman=False)
        table = self.header_table
        state = (table.added, table.maxsize)
        key = (tuple(headers[:3]), tuple(headers[4:]))
        # :path never indexed, its name from the static table (RFC 7541 6.2.3), the value as it is.
        value = headers[3][1]
        path = _NEVER_INDEXED_PATH + bytes(encode_integer(len(value), 7)) + value
        cached = self._memo.get(key)
        if cached is not None and cached[0] == state:
            return cached[1] + path + cached[2]
        before = super().encode(key[0], huffman=False)
        after = super().encode(key[1], huffman=False)
        if (table.added, table.maxsize) == state:  # all were indexed already: these bytes hold
            if len(self._memo) >= 64:
                self._memo.clear()
            self._memo[key] = (state, before, after)
        return before + path + after


class _H2(h2.connection.H2Connection):
    """h2's connection, with the count of open streams kept by the protocol that owns it."""

    def __init__(self, owner: Http2Connection) -> None:
        super().__init__(config=_CONFIG)
        self.encoder = _Encoder()
        decoder = BlockDecoder()
        decoder.max_header_list_size = self.decoder.max_header_list_size
        decoder.max_allowed_table_size = self.decoder.max_allowed_table_size
        self.decoder = decoder
        self._owner = owner
        self._opened = 0
        self._pending = bytearray()  # received bytes that are not a whole frame yet
        self._in_header_block = False  # h2 was given a HEADERS without END_HEADERS: CONTINUATION follows

    @property
    def open_outbound_streams(self) -> int:  # type: ignore[override]
        """Streams we opened and that are not closed (h2 walks all its streams to count them)."""
        self._opened += 1
        if not self._opened & 63:
            # h2 forgets its closed streams while it counts: let it, once every 64 new streams.
            super().open_outbound_streams  # noqa: B018
        return len(self._owner.streams)

    def send_request(self, stream_id: int, fields: list[Any], authority: bytes, body: bytes) -> bool:
        """Open ``stream_id`` with a POST's HEADERS; send ``body`` with it when the windows allow (True).

        What ``send_headers`` then ``send_data(end_stream=True)`` do, through the same connection
        and stream state machines and flow-control windows, for the one request shape a push is:
        the frames are written as bytes rather than built as hyperframe objects, and h2's header
        handling that the configuration turns off anyway (validation, normalisation, text
        encoding) is not walked through per message. False: the body waits for window credit
        (the caller sends it with ``send_data`` when a ``WINDOW_UPDATE`` opens the windows).
        """
        allowed = self.remote_settings.max_concurrent_streams
        if self.open_outbound_streams + 1 > allowed:
            raise h2.exceptions.TooManyStreamsError(f"Max outbound streams is {allowed}")
        self.state_machine.process_input(ConnectionInputs.SEND_HEADERS)
        stream = self._begin_new_stream(stream_id, AllowedStreamIDs.ODD)
        machine = stream.state_machine
        machine.process_input(StreamInputs.SEND_HEADERS)
        stream._authority = authority
        stream.request_method = b"POST"
        block = self.encoder.encode(fields)
        size = self.max_outbound_frame_size
        out = self._data_to_send
        pack = _FRAME_HEAD.pack
        if len(block) <= size:
            out += pack(len(block) << 8 | _HEADERS, _END_HEADERS, stream_id)
            out += block
        else:  # HEADERS then CONTINUATION frames, END_HEADERS on the last
            parts = [block[i : i + size] for i in range(0, len(block), size)]
            for i, part in enumerate(parts):
                kind = _HEADERS if i == 0 else _CONTINUATION
                out += pack(len(part) << 8 | kind, _END_HEADERS if i == len(parts) - 1 else 0, stream_id)
                out += part
        n = len(body)
        if n > size or n > self.outbound_flow_control_window or n > stream.outbound_flow_control_window:
            return False
        self.state_machine.process_input(ConnectionInputs.SEND_DATA)
        machine.process_input(StreamInputs.SEND_DATA)
        machine.process_input(StreamInputs.SEND_END_STREAM)
        stream.outbound_flow_control_window -= n
        self.outbound_flow_control_window -= n
        out += pack(n << 8 | _DATA, _END_STREAM, stream_id)
        out += body
        return True

    def receive_answers(self, data: bytes) -> list[Any]:
        """``receive_data``, with each whole push answer (one HEADERS frame) taken through h2's state here.

        Most of what a push service sends is a 201 in one HEADERS frame that ends its headers and its
        stream. Such a frame, on a stream waiting for its answer, goes through h2's connection and
        stream state machines and gives h2's own events (``ResponseReceived``, ``StreamEnded``), its
        header block decoded by the connection's decoder, without being built as a hyperframe object
        and dispatched. Every other frame (SETTINGS, WINDOW_UPDATE, DATA, RST_STREAM, GOAWAY, PING,
        padded or prioritised HEADERS, a header block in several frames, a frame over the size we
        allow) is handed to h2's ``receive_data`` as it came, whole and in order.
        """
        buf = self._pending
        buf += data
        events: list[Any] = []
        pos = run = 0  # h2 gets buf[run:pos] before the next answer is taken here
        size = len(buf)
        unpack = _FRAME_HEAD.unpack_from
        limit = self.max_inbound_frame_size
        streams = self.streams
        while size - pos >= 9:
            head, flags, stream_id = unpack(buf, pos)
            length, kind = head >> 8, head & 0xFF
            if length > limit:  # h2 refuses it (FRAME_SIZE_ERROR): no need to wait for all of it
                pos = size
                break
            end = pos + 9 + length
            if end > size:
                break
            stream_id &= 0x7FFFFFFF
            stream = streams.get(stream_id) if kind == _HEADERS else None
            if (
                stream is not None
                and flags & _ANSWER_FLAGS == _ANSWER_FLAGS
                and not flags & (_PADDED | _PRIORITY)
                and not self._in_header_block
                and stream.state_machine.state is StreamState.HALF_CLOSED_LOCAL
            ):
                if run < pos:
                    events += super().receive_data(bytes(buf[run:pos]))
                events += self._answer(stream, bytes(buf[pos + 9 : end]))
                run = end
            elif kind in (_HEADERS, _PUSH_PROMISE):
                self._in_header_block = not flags & _END_HEADERS
            elif kind == _CONTINUATION and flags & _END_HEADERS:
                self._in_header_block = False
            pos = end
        rest = bytes(buf[run:pos])
        del buf[:pos]
        if rest:
            events += super().receive_data(rest)
        return events

    def _answer(self, stream: Any, block: bytes) -> list[Any]:
        """A push answer's HEADERS (END_STREAM, END_HEADERS) on ``stream``: what h2 makes of that frame."""
        try:
            headers = h2.connection._decode_headers(self.decoder, block)
            if headers and headers[0][0] == _STATUS and headers[0][1][:1] == b"1":
                raise h2.exceptions.ProtocolError("Cannot set END_STREAM on informational responses")
            events = self.state_machine.process_input(ConnectionInputs.RECV_HEADERS)
            machine = stream.state_machine
            received = machine.process_input(StreamInputs.RECV_HEADERS)
            ended = machine.process_input(StreamInputs.RECV_END_STREAM)
            response = received[0]
            response.stream_ended = ended[0]
            response.headers = list(headers)
            stream._initialize_content_length(headers)
        except h2.exceptions.ProtocolError as exc:
            self._terminate_connection(exc.error_code)
            raise
        return [*events, *received, *ended]


class Http2Connection(asyncio.Protocol):
    """An HTTP/2 connection of one origin; the pool opens streams on it while :meth:`room` allows."""

    protocol = "h2"

    def __init__(self, origin: ConnectionOwner, max_streams: int) -> None:
        self.origin = origin
        self.conn = _H2(self)
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, Exchange] = {}
        self.blocked: dict[int, memoryview] = {}  # bodies (or their rest) waiting for flow-control credit
        self.bodies: dict[int, list[bytes]] = {}  # error bodies being received
        self.cap = max_streams  # our own bound per connection
        self.allowed = 0  # the server's SETTINGS_MAX_CONCURRENT_STREAMS, once its SETTINGS arrived
        self.settled = False  # the server's first SETTINGS arrived
        self.open = False
        self.going_away = False
        self.dirty = False  # h2 holds bytes to write: the pool's burst writer flushes them
        self.idle_since = 0.0

    # -- asyncio callbacks ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """TLS is up and ALPN said ``h2``: send the preface and our settings."""
        self.transport = transport  # type: ignore[assignment]
        self.open = True
        conn = self.conn
        conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 0,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 64 * 1024,
            },
        )
        conn.initiate_connection()
        self._flush_now()

    def data_received(self, data: bytes) -> None:
        """Feed h2; finish the streams that ended."""
        try:
            events = self.conn.receive_answers(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail_all(ResponseError(f"HTTP/2 protocol error from the push service: {exc}"))
            self.close()
            return
        for event in events:
            kind = type(event)
            if kind is h2.events.ResponseReceived:
                self._response(event)  # type: ignore[arg-type]
            elif kind is h2.events.StreamEnded:
                self._ended(event.stream_id)  # type: ignore[attr-defined]
            elif kind is h2.events.DataReceived:
                self._data(event)  # type: ignore[arg-type]
            elif kind is h2.events.StreamReset:
                self._reset(event)  # type: ignore[arg-type]
            elif kind is h2.events.WindowUpdated:
                self._unblock()
            elif kind is h2.events.RemoteSettingsChanged:
                self._settings(event)  # type: ignore[arg-type]
            elif kind is h2.events.ConnectionTerminated:
                self._goaway(event)  # type: ignore[arg-type]
        self._mark_dirty()

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail every stream still open: each may or may not have reached the service."""
        self.open = False
        self._fail_all(exc or ConnectionResetError("the push service closed the HTTP/2 connection"))
        self.origin.closed(self)

    # -- streams ----------------------------------------------------------------------------------------

    def room(self) -> int:
        """How many more streams may be opened now."""
        if not self.open or self.going_away:
            return 0
        return min(self.cap, self.allowed) - len(self.streams)

    def start(self, exchange: Exchange, authority: bytes) -> None:
        """Open a stream for ``exchange``: HEADERS now, DATA as flow control allows (written in a burst)."""
        conn = self.conn
        # :path fourth, after the other pseudo-fields: the encoder's memo expects it there.
        fields = [
            _METHOD,
            _SCHEME,
            (b":authority", authority),
            NeverIndexedHeaderTuple(_PATH, exchange.target.encode("latin-1")),
            *exchange.head.http2,
        ]
        try:
            stream_id = conn.get_next_available_stream_id()
            sent = conn.send_request(stream_id, fields, authority, exchange.body)
        except h2.exceptions.ProtocolError:
            # The connection can take no new stream (closing, or its stream ids are used up).
            self.going_away = True
            self.origin.going_away(self)
            self.origin.replay(exchange)
            return
        exchange.conn = self
        exchange.stream_id = stream_id
        self.streams[stream_id] = exchange
        if not sent:
            self.blocked[stream_id] = memoryview(exchange.body)
            self._unblock()
        self._mark_dirty()

    def cancel(self, exchange: Exchange) -> None:
        """Give up on ``exchange`` (a timeout): reset its stream, keep the connection."""
        stream_id = exchange.stream_id
        if self.streams.pop(stream_id, None) is None:
            return
        self.blocked.pop(stream_id, None)
        self.bodies.pop(stream_id, None)
        if self.open:
            try:
                self.conn.reset_stream(stream_id, ErrorCodes.CANCEL)
            except h2.exceptions.ProtocolError:
                pass  # already closed on h2's side
            self._mark_dirty()
        self._maybe_close()

    def _response(self, event: h2.events.ResponseReceived) -> None:
        exchange = self.streams.get(event.stream_id)
        if exchange is None:
            return
        headers: dict[str, str] = {}
        status = 0
        for name, value in event.headers:
            if name == _STATUS:
                status = int(value) if value.isdigit() else 0  # type: ignore[union-attr]
            else:
                headers[name.decode("latin-1").lower()] = value.decode("latin-1")  # type: ignore[union-attr]
        if not 200 <= status <= 999:
            self.cancel(exchange)
            exchange.fail(ResponseError(f"the answer has no valid :status ({status})"))
            return
        exchange.status = status
        exchange.headers = headers

    def _data(self, event: h2.events.DataReceived) -> None:
        stream_id = event.stream_id
        self.conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
        if stream_id not in self.streams:
            return
        parts = self.bodies.setdefault(stream_id, [])
        parts.append(event.data)
        if sum(map(len, parts)) > MAX_RESPONSE:
            exchange = self.streams[stream_id]
            self.cancel(exchange)
            exchange.fail(ResponseError("response larger than 256 KiB"))

    def _ended(self, stream_id: int) -> None:
        exchange = self.streams.pop(stream_id, None)
        if exchange is None:
            return
        self.blocked.pop(stream_id, None)
        parts = self.bodies.pop(stream_id, None)
        if not exchange.status:
            exchange.fail(ResponseError("the push service ended the stream without a status"))
        else:
            self.origin.answered(
                self, exchange, exchange.status, exchange.headers, b"".join(parts) if parts else b"", True
            )
        self._maybe_close()

    def _reset(self, event: h2.events.StreamReset) -> None:
        exchange = self.streams.pop(event.stream_id, None)
        self.blocked.pop(event.stream_id, None)
        self.bodies.pop(event.stream_id, None)
        if exchange is None:
            return
        if event.error_code == ErrorCodes.REFUSED_STREAM:
            self.origin.replay(exchange, refused=True)  # RFC 9113 8.7: not processed, safe to send again
        else:
            code = event.error_code
            name = code.name if isinstance(code, ErrorCodes) else str(code)
            exchange.fail(ConnectionResetError(f"the push service reset the stream ({name})"))
        self._maybe_close()

    def _settings(self, event: h2.events.RemoteSettingsChanged) -> None:
        # Unset means unlimited (h2 answers 2**32 + 1 then): our own cap bounds it.
        self.allowed = self.conn.remote_settings.max_concurrent_streams
        self.settled = True
        self._unblock()
        if self.room() > 0:
            self.origin.more_room(self)

    def _goaway(self, event: h2.events.ConnectionTerminated) -> None:
        self.going_away = True
        last = event.last_stream_id if event.last_stream_id is not None else 0
        # Streams the server never processed are sent again (on another connection); the rest finish here.
        for stream_id in [sid for sid in self.streams if sid > last]:
            exchange = self.streams.pop(stream_id)
            self.blocked.pop(stream_id, None)
            self.bodies.pop(stream_id, None)
            self.origin.replay(exchange)
        if event.error_code not in (ErrorCodes.NO_ERROR, None):
            code = event.error_code
            name = code.name if isinstance(code, ErrorCodes) else str(code)
            self._fail_all(ConnectionResetError(f"the push service ended the HTTP/2 connection ({name})"))
        self.origin.going_away(self)
        self._maybe_close()

    def _unblock(self) -> None:
        """Send what flow control held back, as far as the windows now allow."""
        if not self.blocked:
            return
        conn = self.conn
        for stream_id, rest in list(self.blocked.items()):
            window = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
            if window <= 0:
                continue
            chunk, rest = rest[:window], rest[window:]
            conn.send_data(stream_id, bytes(chunk), end_stream=not rest)
            if rest:
                self.blocked[stream_id] = rest
            else:
                del self.blocked[stream_id]
        self._mark_dirty()

    def _fail_all(self, error: BaseException) -> None:
        streams, self.streams = self.streams, {}
        self.blocked.clear()
        self.bodies.clear()
        for exchange in streams.values():
            exchange.fail(error)

    def _maybe_close(self) -> None:
        if self.going_away and not self.streams and self.open:
            self.close()

    # -- writing ----------------------------------------------------------------------------------------

    def _mark_dirty(self) -> None:
        if not self.dirty and self.open:
            self.dirty = True
            self.origin.pool.flush_soon(self)

    def flush(self) -> None:
        """Write what h2 has framed since the last flush (the pool's burst writer calls this)."""
        self.dirty = False
        self._flush_now()

    def _flush_now(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            try:
                self.transport.write(data)
            except (RuntimeError, OSError) as exc:
                self.connection_lost(ConnectionResetError(f"cannot write to the push service: {exc}"))

    def close(self) -> None:
        """Say GOAWAY and drop the connection."""
        if self.open:
            self.open = False
            try:
                self.conn.close_connection()
                self._flush_now()
            except h2.exceptions.ProtocolError:
                pass
        if self.transport is not None:
            self.transport.abort()
