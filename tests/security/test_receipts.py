"""Receipts cannot inflate a campaign's figures: token bound to campaign and subscription, counted once."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from notifier.campaigns import CampaignInput, CampaignStore, receipt_token
from notifier.context import Context


@pytest.fixture
def cid(context: Context) -> str:
    item = CampaignInput(
        title="Banjir Jakarta", body="Air mulai surut.", url="https://kabarkini.example/banjir"
    )
    return CampaignStore(context.redis, context.keys).create(item)


def post(client, **body: Any):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/events", data=json.dumps(body), content_type="application/json")


def counters(context: Context, cid: str) -> dict[str, int]:
    return CampaignStore(context.redis, context.keys).get(cid).counters


def test_a_genuine_receipt_counts_once(client, context: Context, cid: str) -> None:  # type: ignore[no-untyped-def]
    rt = receipt_token(context.receipt_key, cid, "sidA")
    for kind in ("shown", "clicked"):
        first = post(client, type=kind, cid=cid, sid="sidA", rt=rt)
        assert first.status_code == 202 and first.get_json() == {"counted": True}
        for _ in range(5):
            again = post(client, type=kind, cid=cid, sid="sidA", rt=rt)
            assert again.status_code == 202 and again.get_json() == {"counted": False}
    assert counters(context, cid)["shown"] == 1
    assert counters(context, cid)["clicked"] == 1


@pytest.mark.parametrize(
    "forge",
    [
        lambda key, cid: receipt_token(b"k" * 32, cid, "sidA"),  # signed with a guessed key
        lambda key, cid: receipt_token(key, cid, "sidB"),  # another subscription's token
        lambda key, cid: receipt_token(key, "0" + cid[1:], "sidA"),  # another campaign's token
        lambda key, cid: "A" * 22,
        lambda key, cid: "",
        lambda key, cid: receipt_token(key, cid, "sidA")[:-1],
        lambda key, cid: receipt_token(key, cid, "sidA") + "A",
    ],
    ids=["wrong-key", "other-subscription", "other-campaign", "made-up", "empty", "truncated", "extended"],
)
def test_forged_tokens_are_400_and_count_nothing(
    client, context: Context, r: redis.Redis, cid: str, forge
) -> None:  # type: ignore[no-untyped-def]
    resp = post(client, type="clicked", cid=cid, sid="sidA", rt=forge(context.receipt_key, cid))
    assert resp.status_code == 400
    assert resp.get_json()["error"] in ("bad_receipt", "missing_field")
    assert counters(context, cid)["clicked"] == 0
    assert not r.exists(context.keys.campaign_receipts(cid, "clicked"))


def test_a_token_for_one_subscription_cannot_be_replayed_as_many(client, context: Context, cid: str) -> None:  # type: ignore[no-untyped-def]
    rt = receipt_token(context.receipt_key, cid, "sidA")
    assert post(client, type="clicked", cid=cid, sid="sidA", rt=rt).status_code == 202
    for other in ("sidB", "sidC", "sidA "):
        assert post(client, type="clicked", cid=cid, sid=other, rt=rt).status_code == 400
    assert counters(context, cid)["clicked"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"type": "liked"},
        {"type": "shown", "cid": 1, "sid": "a", "rt": "b"},
        {"type": "shown", "cid": "c" * 65, "sid": "a", "rt": "b"},
    ],
)
def test_malformed_receipts_are_400(client, body: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    assert post(client, **body).status_code == 400


def test_receipt_for_an_unknown_campaign_is_404_even_with_a_valid_token(client, context: Context) -> None:  # type: ignore[no-untyped-def]
    rt = receipt_token(context.receipt_key, "nosuchcampaign", "sidA")
    assert post(client, type="shown", cid="nosuchcampaign", sid="sidA", rt=rt).status_code == 404
