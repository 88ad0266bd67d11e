"""Two sites in one deployment, fanned out by a real worker: a campaign reaches its own site's readers only,
signed with that site's key, and its outcomes are counted for that site."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier import stats
from notifier.campaigns import CampaignStore, validate_campaign
from notifier.context import Context
from notifier.subscriptions import validate_subscription
from notifier_simulator import SimulatorServer
from tests.factories import Workers, wait_for
from workers.jobs import launch


@pytest.fixture
def site_workers(sites_env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    group = Workers(sites_env, tmp_path)
    yield group
    group.stop()


def subscribe(
    context: Context, simulator: SimulatorServer, site: str, n: int, topics: list[str]
) -> list[str]:
    """``n`` simulator subscriptions made with ``site``'s key (a push signed with another key gets 403)."""
    key = context.vapid_for(site).public_key_b64
    endpoints = []
    for sub in simulator.mint(n, application_server_key=key):
        item = validate_subscription(
            {**sub, "topics": topics}, policy=context.policy, topics=context.site(site).topics
        )
        context.subscriptions.upsert(item, site=site, key_id=context.vapid_for(site).key_id)
        endpoints.append(sub["endpoint"])
    return endpoints


def send(context: Context, site: str, topics: list[str], title: str) -> str:
    data = {"title": title, "body": "Isi kabar.", "url": "https://warta.example/a", "topics": topics}
    item = validate_campaign(data, topics=context.site(site).topics, site=site)
    cid = CampaignStore(context.redis, context.keys).create(item)
    launch(context.raw_redis, cid, item.send_at)
    return cid


def test_a_campaign_reaches_its_own_site_only_signed_with_its_key(
    sites_context: Context, simulator: SimulatorServer, site_workers: Workers
) -> None:
    c = sites_context
    # Both sites have a "nasional" topic: the shared slug must not carry a campaign across.
    kabar = subscribe(c, simulator, "kabar", 7, ["nasional"])
    warta = subscribe(c, simulator, "warta", 5, ["nasional"])
    warta_football = subscribe(c, simulator, "warta", 3, ["sepakbola"])
    site_workers.start(1)

    store = CampaignStore(c.redis, c.keys)
    cid = send(c, "warta", ["nasional"], "Warta: harga beras turun")
    done = wait_for(lambda: (x := store.get(cid)).state == "done" and x, timeout=60, message="warta campaign")
    assert done.counters["total"] == 5 and done.counters["sent"] == 5, site_workers.logs()[-3000:]
    assert {r.endpoint for r in simulator.received()} == set(warta)
    warta_key = c.vapid_for("warta").public_key_b64.rstrip("=")
    assert {r.vapid_key.rstrip("=") for r in simulator.received()} == {warta_key}

    everyone = send(c, "kabar", [], "Kabar: gempa")
    done = wait_for(lambda: (x := store.get(everyone)).state == "done" and x, timeout=60, message="kabar")
    assert done.counters["sent"] == 7
    kabar_received = {r.endpoint for r in simulator.received() if r.endpoint not in warta}
    assert kabar_received == set(kabar) and not set(warta_football) & kabar_received

    # Figures per site: subscribers, campaigns and outcomes.
    assert c.subscriptions.count_by_site(["kabar", "warta"]) == {"kabar": 7, "warta": 8}
    assert [x.cid for x in store.list(sites=["warta"])] == [cid]
    by_site = stats.outcomes_by_site(c.redis, c.keys, ["kabar", "warta"])
    assert by_site["warta"]["other"]["sent"] == 5 and by_site["kabar"]["other"]["sent"] == 7
