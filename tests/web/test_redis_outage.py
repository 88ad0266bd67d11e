"""The site while Redis is away or read-only: 503 with Retry-After and a reason, never a 500; /readyz says why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier.context import Context
from notifier.redis_conn import connect, free_port
from tests.factories import make_sub
from tests.reliability.topology import RedisNode


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[RedisNode]:
    """A replica whose primary is gone: it answers PING and refuses every write (what a plain redis://
    URL reaches after Sentinel demoted the primary it named)."""
    node = RedisNode("orphan", tmp_path / "orphan", replica_of=("127.0.0.1", free_port()))
    node.start()
    yield node
    node.stop()


def test_readyz_is_503_when_redis_answers_but_refuses_writes(settings, replica) -> None:  # type: ignore[no-untyped-def]
    from web import create_app

    client = connect(replica.url)
    assert client.ping()
    app = create_app({"TESTING": True}, context=Context.build(settings, client=client))
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["checks"]["redis"] == "read-only", body
    assert "refuses writes" in body["message"]


def test_a_subscribe_while_redis_is_down_is_503_with_retry_after_not_500(settings) -> None:  # type: ignore[no-untyped-def]
    from web import create_app

    down = connect(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2, socket_timeout=0.2)
    app = create_app({"TESTING": True}, context=Context.build(settings, client=down))
    resp = app.test_client().post("/api/v1/subscriptions", json={**make_sub(), "topics": ["breaking"]})
    assert resp.status_code == 503, resp.get_data(as_text=True)
    assert resp.headers["Retry-After"] == "5"
    body = resp.get_json()
    assert body["error"] == "unavailable" and "try again" in body["message"]


def test_readyz_stays_json_and_503_when_redis_goes_away_between_its_checks(settings, redis_url) -> None:  # type: ignore[no-untyped-def]
    """Mid-failover the probe's write can succeed and the next read fail: still a JSON 503, never HTML."""
    from web import create_app

    down = connect(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2, socket_timeout=0.2)
    context = Context.build(settings, client=down)
    context.probe = connect(redis_url)  # the write-probe reaches a primary; the worker checks do not
    ready = create_app({"TESTING": True}, context=context).test_client().get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body is not None, ready.get_data(as_text=True)
    assert body["checks"]["redis"] == "unreachable" and "Redis does not answer" in body["message"]


def test_machine_endpoints_answer_json_while_redis_is_down(settings) -> None:  # type: ignore[no-untyped-def]
    from web import create_app

    down = connect(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2, socket_timeout=0.2)
    client = create_app({"TESTING": True}, context=Context.build(settings, client=down)).test_client()
    for path in ("/readyz", "/metrics"):
        resp = client.get(path)
        assert resp.status_code in (200, 503), (path, resp.status_code)
        assert resp.mimetype != "text/html", (path, resp.get_data(as_text=True)[:200])
