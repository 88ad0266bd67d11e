"""The per-address moving window behind the rate limits: every configured limit, atomic refusals, failures."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from flask import Flask

from tests.factories import subscribe
from web.security import EXTENSION, RouteLimit

#: The reader address of this module's requests (test_rate_limits uses its own).
ADDRESS = "203.0.113.20"


def test_every_configured_limit_counts_and_a_refusal_counts_nothing(
    make_app: Callable[..., Flask], r: redis.Redis
) -> None:
    app = make_app(NOTIFIER_RATE_LIMITS="1", NOTIFIER_RATE_SUBSCRIBE="5/minute;2/hour")
    client = app.test_client()
    assert [subscribe(client, ADDRESS).status_code for _ in range(2)] == [201, 201]
    refused = subscribe(client, ADDRESS)
    assert refused.status_code == 429
    # The hour limit refused it, so the wait is the hour window's, not the minute's.
    wait = int(refused.headers["Retry-After"])
    assert 60 < wait <= 3600
    assert refused.get_json()["retry_after"] == wait
    assert "2 per 1 hour" in refused.get_json()["message"]
    keys = [key for key in r.scan_iter(match="notifier:ratelimit*") if not key.endswith(":*")]
    assert len(keys) == 2 and all(key.endswith(f":{ADDRESS}") for key in keys)
    assert all(r.llen(key) == 2 for key in keys)  # the refused request was not counted
    # Beside them, the site-wide ceiling's one number (NOTIFIER_RATE_SUBSCRIBE_GLOBAL: 1000/second, 1000000/day).
    assert r.type(app.extensions["notifier"].keys.rate_limit("api.subscribe", 1000, 1, "*")) == "string"


def test_the_wait_is_until_the_oldest_counted_hit_leaves_the_window(context) -> None:  # type: ignore[no-untyped-def]
    limit = RouteLimit(context.redis, context.keys, "test.view", "2/minute")
    assert limit.hit("198.51.100.1") == 0
    assert limit.hit("198.51.100.1") == 0
    wait = limit.hit("198.51.100.1")
    assert 58 <= wait <= 60
    assert limit.hit("198.51.100.2") == 0  # another address has its own window
    key = context.keys.rate_limit("test.view", 2, 60, "198.51.100.1")
    assert 0 < context.redis.ttl(key) <= 60  # counters expire with their window


def test_a_redis_failure_lets_the_request_through(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(NOTIFIER_RATE_LIMITS="1", NOTIFIER_RATE_SUBSCRIBE="1/minute")

    def down(self: RouteLimit, mode: str, address: str) -> int:
        raise redis.ConnectionError("Redis is down")

    monkeypatch.setattr(RouteLimit, "_call", down)
    client = app.test_client()
    assert [subscribe(client, ADDRESS).status_code for _ in range(2)] == [201, 201]


def test_disabled_limits_leave_the_views_unwrapped(make_app: Callable[..., Flask]) -> None:
    from web import api

    app = make_app(NOTIFIER_RATE_LIMITS="0")
    assert app.view_functions["api.subscribe"] is api.subscribe
    assert app.extensions[EXTENSION] == {}
    limited = make_app(NOTIFIER_RATE_LIMITS="1")
    # Login is wrapped; subscribe and receipts check their own limits inside the view.
    assert limited.view_functions["auth.login"] is not app.view_functions["auth.login"]
    assert limited.view_functions["api.subscribe"] is api.subscribe
    assert set(limited.extensions[EXTENSION]) == {"api.subscribe", "api.events.refused", "auth.login"}


def test_large_limits_keep_one_number_per_client_not_a_list_of_hits(context) -> None:  # type: ignore[no-untyped-def]
    limit = RouteLimit(context.redis, context.keys, "test.big", "1000/day")
    assert all(limit.hit("198.51.100.3") == 0 for _ in range(1000))
    wait = limit.hit("198.51.100.3")
    assert 80 <= wait <= 87  # the rate refills: one more every 86.4 s (a day / 1000)
    key = context.keys.rate_limit("test.big", 1000, 86400, "198.51.100.3")
    assert context.redis.type(key) == "string" and 0 < context.redis.ttl(key) <= 86401


def test_peek_counts_nothing_and_add_counts_without_a_check(context) -> None:  # type: ignore[no-untyped-def]
    limit = RouteLimit(context.redis, context.keys, "test.peek", "2/minute", "3/minute")
    assert limit.peek("198.51.100.4") == (0, None)
    limit.add("198.51.100.4")
    limit.add("198.51.100.4")
    wait, part = limit.peek("198.51.100.4")
    assert 58 <= wait <= 60 and part is not None and not part.shared
    # The site-wide ceiling (shared_spec) counts every client together.
    limit.add("198.51.100.5")
    wait, part = limit.peek("198.51.100.6")
    assert wait >= 58 and part is not None and part.shared
