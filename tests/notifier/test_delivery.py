"""The fan-out's bookkeeping through the sender seam: a whole campaign without a socket."""

from __future__ import annotations

from notifier.campaigns import DONE, CampaignStore, validate_campaign
from notifier.context import Context
from notifier.delivery import Delivery
from notifier.sending.recording import RecordingSender
from notifier_simulator import SimulatorServer
from tests.factories import store_minted


def test_a_campaign_is_counted_and_its_dead_subscriptions_pruned_with_a_recording_sender(
    context: Context, simulator: SimulatorServer
) -> None:
    subs = simulator.mint(120, shared_keys=True)
    store_minted(context, subs)
    sender = RecordingSender()
    for sub in subs[:7]:
        sender.answer(str(sub["endpoint"]), 410)
    for sub in subs[7:10]:
        sender.answer(str(sub["endpoint"]), 413)
    store = CampaignStore(context.redis, context.keys)
    cid = store.create(
        validate_campaign(
            {
                "title": "Banjir",
                "body": "Jakarta Utara.",
                "url": "https://kabarkini.example/b",
                "breaking": True,
            },
            topics=context.topics,
        )
    )
    delivery = Delivery(context, sender)
    batches: list[tuple[str, list[str], list[int], float]] = []
    assert delivery.plan(cid, lambda *batch: batches.append(batch)) == 3  # batches of 50
    for batch_id, sids, attempts, _delay in batches:
        result = delivery.run_batch(cid, batch_id, sids, attempts, lambda *retry: None)
        assert not result.retry_sids
    delivery.close()
    campaign = store.get(cid)
    assert campaign.state == DONE and campaign.pending == 0
    assert {k: campaign.counters[k] for k in ("total", "sent", "gone", "rejected")} == {
        "total": 120,
        "sent": 110,
        "gone": 7,
        "rejected": 3,
    }
    assert context.subscriptions.count() == 113 and sender.closed == 1
    assert {m.sid for m in sender.sent} == {s for _, sids, _, _ in batches for s in sids}
    assert all(b'"cid":"' + cid.encode() + b'"' in m.payload for m in sender.sent)
