"""Unreachable subscriptions: a push service that answers 201 and a browser that never shows anything.

web.push.apple.com answers 201 for a subscription that no longer exists (WebKit bug 249766, closed
WONTFIX): the publisher's Safari audience only grows. The simulator does exactly that for every
subscription here; only the readers whose browser reports ``shown`` are alive. After
``NOTIFIER_UNREACHABLE_AFTER`` pushes in a row with no ``shown``, a subscription is unreachable: counted
apart, left out of non-breaking campaigns, still sent breaking ones, and revived by a ``shown`` or a
re-post of its subscription from its page. Campaigns run in this process through the real sender.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from notifier import stats
from notifier.campaigns import CampaignStore, validate_campaign
from notifier.context import Context
from notifier.crypto import b64url_encode, generate_subscriber
from notifier_simulator import SimulatorServer
from tests.factories import run_queued
from workers.jobs import launch
from workers.queues import PLAN_QUEUE, SEND_QUEUE

AFTER = 3


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    """Unreachable after 3 pushes never shown; no frequency cap (this test sends many in an hour)."""
    return {**settings_env, "NOTIFIER_UNREACHABLE_AFTER": str(AFTER), "NOTIFIER_FREQ_CAP_PER_HOUR": "0"}


def send(context: Context, *, breaking: bool = False, n: int = 0) -> dict[str, Any]:
    """Create a campaign to ``nasional``, run its jobs here; its counters and the messages received."""
    item = validate_campaign(
        {
            "title": f"Kabar nasional {n}",
            "body": "Isi kabar.",
            "url": f"https://kabarkini.example/nasional/{n}",
            "topics": ["nasional"],
            "breaking": breaking,
        },
        topics=context.topics,
    )
    store = CampaignStore(context.redis, context.keys)
    cid = store.create(item)
    launch(context.raw_redis, cid, None)
    run_queued(context.raw_redis, PLAN_QUEUE, SEND_QUEUE)
    campaign = store.get(cid)
    assert campaign.state == "done"
    return {"cid": cid, "counters": campaign.counters}


def receipts_of(simulator: SimulatorServer, cid: str) -> dict[str, dict[str, str]]:
    """endpoint → the receipt fields its message carried, for one campaign."""
    out = {}
    for received in simulator.received():
        data = json.loads(received.payload or b"{}")["notification"]["data"]
        if data["cid"] == cid:
            out[received.endpoint] = {"cid": cid, "sid": data["sid"], "rt": data["rt"]}
    return out


def test_a_subscription_that_never_shows_becomes_unreachable_and_only_breaking_news_retries_it(
    context: Context,
    simulator: SimulatorServer,
    client,
    job_env,  # type: ignore[no-untyped-def]
) -> None:
    minted = simulator.mint(20)
    for sub in minted:
        assert client.post("/api/v1/subscriptions", json={**sub, "topics": ["nasional"]}).status_code == 201
    alive = {sub["endpoint"] for sub in minted[:5]}  # these readers' browsers report "shown"

    def show(cid: str, endpoints: set[str]) -> None:
        for endpoint, receipt in receipts_of(simulator, cid).items():
            if endpoint in endpoints:
                answer = client.post("/api/v1/events", json={"type": "shown", **receipt})
                assert answer.status_code == 202 and answer.get_json() == {"counted": True}

    # AFTER campaigns in a row: everyone is sent (201 from the simulator), only five show them.
    for n in range(AFTER):
        sent = send(context, n=n)
        assert sent["counters"]["total"] == 20 and sent["counters"]["sent"] == 20
        assert sent["counters"]["unreachable"] == 0
        show(sent["cid"], alive)
    standing = context.subscriptions.standing()
    assert standing["unreachable"] == 15
    assert standing["by_service"]["other"] == {"total": 20, "unreachable": 15}  # the simulator's endpoints
    assert context.subscriptions.audience_breakdown(["nasional"]) == {
        "total": 20, "reached": 5, "unreachable": 15, "over_budget": 0
    }  # fmt: skip

    # A non-breaking campaign leaves them out (counted apart, not in its total) ...
    ordinary = send(context, n=10)
    assert ordinary["counters"]["total"] == 5 and ordinary["counters"]["sent"] == 5
    assert ordinary["counters"]["unreachable"] == 15
    assert set(receipts_of(simulator, ordinary["cid"])) == alive
    show(ordinary["cid"], alive)

    # ... a breaking one retries them.
    breaking = send(context, breaking=True, n=11)
    assert breaking["counters"]["total"] == 20 and breaking["counters"]["sent"] == 20
    assert breaking["counters"]["unreachable"] == 0
    messages = receipts_of(simulator, breaking["cid"])
    assert len(messages) == 20

    # One of them shows it: revived at once. Another's page re-posts its subscription: revived too.
    dormant = [sub for sub in minted if sub["endpoint"] not in alive]
    show(breaking["cid"], alive | {dormant[0]["endpoint"]})
    assert (
        client.post("/api/v1/subscriptions", json={**dormant[1], "topics": ["nasional"]}).status_code == 200
    )
    assert context.subscriptions.standing()["unreachable"] == 13
    # Every audience figure counts them apart: the ops figures and /metrics agree.
    figures = stats.subscribers(context.redis, context.keys, context.topic_slugs, sample=0)
    assert (figures["total"], figures["unreachable"]) == (20, 13)
    assert figures["by_service"]["other"] == {"total": 20, "unreachable": 13}
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "notifier_subscribers 20.0" in metrics and "notifier_subscribers_unreachable 13.0" in metrics
    assert 'notifier_push_service_subscribers{service="other",standing="unreachable"} 13.0' in metrics
    again = send(context, n=12)
    assert again["counters"]["total"] == 7 and again["counters"]["unreachable"] == 13
    assert set(receipts_of(simulator, again["cid"])) == alive | {
        dormant[0]["endpoint"],
        dormant[1]["endpoint"],
    }


def fcm_subscription() -> dict[str, Any]:
    """A Chrome-shaped subscription: an FCM endpoint and real keys."""
    _, public, auth = generate_subscriber()
    token = b64url_encode(secrets.token_bytes(120))
    return {
        "endpoint": "https://fcm.googleapis.com/fcm/send/" + token,
        "keys": {"p256dh": b64url_encode(public), "auth": b64url_encode(auth)},
    }


def test_a_removed_subscription_leaves_no_standing_behind(context: Context, client) -> None:  # type: ignore[no-untyped-def]
    sub = fcm_subscription()
    assert client.post("/api/v1/subscriptions", json=sub).status_code == 201
    sid = context.subscriptions.sid_of(sub["endpoint"])
    assert sid is not None
    pipe = context.redis.pipeline()
    context.subscriptions.mark_sent([sid], pipe, unreachable_after=1, budget=1, now=1_800_000_000)
    pipe.execute()
    assert context.subscriptions.standing() == {
        "by_service": {
            "fcm": {"total": 1, "unreachable": 1},
            **{name: {"total": 0, "unreachable": 0} for name in ("mozilla", "apple", "windows", "other")},
        },
        "unreachable": 1,
        "over_budget": 1,
    }
    assert client.delete("/api/v1/subscriptions", json={"endpoint": sub["endpoint"]}).status_code == 204
    standing = context.subscriptions.standing()
    assert standing["unreachable"] == 0 and standing["over_budget"] == 0
    assert standing["by_service"]["fcm"] == {"total": 0, "unreachable": 0}
