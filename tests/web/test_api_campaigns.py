"""Campaigns through the API with a bearer token, and receipts through /api/v1/events."""

from __future__ import annotations

from rq import Queue

from notifier.campaigns import receipt_token
from notifier.tokens import TokenStore
from workers.queues import PLAN_QUEUE

BODY = {
    "title": "Timnas lolos ke final",
    "body": "Menang 2-1 atas Vietnam.",
    "url": "https://kabarkini.example/olahraga/final",
    "topics": ["olahraga"],
    "breaking": True,
}


def test_campaign_needs_a_valid_token(client, r, context) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/api/v1/campaigns", json=BODY)
    assert resp.status_code == 401 and "Bearer" in resp.get_json()["message"]
    resp = client.post("/api/v1/campaigns", json=BODY, headers={"Authorization": "Bearer ntk_wrong"})
    assert resp.status_code == 401
    assert r.zcard(context.keys.campaigns) == 0


def test_create_show_and_cancel(client, r, context) -> None:  # type: ignore[no-untyped-def]
    token = TokenStore(r, context.keys).create("cms")
    assert not any(token in v for v in r.hgetall(context.keys.tokens).values())  # only the hash is stored
    auth = {"Authorization": f"Bearer {token}"}
    resp = client.post("/api/v1/campaigns", json=BODY, headers=auth)
    assert resp.status_code == 202, resp.get_json()
    cid = resp.get_json()["id"]
    assert Queue(PLAN_QUEUE, connection=context.raw_redis).job_ids == [f"plan-{cid}"]
    shown = client.get(f"/api/v1/campaigns/{cid}", headers=auth).get_json()
    assert shown["state"] == "scheduled" and shown["urgency"] == "high" and shown["topics"] == ["olahraga"]
    assert client.post(f"/api/v1/campaigns/{cid}/cancel", headers=auth).get_json()["state"] == "cancelled"
    assert client.post(f"/api/v1/campaigns/{cid}/cancel", headers=auth).status_code == 409
    assert client.get("/api/v1/campaigns/nope", headers=auth).status_code == 404


def test_invalid_campaign_is_400_and_nothing_stored(client, r, context) -> None:  # type: ignore[no-untyped-def]
    auth = {"Authorization": f"Bearer {TokenStore(r, context.keys).create('cms')}"}
    resp = client.post("/api/v1/campaigns", json={**BODY, "url": "javascript:alert(1)"}, headers=auth)
    assert resp.status_code == 400 and "http(s)" in resp.get_json()["message"]
    resp = client.post(
        "/api/v1/campaigns",
        json={
            **BODY,
            "body": "x" * 500,
            "url": "https://a.example/" + "u" * 2000,
            "image": "https://a.example/" + "i" * 2000,
        },
        headers=auth,
    )
    assert resp.status_code == 400 and resp.get_json()["error"] == "payload_too_large"
    assert r.zcard(context.keys.campaigns) == 0


def test_events_count_receipts_once(client, r, context) -> None:  # type: ignore[no-untyped-def]
    auth = {"Authorization": f"Bearer {TokenStore(r, context.keys).create('cms')}"}
    cid = client.post("/api/v1/campaigns", json=BODY, headers=auth).get_json()["id"]
    sid = "QUJDREVGR0hJSktM"
    event = {"type": "shown", "cid": cid, "sid": sid, "rt": receipt_token(context.receipt_key, cid, sid)}
    assert client.post("/api/v1/events", json=event).get_json() == {"counted": True}
    assert client.post("/api/v1/events", json=event).get_json() == {"counted": False}
    forged = client.post("/api/v1/events", json={**event, "rt": "A" * 22})
    assert forged.status_code == 400 and forged.get_json()["error"] == "bad_receipt"
    assert client.get(f"/api/v1/campaigns/{cid}", headers=auth).get_json()["counters"]["shown"] == 1
