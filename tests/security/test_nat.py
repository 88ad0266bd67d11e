"""Readers behind carrier-grade NAT: hundreds share one public address, and none of them is refused.

500 readers subscribe from one address with the default limits on; a real worker sends them a campaign
through the push service simulator, which decrypts every message; each reader's service worker then
reports ``shown`` (and one in five ``clicked``) from that same address, some twice: every receipt
counts, exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Flask

from notifier.campaigns import CampaignStore
from notifier.context import Context
from notifier_simulator import SimulatorServer
from tests.factories import Workers, create, wait_for

NAT = "100.64.12.34"  # the shared address space carriers use for CGNAT (RFC 6598)
READERS = 500


def test_500_readers_behind_one_address_subscribe_and_every_receipt_counts_exactly(
    make_app: Callable[..., Flask], context: Context, simulator: SimulatorServer, workers: Workers
) -> None:
    app = make_app(NOTIFIER_RATE_LIMITS="1")  # the default limits
    assert app.extensions["notifier"].settings.rate_subscribe == "1000/minute;20000/day"
    client = app.test_client()
    workers.start(1)
    env = {"REMOTE_ADDR": NAT}
    statuses = [
        client.post(
            "/api/v1/subscriptions", json={**sub, "topics": ["breaking"]}, environ_base=env
        ).status_code
        for sub in simulator.mint(READERS)
    ]
    assert statuses == [201] * READERS
    assert context.subscriptions.count() == READERS

    cid = create(context, title="Gempa M5,2 di Sukabumi")
    store = CampaignStore(context.redis, context.keys)
    wait_for(lambda: store.get(cid).state == "done", timeout=60, message="the campaign to finish")
    assert store.get(cid).counters["sent"] == READERS

    # What each reader's service worker reports, from the decrypted messages.
    receipts = []
    for received in simulator.received():
        data = json.loads(received.payload or b"{}")["notification"]["data"]
        assert data["cid"] == cid
        receipts.append({"cid": cid, "sid": data["sid"], "rt": data["rt"]})
    assert len({r["sid"] for r in receipts}) == READERS
    answers = []
    for i, receipt in enumerate(receipts):
        answers.append(client.post("/api/v1/events", json={"type": "shown", **receipt}, environ_base=env))
        if i % 5 == 0:
            answers.append(
                client.post("/api/v1/events", json={"type": "clicked", **receipt}, environ_base=env)
            )
        if i % 10 == 0:  # a worker retrying a receipt whose answer it lost
            answers.append(client.post("/api/v1/events", json={"type": "shown", **receipt}, environ_base=env))
    assert {a.status_code for a in answers} == {202}
    assert sum(a.get_json()["counted"] for a in answers) == READERS + READERS // 5
    counters = store.get(cid).counters
    assert counters["shown"] == READERS
    assert counters["clicked"] == READERS // 5
