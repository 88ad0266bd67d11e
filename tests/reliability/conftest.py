"""Helpers for fault tests: bulk subscriptions, campaigns, fast abandoned-job detection, timed reports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from notifier.campaigns import Campaign, CampaignStore, validate_campaign
from notifier.context import Context
from notifier.subscriptions import validate_subscription
from notifier_simulator import SimulatorServer
from tests.conftest import wait_for
from workers.jobs import launch

#: Worker settings for fault tests: a dead worker's job expires after 3 s, maintenance every 2 s.
FAST_WORKER_ENV = {"NOTIFIER_WORKER_TTL": "3", "NOTIFIER_WORKER_MAINTENANCE": "2"}


def store_bulk(
    context: Context,
    subs: Sequence[dict[str, Any]],
    topics: Iterable[str] = ("breaking",),
    *,
    browser: str = "chrome-desktop",
    chunk: int = 2000,
    now: float | None = None,
) -> list[str]:
    """Store subscriptions with ``SubscriptionStore.upsert_many`` (the API's upsert, pipelined); returns ids."""
    topics = tuple(topics)
    sids: list[str] = []
    for start in range(0, len(subs), chunk):
        items = [
            validate_subscription(
                {**raw, "topics": list(topics)}, policy=context.policy, topics=context.topics
            )
            for raw in subs[start : start + chunk]
        ]
        sids += [sid for sid, _ in context.subscriptions.upsert_many(items, browser=browser, now=now)]
    return sids


def mint_and_store(
    context: Context, simulator: SimulatorServer, n: int, *, chunk: int = 5000
) -> list[dict[str, Any]]:
    """Mint ``n`` simulator subscriptions (shared keys, in chunks) and store them; returns them."""
    minted: list[dict[str, Any]] = []
    for start in range(0, n, chunk):
        part = simulator.mint(min(chunk, n - start), shared_keys=True)
        store_bulk(context, part)
        minted += part
    return minted


def create_campaign(context: Context, **fields: Any) -> str:
    """Create and launch a breaking campaign to the ``breaking`` topic."""
    data = {
        "title": "Banjir rob di pesisir utara",
        "body": "BPBD: warga diminta waspada.",
        "url": "https://kabarkini.example/nasional/banjir-rob",
        "breaking": True,
        "topics": ["breaking"],
        **fields,
    }
    item = validate_campaign(data, topics=context.topics)
    cid = CampaignStore(context.redis, context.keys).create(item)
    launch(context.raw_redis, cid, item.send_at)
    return cid


def wait_state(
    context: Context, cid: str, states: Sequence[str], timeout: float, workers: Any = None
) -> Campaign:
    """Poll until the campaign is in one of ``states``; fail with the worker logs' tail otherwise."""
    store = CampaignStore(context.redis, context.keys)

    def reached() -> Campaign | None:
        campaign = store.get(cid)
        return campaign if campaign.state in states else None

    try:
        return wait_for(reached, timeout=timeout, interval=0.1, message=f"campaign {cid} in {states}")
    except pytest.fail.Exception:
        campaign = store.get(cid)
        tail = workers.logs()[-4000:] if workers is not None else ""
        pytest.fail(
            f"campaign {cid} stuck in {campaign.state} with {campaign.counters} "
            f"pending={campaign.pending}\n{tail}"
        )


def final_total(campaign: Campaign) -> int:
    """sent + gone + rejected + failed + skipped: every subscriber's final outcome, counted once."""
    k = campaign.counters
    return k["sent"] + k["gone"] + k["rejected"] + k["failed"] + k["skipped"]


def report(name: str, **figures: Any) -> None:
    """Print a scenario's figures (shown with ``pytest -s``; quoted in docs/reliability.md)."""
    print(f"\n[reliability] {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
