"""Per-address rate limits (Flask-Limiter on the same Redis): 429 with Retry-After and a JSON reason."""

from __future__ import annotations

from collections.abc import Callable

import redis
from flask import Flask

from notifier.campaigns import CampaignInput, CampaignStore, receipt_token
from notifier.context import Context
from tests.factories import make_sub, subscribe


def test_new_subscriptions_are_limited_per_network_and_a_known_one_is_always_reposted(
    make_app: Callable[..., Flask], r: redis.Redis
) -> None:
    app = make_app(NOTIFIER_RATE_LIMITS="1", NOTIFIER_RATE_SUBSCRIBE="3/minute")
    client = app.test_client()
    known = make_sub()
    assert subscribe(client, body=known).status_code == 201
    assert [subscribe(client).status_code for _ in range(2)] == [201, 201]
    refused = subscribe(client)
    assert refused.status_code == 429
    body = refused.get_json()
    assert body["error"] == "rate_limited" and "too many requests" in body["message"]
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert body["retry_after"] == wait
    assert app.extensions["notifier"].subscriptions.count() == 3  # the refused one was not stored
    # The same network re-posting a subscription it already has is never refused, and counts nothing.
    assert [subscribe(client, body=known).status_code for _ in range(5)] == [200] * 5
    # Another address has its own allowance; counters live in Redis under the notifier prefix.
    assert subscribe(client, remote="198.51.100.9").status_code == 201
    assert any(key.startswith("notifier:ratelimit") for key in r.scan_iter())


def test_an_ipv6_slash_64_is_one_network(make_app: Callable[..., Flask]) -> None:
    client = make_app(NOTIFIER_RATE_LIMITS="1", NOTIFIER_RATE_SUBSCRIBE="2/minute").test_client()
    assert subscribe(client, remote="2001:db8:1:2::1").status_code == 201
    assert subscribe(client, remote="2001:db8:1:2:ffff:ffff:ffff:fffe").status_code == 201
    assert subscribe(client, remote="2001:db8:1:2:abcd::9").status_code == 429  # same /64
    assert subscribe(client, remote="2001:db8:1:3::1").status_code == 201  # the next /64
    # An IPv4-mapped IPv6 address is the IPv4 address.
    assert subscribe(client, remote="198.51.100.77").status_code == 201
    assert subscribe(client, remote="::ffff:198.51.100.77").status_code == 201
    assert subscribe(client, remote="::ffff:198.51.100.77").status_code == 429


def test_a_site_wide_ceiling_limits_new_subscriptions_from_every_network(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(
        NOTIFIER_RATE_LIMITS="1",
        NOTIFIER_RATE_SUBSCRIBE="100/minute",
        NOTIFIER_RATE_SUBSCRIBE_GLOBAL="3/minute",
    ).test_client()
    assert [subscribe(client, remote=f"198.51.100.{i}").status_code for i in range(3)] == [201] * 3
    refused = subscribe(client, remote="198.51.100.200")
    assert refused.status_code == 429
    assert "the site is taking too many new subscriptions" in refused.get_json()["message"]


def test_limits_are_shared_by_every_process_through_redis(make_app: Callable[..., Flask]) -> None:
    one = make_app(NOTIFIER_RATE_LIMITS="1", NOTIFIER_RATE_SUBSCRIBE="2/minute").test_client()
    two = make_app(NOTIFIER_RATE_LIMITS="1", NOTIFIER_RATE_SUBSCRIBE="2/minute").test_client()
    assert subscribe(one).status_code == 201
    assert subscribe(two).status_code == 201
    assert subscribe(one).status_code == 429


def test_receipts_are_limited_per_token_never_per_address(
    make_app: Callable[..., Flask], context: Context
) -> None:
    app = make_app(NOTIFIER_RATE_LIMITS="1", NOTIFIER_RATE_EVENTS="2/minute")
    client = app.test_client()
    cid = CampaignStore(context.redis, context.keys).create(
        CampaignInput(title="t", body="b", url="https://a.example/")
    )

    def receipt(sid: str) -> dict[str, str]:
        return {"type": "shown", "cid": cid, "sid": sid, "rt": receipt_token(context.receipt_key, cid, sid)}

    # Many genuine receipts from one address all count.
    statuses = [client.post("/api/v1/events", json=receipt(f"sid{i}")).status_code for i in range(50)]
    assert statuses == [202] * 50
    # One token's repeats are limited: counted once, two repeats answered, then 429.
    statuses = [client.post("/api/v1/events", json=receipt("sid0")).status_code for _ in range(3)]
    assert statuses == [202, 202, 429]
    assert CampaignStore(context.redis, context.keys).get(cid).counters["shown"] == 50


def test_refused_receipts_are_limited_per_address(make_app: Callable[..., Flask], context: Context) -> None:
    client = make_app(NOTIFIER_RATE_LIMITS="1", NOTIFIER_RATE_EVENTS_REFUSED="3/minute").test_client()
    cid = CampaignStore(context.redis, context.keys).create(
        CampaignInput(title="t", body="b", url="https://a.example/")
    )
    forged = {"type": "shown", "cid": cid, "sid": "1", "rt": "A" * 22}
    env = {"REMOTE_ADDR": "203.0.113.66"}
    statuses = [client.post("/api/v1/events", json=forged, environ_base=env).status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]
    # A genuine receipt from that address still counts: only refusals are limited per address.
    good = {**forged, "rt": receipt_token(context.receipt_key, cid, "1")}
    assert client.post("/api/v1/events", json=good, environ_base=env).status_code == 202


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
