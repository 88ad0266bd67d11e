"""Reader-standing rules per site: two sites of one deployment, each with its own reader budget and
unreachable rule (the sites file overrides ``NOTIFIER_READER_BUDGET`` / ``NOTIFIER_UNREACHABLE_AFTER``),
treat the same behaviour of their readers differently, through real sends to the simulator and real
receipts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from notifier.campaigns import CampaignStore, validate_campaign
from notifier.context import Context
from notifier.subscriptions import validate_subscription
from notifier_simulator import SimulatorServer
from tests.factories import PASSWORD, TWO_SITES, AuthActions, run_queued, write_sites
from workers.jobs import launch
from workers.queues import PLAN_QUEUE, SEND_QUEUE

#: kabar: a budget of 1 push (the deployment's unreachable rule, off); warta: unreachable after 2 pushes
#: none shown (the deployment's budget of 3).
SITES: dict[str, Any] = {
    **TWO_SITES,
    "sites": [
        {**TWO_SITES["sites"][0], "reader_budget": 1},
        {**TWO_SITES["sites"][1], "unreachable_after": 2},
    ],
}


@pytest.fixture
def settings_env(settings_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **settings_env,
        "NOTIFIER_SITES_FILE": str(write_sites(tmp_path / "sites", SITES)),
        "NOTIFIER_READER_BUDGET": "3",
        "NOTIFIER_UNREACHABLE_AFTER": "0",
        "NOTIFIER_FREQ_CAP_PER_HOUR": "0",
    }


def subscribe(context: Context, simulator: SimulatorServer, site: str, n: int) -> list[dict[str, Any]]:
    key = context.vapid_for(site)
    minted = simulator.mint(n, application_server_key=key.public_key_b64)
    for sub in minted:
        item = validate_subscription(
            {**sub, "topics": ["nasional"]}, policy=context.policy, topics=context.site(site).topics
        )
        context.subscriptions.upsert(item, site=site, key_id=key.key_id)
    return minted


def send(context: Context, site: str, n: int) -> dict[str, int]:
    data = {"title": f"Kabar {n}", "body": "Isi.", "url": "https://warta.example/a", "topics": ["nasional"]}
    item = validate_campaign(data, topics=context.site(site).topics, site=site)
    store = CampaignStore(context.redis, context.keys)
    cid = store.create(item)
    launch(context.raw_redis, cid, None)
    run_queued(context.raw_redis, PLAN_QUEUE, SEND_QUEUE)
    done = store.get(cid)
    assert done.state == "done", done
    return {"cid": cid, **{k: done.counters[k] for k in ("total", "sent", "unreachable", "over_budget")}}


def receipt(simulator: SimulatorServer, cid: str, endpoint: str) -> dict[str, Any]:
    for received in simulator.received():
        data = json.loads(received.payload or b"{}")["notification"]["data"]
        if data["cid"] == cid and received.endpoint == endpoint:
            return {"cid": cid, "sid": data["sid"], "rt": data["rt"]}
    raise AssertionError(f"{endpoint} got nothing of {cid}")


def test_two_sites_with_their_own_budget_and_unreachable_rule_treat_their_readers_differently(
    context: Context,
    simulator: SimulatorServer,
    client,
    job_env,  # type: ignore[no-untyped-def]
) -> None:
    kabar_site, warta_site = context.site("kabar"), context.site("warta")
    assert kabar_site.standing_rules(context.settings) == {
        "unreachable_after": 0,
        "reader_budget": 1,
        "long_hold_after": 600,
    }
    assert warta_site.standing_rules(context.settings) == {
        "unreachable_after": 2,
        "reader_budget": 3,
        "long_hold_after": 600,
    }
    kabar = subscribe(context, simulator, "kabar", 4)
    warta = subscribe(context, simulator, "warta", 4)

    # One push each. kabar's first reader clicks it; warta's first reader's browser shows it.
    first_kabar = send(context, "kabar", 1)
    first_warta = send(context, "warta", 1)
    assert first_kabar["sent"] == 4 and first_warta["sent"] == 4
    clicked = receipt(simulator, first_kabar["cid"], kabar[0]["endpoint"])
    shown = receipt(simulator, first_warta["cid"], warta[0]["endpoint"])
    for body in ({"type": "shown", **clicked}, {"type": "clicked", **clicked}, {"type": "shown", **shown}):
        assert client.post("/api/v1/events", json=body).status_code == 202

    # kabar's budget is one push: its three readers who did not click get urgent alerts only.
    assert send(context, "kabar", 2) | {"cid": ""} == {
        "cid": "",
        "total": 1,
        "sent": 1,
        "unreachable": 0,
        "over_budget": 3,
    }
    # warta's readers behaved the same way (none clicked) but its budget is the deployment's 3: all reached.
    assert send(context, "warta", 2) | {"cid": ""} == {
        "cid": "",
        "total": 4,
        "sent": 4,
        "unreachable": 0,
        "over_budget": 0,
    }
    # Two pushes in a row shown by none: unreachable on warta (its own rule), never on kabar (off there).
    assert send(context, "warta", 3) | {"cid": ""} == {
        "cid": "",
        "total": 1,
        "sent": 1,
        "unreachable": 3,
        "over_budget": 0,
    }
    third_kabar = send(context, "kabar", 3)
    assert (third_kabar["total"], third_kabar["unreachable"], third_kabar["over_budget"]) == (0, 0, 4)

    # Compose's audience for each site counts by the same rules its planning used: on kabar every reader
    # is over its budget now (none unreachable: the rule is off there); on warta all four are unreachable
    # (the one that showed the first push showed neither of the next two), none over budget.
    newsroom = AuthActions(client, context)
    context.users.create("redaksi@kabarkini.example", PASSWORD, "editor", sites=["kabar", "warta"])
    assert newsroom.login("redaksi@kabarkini.example").status_code == 302
    kabar_audience = client.get("/newsroom/audience.json?site=kabar").get_json()
    warta_audience = client.get("/newsroom/audience.json?site=warta").get_json()
    assert {k: kabar_audience[k] for k in ("total", "reached", "unreachable", "over_budget")} == {
        "total": 4,
        "reached": 0,
        "unreachable": 0,
        "over_budget": 4,
    }
    assert {k: warta_audience[k] for k in ("total", "reached", "unreachable", "over_budget")} == {
        "total": 4,
        "reached": 0,
        "unreachable": 4,
        "over_budget": 0,
    }
