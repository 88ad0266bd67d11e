"""SSRF: endpoints aimed inside the network are refused at subscribe time and again at send time."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from aiohttp.abc import AbstractResolver, ResolveResult
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notifier.context import Context
from notifier.crypto import b64url_encode
from notifier.endpoints import EndpointPolicy
from notifier.errors import UnsafeEndpoint
from notifier.sending import Message, Sender
from tests.factories import make_sub

INTERNAL = [
    "https://127.0.0.1/push",
    "https://localhost/push",
    "https://10.0.0.5/push",
    "https://172.16.3.4/push",
    "https://192.168.1.1/push",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/push",
    "https://0.0.0.0/push",
    "https://[::1]/push",
    "https://[fc00::1]/push",
    "https://[fd12:3456::1]/push",
    "https://[fe80::1]/push",
    "https://[::ffff:127.0.0.1]/push",
    "https://[::ffff:169.254.169.254]/push",
    "https://2130706433/push",  # 127.0.0.1 as one decimal number
    "https://0x7f.1/push",  # hex and short forms
    "https://0x7f000001/push",
    "https://017700000001/push",  # octal
    "https://127.1/push",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://fcm.googleapis.com.attacker.example/push",
    "https://attacker.example/fcm.googleapis.com/push",
    "https://fcm.googleapis.com@127.0.0.1/push",
    "https://user:pass@fcm.googleapis.com/push",
    "http://fcm.googleapis.com/fcm/send/abc",
    "https://fcm.googleapis.com:8443/fcm/send/abc",
    "https://fcm.googleapis.com:22/fcm/send/abc",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "ftp://fcm.googleapis.com/x",
    "//fcm.googleapis.com/fcm/send/abc",
    "https:///push",
]


@pytest.mark.parametrize("endpoint", INTERNAL)
def test_internal_or_foreign_endpoints_are_refused_at_subscribe(
    client, r: redis.Redis, endpoint: str
) -> None:  # type: ignore[no-untyped-def]
    resp = client.post(
        "/api/v1/subscriptions", data=json.dumps(make_sub(endpoint)), content_type="application/json"
    )
    assert resp.status_code == 400, (endpoint, resp.get_json())
    assert resp.get_json()["error"] == "unsafe_endpoint"
    assert r.dbsize() == 0


def fixed(mapping: dict[str, Sequence[str]]):  # type: ignore[no-untyped-def]
    """A resolver function answering from ``mapping`` (unknown hosts do not resolve)."""

    def resolve(host: str) -> Sequence[str]:
        if host not in mapping:
            raise socket.gaierror(socket.EAI_NONAME, "unknown host")
        return mapping[host]

    return resolve


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "fd00::7", "::ffff:192.168.0.1", "100.100.1.1"],
)
def test_a_listed_push_host_resolving_to_a_private_address_is_refused(address: str) -> None:
    host = "updates.push.services.mozilla.com"
    policy = EndpointPolicy(resolver=fixed({host: ["34.117.1.1", address]}))
    with pytest.raises(UnsafeEndpoint, match="resolves to a private address"):
        policy.check(f"https://{host}/wpush/v2/abc")


def test_a_listed_push_host_resolving_publicly_is_accepted() -> None:
    policy = EndpointPolicy(resolver=fixed({"fcm.googleapis.com": ["142.250.4.95", "2404:6800:4003::5f"]}))
    policy.check("https://fcm.googleapis.com/fcm/send/abc")


class Listener:
    """A TCP listener on loopback that counts connections (the internal service an attacker wants)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


class Rebinding(AbstractResolver):
    """DNS after the subscription was stored: every name now points at the loopback listener."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Answer 127.0.0.1 (and the listener's port) for any name."""
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=self.port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def message(endpoint: str) -> Message:
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return Message(
        sid="s1",
        endpoint=endpoint,
        p256dh=b64url_encode(point),
        auth=b64url_encode(b"0123456789abcdef"),
        payload=b'{"title":"t"}',
        ttl=60,
    )


def send_one(sender: Sender, msg: Message):  # type: ignore[no-untyped-def]
    async def run():  # type: ignore[no-untyped-def]
        try:
            return await sender.send(msg)
        finally:
            await sender.close()

    return asyncio.run(run())


HOST = "updates.push.services.mozilla.com"
ENDPOINT = f"https://{HOST}/wpush/v2/gAAAAABrebind"


def test_dns_rebinding_between_subscribe_and_send_is_caught_by_the_sender(
    context: Context, listener: Listener
) -> None:
    # Subscribe time: the host resolves publicly and is accepted.
    policy = EndpointPolicy(resolver=fixed({HOST: ["34.117.237.239"]}))
    policy.check(ENDPOINT)
    # Send time: DNS now answers 127.0.0.1; the connector's SafeResolver must refuse before connecting.
    rebinding = Rebinding(listener.port)
    sender = Sender(context.settings, context.vapid, policy, resolver=rebinding)
    outcome = send_one(sender, message(ENDPOINT))
    assert rebinding.asked == [HOST]
    assert outcome.kind == "rejected", outcome
    assert "private address" in outcome.detail
    assert listener.connections == 0


def test_rebinding_harness_detects_a_connection_when_the_check_is_bypassed(
    context: Context, listener: Listener
) -> None:
    # Control: an operator-named host skips the private-address check, so the same DNS answer
    # reaches the listener. This proves the test above would see a connection if one were made.
    policy = EndpointPolicy([HOST], resolver=fixed({HOST: ["34.117.237.239"]}))
    sender = Sender(context.settings, context.vapid, policy, resolver=Rebinding(listener.port))
    outcome = send_one(sender, message(ENDPOINT))
    assert outcome.kind != "sent"
    assert listener.connections >= 1


class Recorder(BaseHTTPRequestHandler):
    """Counts requests; the redirecting instance answers 307 to ``target``."""

    target = ""
    hits: list[str] = []

    def do_POST(self) -> None:
        """Record the request; redirect when a target is set, else accept."""
        type(self).hits.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.target:
            self.send_response(307)
            self.send_header("Location", self.target)
        else:
            self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_the_sender_follows_no_redirects(context: Context) -> None:
    target_handler = type("Target", (Recorder,), {"target": "", "hits": []})
    target = serve(target_handler)
    steal = f"http://127.0.0.1:{target.server_address[1]}/steal"
    redirect_handler = type("Redirector", (Recorder,), {"target": steal, "hits": []})
    redirector = serve(redirect_handler)
    try:
        policy = EndpointPolicy(["127.0.0.1"])
        sender = Sender(context.settings, context.vapid, policy)
        outcome = send_one(sender, message(f"http://127.0.0.1:{redirector.server_address[1]}/push/abc"))
        assert redirect_handler.hits == ["/push/abc"]
        assert outcome.status == 307
        assert outcome.kind != "sent"
        assert target_handler.hits == []
    finally:
        for server in (target, redirector):
            server.shutdown()
            server.server_close()
