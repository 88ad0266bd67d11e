"""The push service simulator, driven by pywebpush (the reference client), requests and websockets."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import websockets
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from py_vapid import Vapid, Vapid01
from pywebpush import WebPushException, webpush

from notifier.crypto import (
    b64url_decode,
    b64url_encode,
    decrypt,
    encrypt,
    generate_subscriber,
    public_key_bytes,
)
from notifier_simulator import Simulator, SimulatorServer

SUBJECT = "mailto:ops@example.com"


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer() as running:
        yield running


@pytest.fixture
def sim(server: SimulatorServer) -> SimulatorServer:
    server.reset()
    return server


@pytest.fixture(scope="module")
def vapid() -> Vapid:
    key = Vapid()
    key.generate_keys()
    return key


def _public_b64(key: Vapid) -> str:
    return b64url_encode(public_key_bytes(key.public_key))


def _send(
    sim: SimulatorServer, subscription: dict[str, Any], data: str, vapid: Vapid, **claims: Any
) -> requests.Response:
    """Send with pywebpush, returning the response whatever its status."""
    try:
        response = webpush(
            subscription,
            data,
            vapid_private_key=vapid,
            vapid_claims={"sub": SUBJECT, "aud": sim.origin, **claims},
            ttl=60,
        )
    except WebPushException as exc:
        assert exc.response is not None
        return exc.response
    assert isinstance(response, requests.Response)
    return response


def _http(method: str, url: str, **kwargs: Any) -> requests.Response:
    """One request with a timeout (so a wedged simulator fails the test instead of hanging it)."""
    kwargs.setdefault("timeout", 10)
    return requests.request(method, url, **kwargs)  # noqa: S113  (timeout set just above)


def _jwt(key: Vapid, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Sign any claims (py_vapid refuses some of the bad ones these tests need) as an ES256 JWT."""
    signing_input = ".".join(
        b64url_encode(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    r, s = decode_dss_signature(key.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + b64url_encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def _body_for(subscription: dict[str, Any], plaintext: bytes = b"hi") -> bytes:
    keys = subscription["keys"]
    return encrypt(plaintext, b64url_decode(keys["p256dh"]), b64url_decode(keys["auth"]))


def _headers(sim: SimulatorServer, vapid: Vapid, **extra: str) -> dict[str, str]:
    auth = vapid.sign({"sub": SUBJECT, "aud": sim.origin, "exp": int(time.time()) + 3600})
    return {**auth, "TTL": "60", "Content-Encoding": "aes128gcm", **extra}


def _jwt_headers(
    vapid: Vapid, claims: dict[str, Any], header: dict[str, Any] | None = None
) -> dict[str, str]:
    token = _jwt(vapid, header or {"typ": "JWT", "alg": "ES256"}, claims)
    return {
        "Authorization": f"vapid t={token}, k={_public_b64(vapid)}",
        "TTL": "60",
        "Content-Encoding": "aes128gcm",
    }


# -- delivery --------------------------------------------------------------------------------------


def test_minted_subscriptions_look_like_browser_ones(sim: SimulatorServer) -> None:
    subscriptions = sim.mint(3)
    assert len({s["endpoint"] for s in subscriptions}) == 3
    for subscription in subscriptions:
        assert set(subscription) == {"endpoint", "expirationTime", "keys"}
        assert subscription["expirationTime"] is None
        assert subscription["endpoint"].startswith(sim.url + "/wpush/")
        assert len(subscription["endpoint"].rsplit("/", 1)[1]) >= 100
        assert len(b64url_decode(subscription["keys"]["p256dh"])) == 65
        assert len(b64url_decode(subscription["keys"]["auth"])) == 16
    assert sim.stats()["subscriptions"] == 3


def test_pywebpush_message_is_verified_decrypted_and_recorded(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription = sim.mint(1)[0]
    response = webpush(
        subscription,
        '{"title": "Breaking"}',
        vapid_private_key=vapid,
        vapid_claims={"sub": SUBJECT, "aud": sim.origin},
        ttl=3600,
        headers={"Urgency": "high", "Topic": "story-42"},
    )
    assert isinstance(response, requests.Response)
    assert response.status_code == 201
    assert response.headers["Location"].startswith(sim.origin + "/m/")
    [received] = sim.received(subscription["endpoint"])
    assert received.payload == b'{"title": "Breaking"}'
    assert received.decrypted and not received.forwarded
    assert (received.ttl, received.urgency, received.topic) == (3600, "high", "story-42")
    assert received.vapid_key == _public_b64(vapid)
    assert abs(received.time - time.time()) < 30
    stats = sim.stats()
    assert stats["by_status"] == {"201": 1}
    assert (stats["received"], stats["decrypted"], stats["vapid_verified"]) == (1, 1, 1)


def test_reused_jwt_is_verified_once(sim: SimulatorServer, vapid: Vapid) -> None:
    subscriptions = sim.mint(5)
    headers = _headers(sim, vapid)
    with requests.Session() as session:
        for subscription in subscriptions:
            response = session.post(subscription["endpoint"], data=_body_for(subscription), headers=headers)
            assert response.status_code == 201
    stats = sim.stats()
    assert (stats["vapid_verified"], stats["vapid_cache_hits"], stats["decrypted"]) == (1, 4, 5)


def test_legacy_webpush_scheme_with_crypto_key(sim: SimulatorServer, vapid: Vapid) -> None:
    legacy = Vapid01.from_pem(vapid.private_pem())
    subscription = sim.mint(1)[0]
    headers = {
        **legacy.sign({"sub": SUBJECT, "aud": sim.origin, "exp": int(time.time()) + 600}),
        "TTL": "0",
        "Content-Encoding": "aes128gcm",
    }
    assert headers["Authorization"].startswith("WebPush ")
    response = _http("post", subscription["endpoint"], data=_body_for(subscription), headers=headers)
    assert response.status_code == 201


def test_message_without_payload_is_accepted(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription = sim.mint(1)[0]
    headers = _headers(sim, vapid)
    del headers["Content-Encoding"]
    assert _http("post", subscription["endpoint"], headers=headers).status_code == 201
    [received] = sim.received()
    assert received.payload is None and received.size == 0


# -- VAPID -----------------------------------------------------------------------------------------


def test_bad_signature_is_401(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription = sim.mint(1)[0]
    other = Vapid()
    other.generate_keys()
    headers = _headers(sim, vapid)
    scheme_and_token = headers["Authorization"].split(",k=")[0]
    headers["Authorization"] = f"{scheme_and_token},k={_public_b64(other)}"
    response = _http("post", subscription["endpoint"], data=_body_for(subscription), headers=headers)
    assert response.status_code == 401
    assert "signature" in response.json()["message"]


def test_wrong_aud_is_401(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription = sim.mint(1)[0]
    response = _send(sim, subscription, "x", vapid, aud="https://fcm.googleapis.com")
    assert response.status_code == 401
    assert "aud" in response.json()["message"]


def test_exp_more_than_24h_ahead_is_401(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription = sim.mint(1)[0]
    response = _send(sim, subscription, "x", vapid, exp=int(time.time()) + 25 * 3600)
    assert response.status_code == 401
    assert "24 hours" in response.json()["message"]


def test_expired_jwt_is_401(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription = sim.mint(1)[0]
    claims = {"sub": SUBJECT, "aud": sim.origin, "exp": int(time.time()) - 10}
    response = _http(
        "post", subscription["endpoint"], data=_body_for(subscription), headers=_jwt_headers(vapid, claims)
    )
    assert response.status_code == 401
    assert "expired" in response.json()["message"]


def test_sub_must_be_mailto_or_https(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription = sim.mint(1)[0]
    claims = {"sub": "ops@example.com", "aud": sim.origin, "exp": int(time.time()) + 60}
    response = _http(
        "post", subscription["endpoint"], data=_body_for(subscription), headers=_jwt_headers(vapid, claims)
    )
    assert response.status_code == 401
    assert "sub" in response.json()["message"]


@pytest.mark.parametrize(
    "sub", ["mailto:push@localhost", "mailto:ops@newsroom.local", "https://kabar.invalid/"]
)
def test_a_sub_no_one_can_be_reached_at_is_403_bad_jwt_token_like_apple(
    sim: SimulatorServer, vapid: Vapid, sub: str
) -> None:
    subscription = sim.mint(1)[0]
    claims = {"sub": sub, "aud": sim.origin, "exp": int(time.time()) + 60}
    response = _http(
        "post", subscription["endpoint"], data=_body_for(subscription), headers=_jwt_headers(vapid, claims)
    )
    assert response.status_code == 403
    assert "BadJwtToken" in response.json()["message"]


def test_alg_must_be_es256(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription = sim.mint(1)[0]
    claims = {"sub": SUBJECT, "aud": sim.origin, "exp": int(time.time()) + 60}
    good = _http(
        "post", subscription["endpoint"], data=_body_for(subscription), headers=_jwt_headers(vapid, claims)
    )
    assert good.status_code == 201
    headers = _jwt_headers(vapid, claims, header={"typ": "JWT", "alg": "none"})
    response = _http("post", subscription["endpoint"], data=_body_for(subscription), headers=headers)
    assert response.status_code == 401
    assert "ES256" in response.json()["message"]


def test_missing_authorization_is_401(sim: SimulatorServer) -> None:
    subscription = sim.mint(1)[0]
    response = _http(
        "post",
        subscription["endpoint"],
        data=_body_for(subscription),
        headers={"TTL": "60", "Content-Encoding": "aes128gcm"},
    )
    assert response.status_code == 401


def test_key_other_than_application_server_key_is_403(sim: SimulatorServer, vapid: Vapid) -> None:
    other = Vapid()
    other.generate_keys()
    mine = sim.mint(1, application_server_key=_public_b64(vapid))[0]
    theirs = sim.mint(1, application_server_key=_public_b64(other))[0]
    assert _send(sim, mine, "x", vapid).status_code == 201
    response = _send(sim, theirs, "x", vapid)
    assert response.status_code == 403
    assert "applicationServerKey" in response.json()["message"]


# -- request validation ----------------------------------------------------------------------------


def test_missing_ttl_is_400(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription = sim.mint(1)[0]
    headers = _headers(sim, vapid)
    del headers["TTL"]
    response = _http("post", subscription["endpoint"], data=_body_for(subscription), headers=headers)
    assert response.status_code == 400
    assert "TTL" in response.json()["message"]


@pytest.mark.parametrize(
    ("header", "value"),
    [("TTL", "soon"), ("Urgency", "urgent"), ("Topic", "has spaces"), ("Content-Encoding", "aesgcm")],
)
def test_malformed_headers_are_400(sim: SimulatorServer, vapid: Vapid, header: str, value: str) -> None:
    subscription = sim.mint(1)[0]
    headers = _headers(sim, vapid, **{header: value})
    response = _http("post", subscription["endpoint"], data=_body_for(subscription), headers=headers)
    assert response.status_code == 400


def test_oversized_body_is_413(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription = sim.mint(1)[0]
    response = _http("post", subscription["endpoint"], data=b"\x00" * 4097, headers=_headers(sim, vapid))
    assert response.status_code == 413
    huge = _http("post", subscription["endpoint"], data=b"\x00" * 200_000, headers=_headers(sim, vapid))
    assert huge.status_code == 413


def test_undecryptable_body_is_400(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription, other = sim.mint(2)
    response = _http("post", subscription["endpoint"], data=_body_for(other), headers=_headers(sim, vapid))
    assert response.status_code == 400
    assert "decrypt" in response.json()["message"]
    assert sim.stats()["decrypt_failed"] == 1


def test_unknown_token_is_404_and_deleted_is_410(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription, second = sim.mint(2)
    unknown = sim.url + "/wpush/" + "A" * 128
    assert _http("post", unknown, data=b"x", headers=_headers(sim, vapid)).status_code == 404
    assert _http("delete", subscription["endpoint"]).status_code == 204
    assert _send(sim, subscription, "x", vapid).status_code == 410
    assert sim.unsubscribe(second["endpoint"])
    assert _send(sim, second, "x", vapid).status_code == 410
    assert sim.stats()["gone"] == 2


# -- rules -----------------------------------------------------------------------------------------


def test_rule_410_by_endpoint(sim: SimulatorServer, vapid: Vapid) -> None:
    doomed, fine = sim.mint(2)
    sim.add_rule(410, endpoint=doomed["endpoint"])
    assert _send(sim, doomed, "x", vapid).status_code == 410
    assert _send(sim, fine, "x", vapid).status_code == 201
    assert sim.stats()["rules"][0]["hits"] == 1


@pytest.mark.parametrize("retry_after", [7, "Wed, 21 Oct 2026 07:28:00 GMT"])
def test_rule_429_with_retry_after(sim: SimulatorServer, vapid: Vapid, retry_after: int | str) -> None:
    subscription = sim.mint(1)[0]
    sim.add_rule(429, retry_after=retry_after)
    response = _send(sim, subscription, "x", vapid)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == str(retry_after)


def test_rule_500_twice_then_201(sim: SimulatorServer, vapid: Vapid) -> None:
    first, second = sim.mint(2)
    sim.add_rule(500, count=2)
    assert [_send(sim, first, "x", vapid).status_code for _ in range(3)] == [500, 500, 201]
    assert [_send(sim, second, "x", vapid).status_code for _ in range(3)] == [500, 500, 201]
    assert sim.stats()["by_status"] == {"201": 2, "500": 4}
    assert [r.payload for r in sim.received(first["endpoint"])] == [b"x"]


def test_rule_stall_outlasts_client_timeout(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription = sim.mint(1)[0]
    sim.add_rule("stall", seconds=0.5, count=1)
    with pytest.raises(requests.exceptions.Timeout):
        _http(
            "post",
            subscription["endpoint"],
            data=_body_for(subscription),
            headers=_headers(sim, vapid),
            timeout=0.1,
        )
    assert _send(sim, subscription, "x", vapid).status_code == 201
    deadline = time.monotonic() + 5
    while sim.stats()["abandoned"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    # The stalled message is not recorded: its sender saw a timeout, not a 201.
    assert sim.stats()["abandoned"] == 1
    assert [r.payload for r in sim.received()] == [b"x"]


def test_stall_then_answer_when_the_sender_waits(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription = sim.mint(1)[0]
    sim.add_rule("stall", seconds=0.2)
    started = time.monotonic()
    assert _send(sim, subscription, "slow", vapid).status_code == 201
    assert time.monotonic() - started >= 0.2
    assert [r.payload for r in sim.received()] == [b"slow"]


def test_clear_rules_restores_normal_answers(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription = sim.mint(1)[0]
    rule_id = sim.add_rule(503, retry_after=1)
    assert _send(sim, subscription, "x", vapid).status_code == 503
    assert sim.remove_rule(rule_id)
    sim.add_rule(502)
    assert _send(sim, subscription, "x", vapid).status_code == 502
    sim.clear_rules()
    assert _send(sim, subscription, "x", vapid).status_code == 201


def test_fraction_rules_are_seeded() -> None:
    def outcomes() -> list[bool]:
        simulator = Simulator("http://127.0.0.1:1", seed=7)
        simulator.add_rule(503, fraction=0.25)
        return [simulator.match_rule(f"token{i}") is not None for i in range(400)]

    first = outcomes()
    assert first == outcomes()
    assert 60 < sum(first) < 140


def test_rule_validation() -> None:
    simulator = Simulator("http://127.0.0.1:1")
    with pytest.raises(ValueError, match="status"):
        simulator.add_rule(418)
    with pytest.raises(ValueError, match="seconds"):
        simulator.add_rule("stall")
    with pytest.raises(ValueError, match="fraction"):
        simulator.add_rule(500, fraction=1.5)


def test_latency_rule_draws_are_seeded_with_a_tail() -> None:
    def holds() -> list[float]:
        simulator = Simulator("http://127.0.0.1:1", seed=3)
        simulator.add_rule("latency", seconds=0.06, tail_fraction=0.05, tail_seconds=0.48)
        return [simulator.hold_for(f"token{i}") for i in range(2000)]

    first = holds()
    assert first == holds()
    assert set(first) == {0.06, 0.48}
    assert 60 < first.count(0.48) < 140  # 5 % of 2,000 is 100


def test_latency_rule_with_jitter_for_a_fraction_of_one_endpoint() -> None:
    simulator = Simulator("http://127.0.0.1:1", seed=5)
    simulator.add_rule(
        "latency", endpoint="http://127.0.0.1:1/wpush/far", fraction=0.5, seconds=0.1, jitter=0.02
    )
    held = [simulator.hold_for("far") for _ in range(400)]
    assert all(hold == 0.0 or 0.1 <= hold <= 0.12 for hold in held)
    assert 150 < sum(1 for hold in held if hold) < 250
    assert len({hold for hold in held if hold}) > 100  # the jitter spreads them
    assert simulator.hold_for("near") == 0.0
    # A latency rule holds answers; it never takes the request from the answer rules.
    assert simulator.match_rule("far") is None
    assert simulator.rules()[0].hits == sum(1 for hold in held if hold)


def test_latency_rule_validation() -> None:
    simulator = Simulator("http://127.0.0.1:1")
    with pytest.raises(ValueError, match="needs seconds"):
        simulator.add_rule("latency")
    with pytest.raises(ValueError, match="tail_seconds must be at least"):
        simulator.add_rule("latency", seconds=0.5, tail_fraction=0.1, tail_seconds=0.1)
    with pytest.raises(ValueError, match="retry_after"):
        simulator.add_rule("latency", seconds=0.1, retry_after=1)
    with pytest.raises(ValueError, match="between 0 and 60"):
        simulator.add_rule("latency", seconds=120)
    with pytest.raises(ValueError, match="belong to latency rules"):
        simulator.add_rule(503, jitter=0.1)
    with pytest.raises(ValueError, match="tail_fraction"):
        simulator.add_rule("latency", seconds=0.1, tail_fraction=2, tail_seconds=1)


def test_held_answer_arrives_after_its_hold_and_the_message_is_taken_at_once(
    sim: SimulatorServer, vapid: Vapid
) -> None:
    subscription = sim.mint(1)[0]
    sim.add_rule("latency", seconds=0.3)
    started = time.monotonic()
    response = _send(sim, subscription, "far away", vapid)
    answered = time.time()
    assert response.status_code == 201
    assert time.monotonic() - started >= 0.3
    [received] = sim.received()
    # Recorded when it arrived, answered a hold later (like a service that queues it, then replies).
    assert received.payload == b"far away" and answered - received.time >= 0.3
    assert sim.stats()["rules"][0]["hits"] == 1


def test_held_answers_keep_their_order_on_a_pipelined_connection(sim: SimulatorServer, vapid: Vapid) -> None:
    slow, fast = sim.mint(2)
    sim.add_rule("latency", endpoint=slow["endpoint"], seconds=0.3)
    stats_request = f"GET /_sim/stats HTTP/1.1\r\nHost: {sim.origin[7:]}\r\n\r\n".encode()
    pushes = _raw_push(sim, slow, vapid, _body_for(slow, b"slow")) + _raw_push(
        sim, fast, vapid, _body_for(fast, b"fast")
    )
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as client:
        # The held answer comes first, the unheld one after it, then aiohttp's answer to the control
        # request (the hand-over waits for the held answers).
        client.sendall(pushes + stats_request)
        answers = _read_answers(client, 3)
    assert time.monotonic() - started >= 0.3
    firsts = [a.split(b"\r\n", 1)[0] for a in answers]
    assert firsts == [b"HTTP/1.1 201 Created", b"HTTP/1.1 201 Created", b"HTTP/1.1 200 OK"]
    locations = [re.search(rb"Location: (\S+)", a).group(1) for a in answers[:2]]  # type: ignore[union-attr]
    by_payload = {r.payload: r.message_id for r in sim.received()}
    assert locations == [
        f"{sim.origin}/m/{by_payload[b'slow']}".encode(),
        f"{sim.origin}/m/{by_payload[b'fast']}".encode(),
    ]
    assert json.loads(answers[2].split(b"\r\n\r\n", 1)[1])["received"] == 2


def test_a_client_that_leaves_before_its_held_answer_breaks_nothing(
    sim: SimulatorServer, vapid: Vapid
) -> None:
    gone, later = sim.mint(2)
    sim.add_rule("latency", endpoint=gone["endpoint"], seconds=0.2)
    with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as client:
        client.sendall(_raw_push(sim, gone, vapid, _body_for(gone, b"taken")))
        time.sleep(0.05)
    time.sleep(0.3)  # the hold ends after the client closed: the answer is dropped
    assert _send(sim, later, "still served", vapid).status_code == 201
    assert sorted(r.payload for r in sim.received()) == [b"still served", b"taken"]


def test_latency_rule_through_the_general_server(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription = sim.mint(1)[0]
    sim.add_rule("latency", seconds=0.2)
    body = _body_for(subscription, b"chunked")
    head = _raw_push(sim, subscription, vapid, b"").split(b"Content-Length: 0\r\n")[0]
    request = head + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as client:
        client.sendall(request)
        [answer] = _read_answers(client, 1)
    assert answer.startswith(b"HTTP/1.1 201 Created")
    assert time.monotonic() - started >= 0.2


# -- HTTP controls (for an out-of-process simulator) -----------------------------------------------


def test_http_controls(sim: SimulatorServer, vapid: Vapid) -> None:
    base = sim.url + "/_sim"
    with requests.Session() as session:
        minted = session.post(base + "/subscriptions", json={"count": 2})
        assert minted.status_code == 201
        first, second = minted.json()["subscriptions"]
        added = session.post(
            base + "/rules",
            json={"rules": [{"status": 404, "endpoint": first["endpoint"]}, {"status": 500, "count": 1}]},
        )
        assert added.status_code == 201
        assert len(added.json()["ids"]) == 2
        assert [r["status"] for r in session.get(base + "/rules").json()["rules"]] == [404, 500]
        assert session.post(base + "/rules", json={"status": 299}).status_code == 400
        latency = {"status": "latency", "seconds": 0.06, "tail_fraction": 0.05, "tail_seconds": 0.48}
        held = session.post(base + "/rules", json=latency)
        assert held.status_code == 201
        [listed] = [r for r in session.get(base + "/rules").json()["rules"] if r["status"] == "latency"]
        assert {k: listed[k] for k in latency} == latency
        assert session.delete(f"{base}/rules/{held.json()['ids'][0]}").status_code == 204
        bad = session.post(base + "/rules", json={"status": "latency", "seconds": "slow"})
        assert bad.status_code == 400 and "seconds must be a number" in bad.json()["message"]
        assert session.post(base + "/rules", data="not json").status_code == 400
        assert _send(sim, first, "x", vapid).status_code == 404
        assert _send(sim, second, "x", vapid).status_code == 500
        assert _send(sim, second, "x", vapid).status_code == 201
        stats = session.get(base + "/stats").json()
        assert stats["by_status"] == {"201": 1, "404": 1, "500": 1}
        assert stats["requests"] == 3
        received = session.get(base + "/received", params={"endpoint": second["endpoint"]}).json()["received"]
        assert [(r["text"], r["decrypted"]) for r in received] == [("x", True)]
        assert session.delete(base + "/rules").status_code == 204
        assert _send(sim, first, "x", vapid).status_code == 201
        assert session.post(base + "/reset").status_code == 204
        assert session.get(base + "/stats").json()["subscriptions"] == 0
        assert _send(sim, first, "x", vapid).status_code == 404


def test_verify_fraction_zero_skips_decryption(vapid: Vapid) -> None:
    with SimulatorServer(verify_fraction=0.0) as light:
        subscription = light.mint(1, shared_keys=True)[0]
        response = _http(
            "post", subscription["endpoint"], data=_body_for(subscription), headers=_headers(light, vapid)
        )
        assert response.status_code == 201
        [received] = light.received()
        assert received.payload is None and not received.decrypted
        assert light.stats()["not_verified"] == 1


# -- HTTPS -----------------------------------------------------------------------------------------


def test_https_with_ca_file(vapid: Vapid) -> None:
    with SimulatorServer(tls=True) as secure:
        assert secure.url.startswith("https://127.0.0.1:")
        assert secure.ws_url.startswith("wss://127.0.0.1:")
        assert secure.ca_file is not None
        subscription = secure.mint(1)[0]
        with requests.Session() as session:
            session.verify = secure.ca_file
            session.trust_env = False  # else REQUESTS_CA_BUNDLE, when set, overrides session.verify
            response = webpush(
                subscription,
                "over tls",
                vapid_private_key=vapid,
                vapid_claims={"sub": SUBJECT, "aud": secure.origin},
                ttl=60,
                requests_session=session,
            )
        assert isinstance(response, requests.Response)
        assert response.status_code == 201
        assert secure.received()[0].payload == b"over tls"
        # Strict verification (the default from Python 3.13) accepts the generated chain too.
        context = ssl.create_default_context(cafile=secure.ca_file)
        context.verify_flags |= ssl.VERIFY_X509_STRICT
        with urllib.request.urlopen(secure.url + "/_sim/stats", context=context) as answer:  # noqa: S310
            assert json.loads(answer.read())["received"] == 1
        with pytest.raises(requests.exceptions.SSLError):
            _http("get", secure.url + "/_sim/stats", verify=True)


# -- Mozilla push protocol over WebSocket ----------------------------------------------------------


async def _recv(ws: websockets.ClientConnection) -> dict[str, Any]:
    message = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
    assert isinstance(message, dict)
    return message


def test_websocket_client_receives_notifications(sim: SimulatorServer, vapid: Vapid) -> None:
    private, public, auth = generate_subscriber()  # the browser's keys, never shown to the simulator

    async def scenario() -> None:
        async with websockets.connect(
            sim.ws_url, subprotocols=[websockets.Subprotocol("push-notification")]
        ) as ws:
            assert ws.subprotocol == "push-notification"
            await ws.send(json.dumps({"messageType": "hello", "broadcasts": {}, "use_webpush": True}))
            hello = await _recv(ws)
            assert hello["messageType"] == "hello" and hello["status"] == 200 and hello["use_webpush"] is True
            uaid = hello["uaid"]
            assert isinstance(uaid, str) and 0 < len(uaid) <= 128
            await ws.send("{}")
            assert await asyncio.wait_for(ws.recv(), timeout=5) == "{}"
            # Firefox sends the applicationServerKey padded.
            key = _public_b64(vapid) + "="
            channel = "5b9c2c3f-2c1c-4a6e-9f0e-1d2a3b4c5d6e"
            await ws.send(json.dumps({"messageType": "register", "channelID": channel, "key": key}))
            registered = await _recv(ws)
            assert registered["status"] == 200 and registered["channelID"] == channel
            endpoint = registered["pushEndpoint"]
            assert endpoint.startswith(sim.url + "/wpush/")
            subscription = {
                "endpoint": endpoint,
                "keys": {"p256dh": b64url_encode(public), "auth": b64url_encode(auth)},
            }
            response = await asyncio.to_thread(_send, sim, subscription, "to firefox", vapid)
            assert response.status_code == 201
            notification = await _recv(ws)
            assert notification["messageType"] == "notification"
            assert notification["channelID"] == channel
            assert notification["ttl"] == 60
            assert notification["headers"] == {"encoding": "aes128gcm"}
            assert decrypt(b64url_decode(notification["data"]), private, auth) == b"to firefox"
            await ws.send(
                json.dumps(
                    {
                        "messageType": "ack",
                        "updates": [{"channelID": channel, "version": notification["version"], "code": 100}],
                    }
                )
            )
            await ws.send("{}")  # round trip so the ack has been handled
            assert await asyncio.wait_for(ws.recv(), timeout=5) == "{}"
            stats = sim.stats()
            assert (stats["forwarded"], stats["ws_acked"], stats["ws_pending"]) == (1, 1, 0)
            [received] = sim.received(endpoint)
            assert received.forwarded and received.payload is None

            # Sent while disconnected: stored and delivered after the next hello.
            await ws.close()
            response = await asyncio.to_thread(_send, sim, subscription, "while away", vapid)
            assert response.status_code == 201
        async with websockets.connect(
            sim.ws_url, subprotocols=[websockets.Subprotocol("push-notification")]
        ) as ws:
            await ws.send(json.dumps({"messageType": "hello", "uaid": uaid, "use_webpush": True}))
            again = await _recv(ws)
            assert again["uaid"] == uaid
            stored = await _recv(ws)
            assert decrypt(b64url_decode(stored["data"]), private, auth) == b"while away"
            await ws.send(json.dumps({"messageType": "nack", "version": stored["version"], "code": 301}))
            await ws.send(json.dumps({"messageType": "unregister", "channelID": channel, "code": 200}))
            unregistered = await _recv(ws)
            assert unregistered == {"messageType": "unregister", "channelID": channel, "status": 200}
            response = await asyncio.to_thread(_send, sim, subscription, "gone", vapid)
            assert response.status_code == 410
            assert sim.stats()["ws_nacked"] == 1

    asyncio.run(scenario())


def test_websocket_unknown_uaid_gets_a_new_one(sim: SimulatorServer) -> None:
    async def scenario() -> None:
        async with websockets.connect(
            sim.ws_url, subprotocols=[websockets.Subprotocol("push-notification")]
        ) as ws:
            await ws.send(json.dumps({"messageType": "hello", "uaid": "not-known", "use_webpush": True}))
            hello = await _recv(ws)
            assert hello["uaid"] != "not-known"

    asyncio.run(scenario())


def test_websocket_register_before_hello_is_refused(sim: SimulatorServer) -> None:
    async def scenario() -> None:
        async with websockets.connect(sim.ws_url) as ws:
            await ws.send(json.dumps({"messageType": "register", "channelID": "abc"}))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), timeout=5)

    asyncio.run(scenario())


def test_plain_get_describes_the_service(sim: SimulatorServer) -> None:
    info = _http("get", sim.url + "/").json()
    assert info["websocket"] == sim.ws_url


# -- the fast path (push POSTs answered without aiohttp) and its hand-over ---------------------------


def _raw_push(sim: SimulatorServer, subscription: dict[str, Any], vapid: Vapid, body: bytes) -> bytes:
    head = f"POST {subscription['endpoint'][len(sim.origin) :]} HTTP/1.1\r\nHost: {sim.origin[7:]}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in _headers(sim, vapid).items())
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def _read_answers(client: socket.socket, count: int) -> list[bytes]:
    """Read ``count`` whole HTTP/1.1 answers (every one has a Content-Length)."""
    data, answers = b"", []
    while len(answers) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", data[:end]).group(1))  # type: ignore[union-attr]
            if len(data) >= end + 4 + length:
                answers.append(data[: end + 4 + length])
                data = data[end + 4 + length :]
                continue
        chunk = client.recv(65536)
        assert chunk, "connection closed early"
        data += chunk
    return answers


def test_pipelined_pushes_then_a_control_request_on_one_connection(
    sim: SimulatorServer, vapid: Vapid
) -> None:
    first, second = sim.mint(2)
    requests_bytes = _raw_push(sim, first, vapid, _body_for(first, b"one")) + _raw_push(
        sim, second, vapid, _body_for(second, b"two")
    )
    stats_request = f"GET /_sim/stats HTTP/1.1\r\nHost: {sim.origin[7:]}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as client:
        # Both pushes and the control request in one write, split mid-header: the fast path answers
        # the pushes in order, then hands the connection (with the GET) to aiohttp.
        client.sendall(requests_bytes[:50])
        time.sleep(0.05)
        client.sendall(requests_bytes[50:] + stats_request)
        answers = _read_answers(client, 3)
    assert [a.split(b"\r\n", 1)[0] for a in answers] == [
        b"HTTP/1.1 201 Created",
        b"HTTP/1.1 201 Created",
        b"HTTP/1.1 200 OK",
    ]
    assert b"Location: " + sim.origin.encode() + b"/m/" in answers[0]
    assert json.loads(answers[2].split(b"\r\n\r\n", 1)[1])["received"] == 2
    assert [r.payload for r in sim.received()] == [b"one", b"two"]


def test_chunked_push_is_served_by_the_general_server(sim: SimulatorServer, vapid: Vapid) -> None:
    subscription = sim.mint(1)[0]
    body = _body_for(subscription, b"chunked")
    head = _raw_push(sim, subscription, vapid, b"").split(b"Content-Length: 0\r\n")[0]
    request = head + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as client:
        client.sendall(request)
        [answer] = _read_answers(client, 1)
    assert answer.startswith(b"HTTP/1.1 201 Created")
    assert sim.received()[0].payload == b"chunked"


def test_forgetting_a_websocket_client_drops_its_endpoints_and_gives_it_a_new_uaid(
    sim: SimulatorServer, vapid: Vapid
) -> None:
    """What makes Firefox fire pushsubscriptionchange: a hello answered with another uaid."""

    async def scenario() -> None:
        async with websockets.connect(
            sim.ws_url, subprotocols=[websockets.Subprotocol("push-notification")]
        ) as ws:
            await ws.send(json.dumps({"messageType": "hello", "use_webpush": True}))
            uaid = (await _recv(ws))["uaid"]
            channel = "0b6f3c1e-7a42-4d0f-9b8e-2f1c0d3e4a5b"
            await ws.send(
                json.dumps({"messageType": "register", "channelID": channel, "key": _public_b64(vapid)})
            )
            endpoint = (await _recv(ws))["pushEndpoint"]
            assert sim.ws_clients() == [uaid]
            # Over HTTP, like a test or an operator would: the socket is closed for the client to reconnect.
            response = await asyncio.to_thread(
                _http, "post", sim.url + "/_sim/ws/forget", json={"uaid": uaid}
            )
            assert response.status_code == 200 and response.json() == {"forgotten": {uaid: [endpoint]}}
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), timeout=5)
        async with websockets.connect(
            sim.ws_url, subprotocols=[websockets.Subprotocol("push-notification")]
        ) as ws:
            await ws.send(json.dumps({"messageType": "hello", "uaid": uaid, "use_webpush": True}))
            again = await _recv(ws)
            assert again["status"] == 200 and again["uaid"] != uaid  # Firefox drops its subscriptions now
            assert sim.ws_clients() == [again["uaid"]]
        _, public, auth = generate_subscriber()
        subscription = {
            "endpoint": endpoint,
            "keys": {"p256dh": b64url_encode(public), "auth": b64url_encode(auth)},
        }
        gone = await asyncio.to_thread(_send, sim, subscription, "after the reset", vapid)
        assert gone.status_code == 410
        missing = await asyncio.to_thread(_http, "post", sim.url + "/_sim/ws/forget", json={"uaid": "nobody"})
        assert missing.status_code == 404

    asyncio.run(scenario())
    assert sim.stats()["ws_forgotten"] == 1
