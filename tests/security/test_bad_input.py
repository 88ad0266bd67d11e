"""Bad input is refused early, with a reason: oversized bodies, malformed JSON, wrong types, odd Unicode."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import redis
from flask import Flask

from tests.factories import FCM, make_sub, snapshot

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def unsafe_routes(app: Flask) -> list[tuple[str, str]]:
    """Every (method, concrete path) that accepts a body, path parameters filled with ``x``."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<[^>]+>", "x", rule.rule)
        found.extend((method, path) for method in sorted(rule.methods or ()) if method in UNSAFE)
    return found


def assert_refused(resp: Any, status: int = 400, *, mention: str = "") -> dict[str, Any]:
    """A JSON refusal with the status and a non-empty reason (that mentions ``mention``)."""
    assert resp.status_code == status, resp.get_data(as_text=True)[:500]
    body = resp.get_json()
    assert isinstance(body, dict) and body.get("error") and body.get("message"), body
    assert mention.lower() in body["message"].lower(), body
    return body


def test_every_unsafe_route_refuses_an_oversized_body_with_413(app: Flask, r: redis.Redis) -> None:
    client = app.test_client()
    routes = unsafe_routes(app)
    assert ("POST", "/api/v1/subscriptions") in routes and ("POST", "/api/v1/events") in routes
    assert len(routes) >= 7, routes
    limit = app.config["MAX_CONTENT_LENGTH"]
    before = snapshot(r)
    for method, path in routes:
        for content_type, body in (
            ("application/json", json.dumps({"pad": "x" * limit}).encode()),
            ("application/x-www-form-urlencoded", b"title=" + b"x" * (limit + 10)),
            (
                "multipart/form-data; boundary=b",
                b"--b\r\nContent-Disposition: form-data; name=f\r\n\r\n"
                + b"x" * (limit + 10)
                + b"\r\n--b--\r\n",
            ),
        ):
            resp = client.open(path, method=method, data=body, content_type=content_type)
            assert resp.status_code == 413, (method, path, content_type, resp.status_code)
            if path.startswith("/api/"):
                assert resp.get_json()["error"] == "too_large"
            else:
                assert "too large" in resp.get_data(as_text=True).lower()
    assert snapshot(r) == before


def test_api_body_limits_are_smaller_than_the_app_limit(client) -> None:  # type: ignore[no-untyped-def]
    # 10 KiB is under MAX_CONTENT_LENGTH but over the subscribe route's own 4 KiB limit.
    resp = client.post(
        "/api/v1/subscriptions", data=json.dumps(make_sub(pad="x" * 10_000)), content_type="application/json"
    )
    assert_refused(resp, 413)


JSON_ROUTES = [
    ("POST", "/api/v1/subscriptions"),
    ("PATCH", "/api/v1/subscriptions"),
    ("DELETE", "/api/v1/subscriptions"),
    ("POST", "/api/v1/events"),
]


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
@pytest.mark.parametrize(
    "raw",
    [b"{", b"{'endpoint': 1}", b"\xff\xfe{}", b"[" * 1010, b'{"a": NaN', b"", b"\x00"],
    ids=["truncated", "single-quotes", "not-utf8", "deep-nesting", "nan-truncated", "empty", "nul"],
)
def test_malformed_json_is_400(client, method: str, path: str, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    resp = client.open(path, method=method, data=raw, content_type="application/json")
    assert_refused(resp, 400)


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
def test_wrong_content_type_is_refused(client, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    resp = client.open(
        path, method=method, data="endpoint=x", content_type="application/x-www-form-urlencoded"
    )
    assert_refused(resp, 415, mention="application/json")
    resp = client.open(path, method=method, data=b"{}")
    assert resp.status_code in (400, 415)
    assert resp.get_json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        [],
        "endpoint",
        42,
        None,
        {"endpoint": 1, "keys": {}},
        {"endpoint": ["https://fcm.googleapis.com/x"], "keys": {"p256dh": "a", "auth": "b"}},
        {"endpoint": FCM + "x", "keys": "p256dh"},
        {"endpoint": FCM + "x", "keys": {"p256dh": 1, "auth": 2}},
        {"endpoint": FCM + "x", "keys": {"p256dh": "!!!", "auth": "b"}},
    ],
    ids=[
        "list",
        "string",
        "number",
        "null",
        "endpoint-int",
        "endpoint-list",
        "keys-string",
        "keys-ints",
        "keys-not-b64",
    ],
)
def test_wrong_types_on_subscribe_are_400(client, r: redis.Redis, body: Any) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(r)
    resp = client.post("/api/v1/subscriptions", data=json.dumps(body), content_type="application/json")
    assert_refused(resp, 400)
    assert snapshot(r) == before


@pytest.mark.parametrize(
    "extra",
    [
        {"topics": "nasional"},
        {"topics": [1, 2]},
        {"topics": {"a": 1}},
        {"lang": 3},
        {"lang": "fr"},
        {"expirationTime": "soon"},
        {"expirationTime": True},
        {"expirationTime": -1},
    ],
)
def test_wrong_types_in_optional_fields_are_400(client, r: redis.Redis, extra: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    resp = client.post(
        "/api/v1/subscriptions", data=json.dumps(make_sub(**extra)), content_type="application/json"
    )
    assert_refused(resp, 400)
    assert not list(r.scan_iter(match="*sub:*"))


def test_huge_topic_lists_are_refused(client, r: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    resp = client.post(
        "/api/v1/subscriptions",
        data=json.dumps(make_sub(topics=["nasional"] * 33)),
        content_type="application/json",
    )
    assert_refused(resp, 400, mention="at most 32")
    resp = client.post(
        "/api/v1/subscriptions",
        data=json.dumps(make_sub(topics=["a"] * 600)),
        content_type="application/json",
    )
    assert_refused(resp, 400)
    resp = client.post(
        "/api/v1/subscriptions",
        data=json.dumps(make_sub(topics=["nasional"] * 5000)),
        content_type="application/json",
    )
    assert_refused(resp, 413)
    assert not list(r.scan_iter(match="*sub:*"))


LONE = '"\\ud800"'  # a JSON escape that decodes to a lone surrogate: valid JSON, not valid text


@pytest.mark.parametrize(
    ("method", "path", "raw"),
    [
        (
            "POST",
            "/api/v1/subscriptions",
            '{"endpoint": "https://fcm.googleapis.com/fcm/send/' + '\\ud800", "keys": {}}',
        ),
        (
            "POST",
            "/api/v1/subscriptions",
            '{"endpoint": "https://fcm.googleapis.com/x", "topics": [' + LONE + "]}",
        ),
        ("PATCH", "/api/v1/subscriptions", '{"endpoint": ' + LONE + ', "topics": []}'),
        ("DELETE", "/api/v1/subscriptions", '{"endpoint": ' + LONE + "}"),
        ("POST", "/api/v1/events", '{"type": "shown", "cid": ' + LONE + ', "sid": "a", "rt": "b"}'),
        ("POST", "/api/v1/subscriptions", '{"\\udfff": 1}'),
    ],
)
def test_lone_surrogates_are_400_not_500(client, r: redis.Redis, method: str, path: str, raw: str) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(r)
    resp = client.open(path, method=method, data=raw.encode(), content_type="application/json")
    assert_refused(resp, 400)
    assert snapshot(r) == before


def campaign(client, token: str, **fields: Any):  # type: ignore[no-untyped-def]
    body = {
        "title": "Gempa M5,2 guncang Bandung",
        "body": "Tidak berpotensi tsunami.",
        "url": "https://kabarkini.example/gempa",
        **fields,
    }
    return client.post(
        "/api/v1/campaigns",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.mark.parametrize(
    ("fields", "mention"),
    [
        ({"title": "Berita\x00palsu"}, "control"),
        ({"body": "a\x07b"}, "control"),
        ({"title": "Harga \u202enaik\u202c"}, "bidirectional"),
        ({"body": "klik \u2066di sini\u2069"}, "bidirectional"),
        ({"title": "x" * 121}, "at most 120"),
        ({"body": "x" * 501}, "at most 500"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "blank"),
        ({"title": 5}, "string"),
        ({"topics": ["nasional"] * 40}, "at most 32"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": "60"}, "ttl"),
        ({"urgency": "now"}, "urgency"),
        ({"send_at": "yesterday"}, "send_at"),
    ],
)
def test_campaign_text_oddities_are_400(
    client,
    r: redis.Redis,
    api_token: str,
    fields: dict[str, Any],  # type: ignore[no-untyped-def]
    mention: str,
) -> None:
    before = snapshot(r)
    assert_refused(campaign(client, api_token, **fields), 400, mention=mention)
    assert snapshot(r) == before


def test_campaign_lone_surrogate_title_is_400(client, r: redis.Redis, api_token: str) -> None:  # type: ignore[no-untyped-def]
    raw = '{"title": "a\\ud800b", "body": "b", "url": "https://kabarkini.example/a"}'
    before = snapshot(r)
    resp = client.post(
        "/api/v1/campaigns",
        data=raw,
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_token}"},
    )
    assert_refused(resp, 400)
    assert snapshot(r) == before


def test_right_to_left_text_itself_is_accepted(client, api_token: str) -> None:  # type: ignore[no-untyped-def]
    # Arabic needs no override characters; refusing the overrides must not refuse the script.
    resp = campaign(client, api_token, title="عاجل: زلزال في باندونغ", body="لا خطر تسونامي")
    assert resp.status_code == 202, resp.get_json()
