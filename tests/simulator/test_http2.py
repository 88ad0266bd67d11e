"""The simulator over HTTP/2 (TLS, ALPN ``h2``), driven by the ``h2`` library's client side.

The sender's own HTTP/2 client is tested against the simulator elsewhere; here an independent
implementation checks the simulator speaks the protocol: streams and their limit, holds that
delay one stream and not the others, flow control of answer bodies, resets and GOAWAY.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from h2.errors import ErrorCodes
from py_vapid import Vapid

from notifier.crypto import b64url_decode, encrypt
from notifier_simulator import SimulatorServer

SUBJECT = "mailto:ops@example.com"


class Client:
    """A blocking HTTP/2 client on one TLS connection (h2 sans-IO over a socket)."""

    def __init__(self, sim: SimulatorServer, *, window: int = 65535) -> None:
        context = ssl.create_default_context(cafile=sim.ca_file)
        context.set_alpn_protocols(["h2", "http/1.1"])
        raw = socket.create_connection(("127.0.0.1", sim.port), timeout=10)
        self.sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
        self.alpn = self.sock.selected_alpn_protocol()
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window}
        )
        self.conn.initiate_connection()
        self.events: list[h2.events.Event] = []
        self.ack_data = True
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def post(self, path: str, headers: dict[str, str], body: bytes, *, end: bool = True) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        fields = [(":method", "POST"), (":scheme", "https"), (":authority", "127.0.0.1"), (":path", path)]
        fields += [(k.lower(), v) for k, v in headers.items()]
        self.conn.send_headers(stream_id, fields, end_stream=not body and end)
        if body:
            self.conn.send_data(stream_id, body, end_stream=end)
        self._flush()
        return stream_id

    def request(self, method: str, path: str) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", "https"), (":authority", "127.0.0.1"), (":path", path)]
        self.conn.send_headers(stream_id, fields, end_stream=True)
        self._flush()
        return stream_id

    def until(self, done: Callable[[list[h2.events.Event]], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.events):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; events so far: {self.events}")
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            data = self.sock.recv(65536)
            if not data:
                self.events.append(h2.events.ConnectionTerminated())
                return
            for event in self.conn.receive_data(data):
                self.events.append(event)
                if isinstance(event, h2.events.DataReceived) and self.ack_data:
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            self._flush()

    def answer(self, stream_id: int, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        """Wait for a stream's whole answer: (status, headers, body)."""
        self.until(lambda events: any(_ended(e, stream_id) for e in events), timeout)
        headers: dict[str, str] = {}
        body = b""
        for event in self.events:
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                body += event.data
        return int(headers.pop(":status")), headers, body

    def close(self) -> None:
        self.sock.close()


def _ended(event: h2.events.Event, stream_id: int) -> bool:
    return isinstance(event, h2.events.StreamEnded | h2.events.StreamReset) and event.stream_id == stream_id


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer(tls=True, h2_max_streams=4) as running:
        yield running


@pytest.fixture
def sim(server: SimulatorServer) -> SimulatorServer:
    server.reset()
    return server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[Client]:
    c = Client(sim)
    yield c
    c.close()


@pytest.fixture(scope="module")
def vapid() -> Vapid:
    key = Vapid()
    key.generate_keys()
    return key


def _push_headers(sim: SimulatorServer, vapid: Vapid) -> dict[str, str]:
    auth = vapid.sign({"sub": SUBJECT, "aud": sim.origin, "exp": int(time.time()) + 3600})
    return {**auth, "TTL": "60", "Content-Encoding": "aes128gcm", "Urgency": "high", "Topic": "gempa"}


def _path(sim: SimulatorServer, subscription: dict[str, Any]) -> str:
    return subscription["endpoint"][len(sim.origin) :]


def _body(subscription: dict[str, Any], text: bytes) -> bytes:
    keys = subscription["keys"]
    return encrypt(text, b64url_decode(keys["p256dh"]), b64url_decode(keys["auth"]))


def test_alpn_selects_h2_and_a_push_is_verified_decrypted_and_recorded(
    sim: SimulatorServer, client: Client, vapid: Vapid
) -> None:
    assert client.alpn == "h2"
    subscription = sim.mint(1)[0]
    stream = client.post(_path(sim, subscription), _push_headers(sim, vapid), _body(subscription, b"over h2"))
    status, headers, body = client.answer(stream)
    [received] = sim.received()
    assert status == 201 and body == b""
    assert headers["location"] == f"{sim.origin}/m/{received.message_id}"
    assert (received.payload, received.decrypted, received.urgency, received.topic) == (
        b"over h2", True, "high", "gempa",
    )  # fmt: skip
    # The client's HPACK table carries the repeated fields of the next requests: still decoded right.
    for text in (b"two", b"three"):
        status, _, _ = client.answer(
            client.post(_path(sim, subscription), _push_headers(sim, vapid), _body(subscription, text))
        )
        assert status == 201
    assert [r.payload for r in sim.received()] == [b"over h2", b"two", b"three"]


def test_streams_over_the_limit_are_refused_and_not_processed(
    sim: SimulatorServer, client: Client, vapid: Vapid
) -> None:
    subscription = sim.mint(1)[0]
    headers, path = _push_headers(sim, vapid), _path(sim, subscription)
    # Four streams held open (no END_STREAM yet), then a fifth: over SETTINGS_MAX_CONCURRENT_STREAMS.
    open_streams = [client.post(path, headers, _body(subscription, b"open"), end=False) for _ in range(4)]
    fifth = client.post(path, headers, _body(subscription, b"refused"))
    client.until(lambda events: any(_ended(e, fifth) for e in events))
    [reset] = [e for e in client.events if isinstance(e, h2.events.StreamReset)]
    assert reset.stream_id == fifth and reset.error_code == ErrorCodes.REFUSED_STREAM
    for stream in open_streams:
        client.conn.end_stream(stream)
    client._flush()
    assert [client.answer(stream)[0] for stream in open_streams] == [201] * 4
    assert [r.payload for r in sim.received()] == [b"open"] * 4


def test_a_held_answer_delays_its_own_stream_only(sim: SimulatorServer, client: Client, vapid: Vapid) -> None:
    slow, fast = sim.mint(2)
    sim.add_rule("latency", endpoint=slow["endpoint"], seconds=0.4)
    headers = _push_headers(sim, vapid)
    started = time.monotonic()
    held = client.post(_path(sim, slow), headers, _body(slow, b"slow"))
    quick = client.post(_path(sim, fast), headers, _body(fast, b"fast"))
    assert client.answer(quick)[0] == 201
    assert not any(_ended(e, held) for e in client.events)  # the fast one came first
    assert client.answer(held)[0] == 201
    assert time.monotonic() - started >= 0.4


def test_rules_answer_over_h2_with_their_headers_and_bodies(
    sim: SimulatorServer, client: Client, vapid: Vapid
) -> None:
    subscription = sim.mint(1)[0]
    sim.add_rule(429, retry_after=7, count=1, endpoint=subscription["endpoint"])
    headers, path = _push_headers(sim, vapid), _path(sim, subscription)
    status, answer_headers, body = client.answer(client.post(path, headers, _body(subscription, b"x")))
    assert (status, answer_headers["retry-after"]) == (429, "7")
    assert answer_headers["content-type"].startswith("application/json")
    assert json.loads(body)["code"] == 429 and int(answer_headers["content-length"]) == len(body)
    assert client.answer(client.post(path, headers, _body(subscription, b"x")))[0] == 201
    # Unknown token, then a deleted one.
    assert client.answer(client.post("/wpush/nope", headers, b"x"))[0] == 404
    assert client.answer(client.request("DELETE", path))[0] == 204
    status, _, body = client.answer(client.post(path, headers, _body(subscription, b"x")))
    assert status == 410 and json.loads(body)["message"] == "subscription has been deleted"
    status, _, body = client.answer(client.request("GET", "/_sim/stats"))
    assert status == 404 and "HTTP/1.1" in json.loads(body)["message"]


def test_answer_bodies_respect_the_clients_flow_control_window(sim: SimulatorServer, vapid: Vapid) -> None:
    tiny = Client(sim, window=16)
    try:
        tiny.ack_data = False  # credit is given below, by hand
        subscription = sim.mint(1)[0]
        sim.add_rule(413)
        stream = tiny.post(_path(sim, subscription), _push_headers(sim, vapid), _body(subscription, b"x"))
        tiny.until(lambda events: any(isinstance(e, h2.events.DataReceived) for e in events))
        time.sleep(0.1)
        tiny.until(lambda events: True)
        first = [e for e in tiny.events if isinstance(e, h2.events.DataReceived)]
        assert sum(len(e.data) for e in first) == 16  # no more than the window allows
        tiny.ack_data = True
        tiny.conn.increment_flow_control_window(1 << 20, stream_id=stream)
        tiny.conn.increment_flow_control_window(1 << 20)
        tiny._flush()
        status, _, body = tiny.answer(stream)
        assert status == 413 and json.loads(body)["code"] == 413
    finally:
        tiny.close()


def test_a_reset_stream_under_a_stall_is_abandoned(
    sim: SimulatorServer, client: Client, vapid: Vapid
) -> None:
    subscription = sim.mint(1)[0]
    sim.add_rule("stall", seconds=0.3, count=1)
    stream = client.post(_path(sim, subscription), _push_headers(sim, vapid), _body(subscription, b"gave up"))
    client.conn.reset_stream(stream, ErrorCodes.CANCEL)
    client._flush()
    deadline = time.monotonic() + 5
    while sim.stats()["abandoned"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim.stats()["abandoned"] == 1 and sim.received() == []
    # The connection is fine: the next push (past the stall's count) is taken.
    assert (
        client.answer(
            client.post(_path(sim, subscription), _push_headers(sim, vapid), _body(subscription, b"y"))
        )[0]
        == 201
    )


def test_ping_is_answered_and_shutdown_says_goaway(vapid: Vapid) -> None:
    with SimulatorServer(tls=True) as own:
        client = Client(own)
        try:
            client.conn.ping(b"12345678")
            client._flush()
            client.until(lambda events: any(isinstance(e, h2.events.PingAckReceived) for e in events))
            own.stop()
            client.until(lambda events: any(isinstance(e, h2.events.ConnectionTerminated) for e in events))
        finally:
            client.close()


def test_a_simulator_without_http2_negotiates_http1(vapid: Vapid) -> None:
    with SimulatorServer(tls=True, http2=False) as own:
        client = Client(own)
        try:
            assert client.alpn == "http/1.1"
        finally:
            client.close()


def test_a_connection_without_the_preface_is_closed(sim: SimulatorServer) -> None:
    context = ssl.create_default_context(cafile=sim.ca_file)
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # HTTP/1.1 on a connection that said h2
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    assert data[3] == 4  # the server's SETTINGS first, ...
    assert b"\x07\x00\x00\x00\x00\x00" in data and b"preface" in data  # ... then GOAWAY(PROTOCOL_ERROR)
