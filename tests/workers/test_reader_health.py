"""The reader budget and the reader-health panel, from real sends through the simulator and real receipts.

A reader who clicked none of their last ``NOTIFIER_READER_BUDGET`` pushes gets urgent alerts only (Chrome
revokes the permission of readers who never engage); a click puts them back. The panel's figures (pushes
per reader per day, readers who clicked in 30 days, campaigns by click-through rate) are exact counts.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from notifier import stats
from notifier.campaigns import CampaignStore, validate_campaign
from notifier.context import Context
from notifier_simulator import SimulatorServer
from tests.factories import run_queued
from workers.jobs import launch
from workers.queues import PLAN_QUEUE, SEND_QUEUE

BUDGET = 2


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    return {**settings_env, "NOTIFIER_READER_BUDGET": str(BUDGET), "NOTIFIER_FREQ_CAP_PER_HOUR": "0"}


def send(context: Context, n: int, *, breaking: bool = False) -> str:
    data = {
        "title": f"Kabar {n}",
        "body": "Isi.",
        "url": f"https://kabarkini.example/{n}",
        "breaking": breaking,
    }
    item = validate_campaign(data, topics=context.topics)
    cid = CampaignStore(context.redis, context.keys).create(item)
    launch(context.raw_redis, cid, None)
    run_queued(context.raw_redis, PLAN_QUEUE, SEND_QUEUE)
    return cid


def receipts(simulator: SimulatorServer, cid: str) -> dict[str, dict[str, Any]]:
    out = {}
    for received in simulator.received():
        data = json.loads(received.payload or b"{}")["notification"]["data"]
        if data["cid"] == cid:
            out[received.endpoint] = {"cid": cid, "sid": data["sid"], "rt": data["rt"]}
    return out


def test_readers_who_never_click_get_urgent_alerts_only_and_the_panel_counts_exactly(
    context: Context,
    simulator: SimulatorServer,
    client,
    job_env,  # type: ignore[no-untyped-def]
) -> None:
    minted = simulator.mint(10)
    for sub in minted:
        assert client.post("/api/v1/subscriptions", json={**sub, "topics": ["breaking"]}).status_code == 201
    clickers = {sub["endpoint"] for sub in minted[:4]}

    def react(cid: str, click: set[str]) -> None:
        for endpoint, receipt in receipts(simulator, cid).items():
            assert client.post("/api/v1/events", json={"type": "shown", **receipt}).status_code == 202
            if endpoint in click:
                assert client.post("/api/v1/events", json={"type": "clicked", **receipt}).status_code == 202

    store = CampaignStore(context.redis, context.keys)
    first, second = send(context, 1), None
    react(first, clickers)
    second = send(context, 2)
    react(second, clickers)
    # Six readers clicked none of their last two pushes: over their budget.
    third = send(context, 3)
    assert store.get(third).counters["total"] == 4 and store.get(third).counters["over_budget"] == 6
    assert set(receipts(simulator, third)) == clickers
    react(third, clickers)

    health = stats.reader_health(context.redis, context.keys, site="default")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert health["daily"][-1] == {"day": today, "sent": 24, "readers": 10, "per_reader": 2.4}
    assert health["per_reader_average"] == 2.4
    assert health["clicked"] == {"readers": 4, "days": 30, "share": 0.4}
    assert health["over_budget"] == 6 and health["unreachable"] == 0
    assert [(row["id"], row["ctr"]) for row in health["campaigns"]] == [
        (third, 1.0),
        (second, 0.4),
        (first, 0.4),
    ]

    # An urgent alert still reaches everyone; a reader who clicks it is back within the budget.
    urgent = send(context, 4, breaking=True)
    assert store.get(urgent).counters["total"] == 10
    late = minted[9]["endpoint"]
    react(urgent, clickers | {late})
    assert stats.reader_health(context.redis, context.keys, site="default")["over_budget"] == 5
    again = send(context, 5)
    assert set(receipts(simulator, again)) == clickers | {late}
