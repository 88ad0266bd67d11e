"""The subscription API against real Redis: upsert, topics, delete, and every validation rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from notifier.crypto import b64url_encode
from tests.factories import FCM, count_view_calls, make_sub, post


def test_vapid_public_key_is_the_configured_key(client, context) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/api/v1/vapid-public-key")
    assert resp.status_code == 200
    assert resp.get_json() == {"publicKey": context.vapid.public_key_b64}
    assert len(context.vapid.public_key_bytes) == 65


def test_subscribe_creates_then_upserts(client, r, context) -> None:  # type: ignore[no-untyped-def]
    body = make_sub(topics=["nasional", "ekonomi"], lang="en")
    resp = post(
        client, body, headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36"}
    )
    assert resp.status_code == 201, resp.get_json()
    sid = resp.get_json()["id"]
    assert context.subscriptions.sid_of(body["endpoint"]) == sid
    stored = context.subscriptions.get(sid)
    assert stored.endpoint == body["endpoint"]
    assert stored.p256dh == body["keys"]["p256dh"]
    assert stored.topics == ("nasional", "ekonomi")
    assert stored.lang == "en"
    assert stored.browser == "chrome-desktop"
    assert stored.key_id == context.vapid.key_id
    assert r.getbit(context.keys.subs_live, int(sid)) == 1
    assert r.getbit(context.keys.subs_topic("nasional"), int(sid)) == 1
    assert context.subscriptions.count("ekonomi") == 1

    body["topics"] = ["olahraga"]
    resp = post(client, body)
    assert resp.status_code == 200
    assert resp.get_json()["id"] == sid
    assert r.getbit(context.keys.subs_topic("nasional"), int(sid)) == 0
    assert r.getbit(context.keys.subs_topic("olahraga"), int(sid)) == 1
    assert context.subscriptions.get(sid).created == stored.created
    assert context.subscriptions.count() == 1
    assert context.subscriptions.audience_size(["nasional", "ekonomi", "olahraga"]) == 1


def test_change_topics_and_unsubscribe(client, r, context) -> None:  # type: ignore[no-untyped-def]
    body = make_sub(topics=["breaking"])
    sid = post(client, body).get_json()["id"]
    resp = client.patch("/api/v1/subscriptions", json={"endpoint": body["endpoint"], "topics": ["teknologi"]})
    assert resp.status_code == 200
    assert resp.get_json()["topics"] == ["teknologi"]
    assert context.subscriptions.count("teknologi") == 1
    assert r.getbit(context.keys.subs_topic("teknologi"), int(sid)) == 1
    assert context.subscriptions.count("breaking") == 0
    got = client.get("/api/v1/subscriptions", query_string={"endpoint": body["endpoint"]})
    assert got.get_json()["topics"] == ["teknologi"]

    resp = client.delete("/api/v1/subscriptions", json={"endpoint": body["endpoint"]})
    assert resp.status_code == 204
    assert context.subscriptions.load_many([sid]) == []
    assert context.subscriptions.sid_of(body["endpoint"]) is None
    assert context.subscriptions.count() == 0
    assert context.subscriptions.count("teknologi") == 0
    assert client.get("/api/v1/subscriptions", query_string={"endpoint": body["endpoint"]}).status_code == 404
    # Subscribing again is a new subscriber with a new id (ids are never reused).
    again = post(client, body)
    assert again.status_code == 201 and again.get_json()["id"] != sid


def _bad_point() -> str:
    return b64url_encode(b"\x04" + b"\x01" * 64)


BAD_CASES = [
    ("not an object", ["a"], "invalid"),
    ("missing endpoint", {"keys": {"p256dh": "x", "auth": "y"}}, "missing_field"),
    ("missing keys", {"endpoint": FCM + "abc"}, "missing_field"),
    ("endpoint not a string", {"endpoint": 5, "keys": {}}, "invalid"),
    ("http endpoint", "http://fcm.googleapis.com/fcm/send/abc", "unsafe_endpoint"),
    ("unknown host", "https://evil.example.com/push/abc", "unsafe_endpoint"),
    ("loopback", "https://127.0.0.1/push/abc", "unsafe_endpoint"),
    ("metadata address", "https://169.254.169.254/latest/meta-data", "unsafe_endpoint"),
    ("private range", "https://10.0.0.7/push", "unsafe_endpoint"),
    ("ipv6 loopback", "https://[::1]/push", "unsafe_endpoint"),
    ("ipv6 unique local", "https://[fd00::1]/push", "unsafe_endpoint"),
    ("credentials", "https://user:pw@fcm.googleapis.com/fcm/send/abc", "unsafe_endpoint"),
    ("odd port", "https://fcm.googleapis.com:8443/fcm/send/abc", "unsafe_endpoint"),
    ("absurd endpoint", "https://fcm.googleapis.com/fcm/send/" + "a" * 2000, "unsafe_endpoint"),
]


@pytest.mark.parametrize(("label", "endpoint_or_body", "code"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_endpoints_and_shapes_are_400(client, r, label, endpoint_or_body, code) -> None:  # type: ignore[no-untyped-def]
    body = make_sub(endpoint_or_body) if isinstance(endpoint_or_body, str) else endpoint_or_body
    resp = post(client, body)
    assert resp.status_code == 400, (label, resp.get_json())
    data = resp.get_json()
    assert data["error"] == code
    assert data["message"]
    assert r.dbsize() == 0


@pytest.mark.parametrize(
    ("label", "mutate", "needle"),
    [
        ("p256dh not base64", lambda b: b["keys"].update(p256dh="***"), "base64url"),
        (
            "p256dh compressed",
            lambda b: b["keys"].update(p256dh=b64url_encode(b"\x02" + b"\x01" * 32)),
            "uncompressed",
        ),
        ("p256dh off curve", lambda b: b["keys"].update(p256dh=_bad_point()), "curve"),
        ("auth 12 bytes", lambda b: b["keys"].update(auth=b64url_encode(b"x" * 12)), "16 bytes"),
        ("auth missing", lambda b: b["keys"].pop("auth"), "keys.auth"),
        ("unknown topic", lambda b: b.update(topics=["gosip"]), "unknown topic"),
        ("topics not list", lambda b: b.update(topics="nasional"), "list"),
        ("too many topics", lambda b: b.update(topics=["nasional"] * 40), "at most"),
        ("bad lang", lambda b: b.update(lang="fr"), "lang"),
        ("bad expiration", lambda b: b.update(expirationTime="soon"), "expirationTime"),
    ],
)
def test_bad_keys_topics_and_fields_are_400(client, r, label, mutate, needle) -> None:  # type: ignore[no-untyped-def]
    body = make_sub()
    mutate(body)
    resp = post(client, body)
    assert resp.status_code == 400, label
    assert needle in resp.get_json()["message"]
    assert r.dbsize() == 0


def test_malformed_json_wrong_type_and_oversized(client, r) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/api/v1/subscriptions", data="{not json", content_type="application/json")
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "malformed_json"
    resp = client.post("/api/v1/subscriptions", data=json.dumps(make_sub()), content_type="text/plain")
    assert resp.status_code == 415
    assert "application/json" in resp.get_json()["message"]
    big = make_sub(padding="x" * 5000)
    resp = post(client, big)
    assert resp.status_code == 413
    assert resp.get_json()["error"] == "too_large"
    assert r.dbsize() == 0


def test_push_hosts_allow_a_local_simulator(settings_env, r) -> None:  # type: ignore[no-untyped-def]
    from notifier.context import Context
    from notifier.settings import Settings
    from web import create_app

    env = dict(settings_env, NOTIFIER_PUSH_HOSTS="127.0.0.1:8999")
    app = create_app(context=Context.build(Settings.from_env(env), client=r))
    client = app.test_client()
    assert post(client, make_sub("http://127.0.0.1:8999/wpush/abc")).status_code == 201
    # Only the named port, and plain http only for loopback hosts named there.
    assert post(client, make_sub("http://127.0.0.1:9000/wpush/abc")).status_code == 400
    assert post(client, make_sub("http://fcm.googleapis.com/fcm/send/x")).status_code == 400


def test_development_session_key_is_secret_and_stable(settings_env, r) -> None:  # type: ignore[no-untyped-def]
    from notifier.context import Context
    from notifier.settings import Settings
    from web import create_app

    env = {k: v for k, v in settings_env.items() if k != "SECRET_KEY"}
    first = create_app(context=Context.build(Settings.from_env(env), client=r))
    again = create_app(context=Context.build(Settings.from_env(env), client=r))
    key = first.config["SECRET_KEY"]
    assert key == again.config["SECRET_KEY"]
    public = first.extensions["notifier"].vapid.public_key_b64
    assert public[:16] not in key and len(key) == 64


def test_the_subscribe_fast_path_answers_exactly_as_the_flask_view(app, client, context) -> None:  # type: ignore[no-untyped-def]
    import io
    import logging

    from web.logging import LOGGER, RequestJsonFormatter

    calls = count_view_calls(app, "api.subscribe")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RequestJsonFormatter())
    logging.getLogger(LOGGER).addHandler(handler)
    try:
        first = make_sub(topics=["olahraga", "nasional"])
        fast = client.post("/api/v1/subscriptions", json=first, headers={"X-Request-ID": "req-fast-0001"})
        assert calls == []  # answered before Flask
        client.set_cookie("unrelated", "1")  # any cookie goes through Flask (an editor's session links)
        slow = client.post("/api/v1/subscriptions", json=make_sub(topics=["olahraga", "nasional"]))
        assert calls == [1]
        client.delete_cookie("unrelated")
        again = client.post("/api/v1/subscriptions", json=first)
        assert calls == [1]
    finally:
        logging.getLogger(LOGGER).removeHandler(handler)

    assert fast.status_code == slow.status_code == 201 and again.status_code == 200
    assert (
        fast.data
        == json.dumps(
            {"id": fast.json["id"], "lang": "id", "topics": ["olahraga", "nasional"]},
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        + b"\n"
    )
    assert slow.data == fast.data.replace(fast.json["id"].encode(), slow.json["id"].encode(), 1)
    assert again.json == fast.json

    def comparable(response: Any) -> list[tuple[str, str]]:
        return sorted((k, v) for k, v in response.headers if k not in ("X-Request-ID", "Content-Length"))

    assert comparable(fast) == comparable(slow) == comparable(again)
    assert fast.headers["X-Request-ID"] == "req-fast-0001" and len(slow.headers["X-Request-ID"]) == 32
    assert fast.headers["Content-Length"] == str(len(fast.data))
    sub = context.subscriptions.get(fast.json["id"])
    assert sub.endpoint == first["endpoint"] and sub.topics == ("olahraga", "nasional")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(x["status"], x["endpoint"], x["path"], x["method"]) for x in lines] == [
        (201, "api.subscribe", "/api/v1/subscriptions", "POST"),
    ] * 2 + [(200, "api.subscribe", "/api/v1/subscriptions", "POST")]
    assert lines[0]["request_id"] == "req-fast-0001" and lines[0]["duration_ms"] >= 0


def test_refusals_on_the_fast_path_come_from_flask_with_the_body_intact(app, client, context) -> None:  # type: ignore[no-untyped-def]
    calls = count_view_calls(app, "api.subscribe")
    bad = make_sub(topics=["no-such-topic"])
    response = client.post("/api/v1/subscriptions", json=bad)
    assert response.status_code == 400 and response.json["error"] == "unknown_topic"
    assert calls == [1]  # Flask read the same body again and refused it
    response = client.post(
        "/api/v1/subscriptions", data=b'{"endpoint": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and response.json["error"] == "malformed_json"
    assert context.subscriptions.count() == 0


def test_a_subscription_that_replaces_another_takes_its_place(client, context) -> None:  # type: ignore[no-untyped-def]
    old = make_sub(topics=["nasional"], lang="en")
    first = client.post("/api/v1/subscriptions", json=old)
    assert first.status_code == 201
    new = make_sub()  # the service worker after pushsubscriptionchange: no topics of its own
    answer = client.post("/api/v1/subscriptions", json={**new, "replaces": old["endpoint"]})
    assert answer.status_code == 200
    assert answer.get_json() == {
        "id": first.get_json()["id"],
        "topics": ["nasional"],
        "lang": "en",
        "replaced": True,
    }
    assert client.get("/api/v1/subscriptions", query_string={"endpoint": old["endpoint"]}).status_code == 404
    assert client.get("/api/v1/subscriptions", query_string={"endpoint": new["endpoint"]}).get_json()[
        "topics"
    ] == ["nasional"]
    assert context.subscriptions.count() == 1
    # An old endpoint the server does not know: the new subscription is stored as usual.
    other = make_sub(topics=["olahraga"])
    stored = client.post(
        "/api/v1/subscriptions", json={**other, "replaces": "https://fcm.googleapis.com/fcm/send/x"}
    )
    assert stored.status_code == 201 and "replaced" not in stored.get_json()
    assert context.subscriptions.count() == 2
    for bad in ("", 5, "x" * 3000):
        refused = client.post("/api/v1/subscriptions", json={**make_sub(), "replaces": bad})
        assert refused.status_code == 400 and "replaces" in refused.get_json()["message"]
