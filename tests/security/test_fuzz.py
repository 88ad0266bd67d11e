"""Property-based fuzzing of /api/v1 from its own OpenAPI description (schemathesis + hypothesis).

Positive and negative cases for every served operation: no input may produce a 5xx,
every refusal is a JSON ``{"error", "message"}``, and a refused request stores nothing.
"""

from __future__ import annotations

import time

import redis
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.factories import snapshot

EXAMPLES = 200


def test_openapi_is_served_and_lists_the_api(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    spec = resp.get_json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    assert set(paths["/subscriptions"]) == {"post", "get", "patch", "delete"}
    assert {
        "/vapid-public-key",
        "/topics",
        "/campaigns",
        "/campaigns/{cid}",
        "/campaigns/{cid}/cancel",
        "/events",
    } <= set(paths)
    assert paths["/campaigns"]["post"]["security"] == [{"bearer": []}]


def test_openapi_describes_only_routes_that_exist(app: Flask) -> None:
    routed = {rule.rule for rule in app.url_map.iter_rules()}
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    for path in spec["paths"]:
        flask_path = "/api/v1" + path.replace("{", "<").replace("}", ">")
        assert flask_path in routed, path


def test_fuzz_api_no_5xx_and_refusals_store_nothing(app: Flask, r: redis.Redis, api_token: str) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    assert len(list(schema.get_all_operations())) >= 10
    cases = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE),
        schema.as_strategy(GenerationMode.NEGATIVE),
    )
    seen: dict[int, int] = {}
    started = time.monotonic()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def run(case) -> None:  # type: ignore[no-untyped-def]
        if case.operation.path.startswith("/campaigns"):
            # Past the token check, into validation (missing and wrong tokens have their own tests).
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {api_token}"}
        before = snapshot(r)
        response = case.call()
        status = response.status_code
        seen[status] = seen.get(status, 0) + 1
        label = (
            f"{case.method} {case.formatted_path} body={case.body!r:.300} -> {status} {response.text[:300]}"
        )
        assert status < 500, label
        if status >= 400:
            body = response.json()
            assert isinstance(body, dict) and {"error", "message"} <= set(body), label
            after = snapshot(r)
            assert after == before, label
            assert not any(":sub:" in key for key in set(after) - set(before)), label

    run()
    assert time.monotonic() - started < 60
    # The fuzzer must get past the front door, not only bounce off the media-type check.
    assert any(400 <= status < 500 for status in seen), seen
    assert any(status < 300 for status in seen), seen
