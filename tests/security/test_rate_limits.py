"""Per-address rate limits (Flask-Limiter on the same Redis): 429 with Retry-After and a JSON reason."""

from __future__ import annotations

import json
from collections.abc import Callable

import redis
from flask import Flask

from notifier.campaigns import CampaignInput, CampaignStore, receipt_token
from notifier.context import Context
from tests.web.test_api_subscriptions import make_sub


def subscribe(client, remote: str = "203.0.113.7"):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/subscriptions",
        data=json.dumps(make_sub()),
        content_type="application/json",
        environ_base={"REMOTE_ADDR": remote},
    )


def test_subscribe_is_limited_per_address(make_app: Callable[..., Flask], r: redis.Redis) -> None:
    app = make_app(NOTIFIER_RATE_LIMITS="1", NOTIFIER_RATE_SUBSCRIBE="3/minute")
    client = app.test_client()
    assert [subscribe(client).status_code for _ in range(3)] == [201, 201, 201]
    refused = subscribe(client)
    assert refused.status_code == 429
    body = refused.get_json()
    assert body["error"] == "rate_limited" and "too many requests" in body["message"]
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert body["retry_after"] == wait
    assert app.extensions["notifier"].subscriptions.count() == 3  # the refused one was not stored
    # Another address has its own allowance; counters live in Redis under the notifier prefix.
    assert subscribe(client, remote="198.51.100.9").status_code == 201
    assert any(key.startswith("notifier:ratelimit") for key in r.scan_iter())


def test_limits_are_shared_by_every_process_through_redis(make_app: Callable[..., Flask]) -> None:
    one = make_app(NOTIFIER_RATE_LIMITS="1", NOTIFIER_RATE_SUBSCRIBE="2/minute").test_client()
    two = make_app(NOTIFIER_RATE_LIMITS="1", NOTIFIER_RATE_SUBSCRIBE="2/minute").test_client()
    assert subscribe(one).status_code == 201
    assert subscribe(two).status_code == 201
    assert subscribe(one).status_code == 429


def test_events_are_limited(make_app: Callable[..., Flask], context: Context) -> None:
    app = make_app(NOTIFIER_RATE_LIMITS="1", NOTIFIER_RATE_EVENTS="2/minute")
    client = app.test_client()
    cid = CampaignStore(context.redis, context.keys).create(
        CampaignInput(title="t", body="b", url="https://a.example/")
    )
    statuses = []
    for i in range(3):
        sid = f"sid{i}"
        body = {"type": "shown", "cid": cid, "sid": sid, "rt": receipt_token(context.receipt_key, cid, sid)}
        statuses.append(client.post("/api/v1/events", json=body).status_code)
    assert statuses == [202, 202, 429]


def test_login_is_limited_and_answers_an_html_page(make_app: Callable[..., Flask]) -> None:
    app = make_app(NOTIFIER_RATE_LIMITS="1", NOTIFIER_RATE_LOGIN="2/minute")
    app.config["CSRF_DISABLED"] = True
    assert "auth.login" in app.view_functions
    client = app.test_client()
    form = {"email": "nobody@kabarkini.example", "password": "wrong"}
    first = [
        client.post("/login", data=form, environ_base={"REMOTE_ADDR": "203.0.113.50"}).status_code
        for _ in range(2)
    ]
    assert 429 not in first
    refused = client.post("/login", data=form, environ_base={"REMOTE_ADDR": "203.0.113.50"})
    assert refused.status_code == 429
    assert refused.mimetype == "text/html"
    assert int(refused.headers["Retry-After"]) >= 1
    # The login page itself (GET) is not limited.
    assert client.get("/login", environ_base={"REMOTE_ADDR": "203.0.113.50"}).status_code == 200


def test_limits_are_off_when_disabled(make_app: Callable[..., Flask]) -> None:
    client = make_app(NOTIFIER_RATE_LIMITS="0", NOTIFIER_RATE_SUBSCRIBE="1/minute").test_client()
    assert [subscribe(client).status_code for _ in range(3)] == [201, 201, 201]
