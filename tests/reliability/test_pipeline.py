"""A full pipe: the next batch starts while the last answers of the previous one are outstanding.

Overlapping batches must not cost exactness: every subscriber gets the alert once, every counter
adds up, and a slow push service never holds back the others.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer

from notifier.campaigns import CampaignStore, validate_campaign
from notifier.context import Context
from notifier.delivery import Delivery
from notifier.settings import Settings
from notifier_simulator import SimulatorServer
from tests.factories import create_campaign, final_total, mint_and_store, store_bulk, wait_state

BATCH = 100


def _job(context: Context, cid: str, batch: str) -> Job:
    return Job.fetch(f"send-{cid}-{batch}", connection=context.raw_redis, serializer=JSONSerializer)


@pytest.mark.parametrize("in_flight", [4, 1])
def test_next_batch_starts_before_the_slowest_answer_of_the_previous_one(
    context, simulator, workers, in_flight: int
) -> None:  # type: ignore[no-untyped-def]
    minted = mint_and_store(context, simulator, 3 * BATCH)
    # The last subscriber of the first batch answers late: without a full pipe, its batch holds the worker.
    simulator.add_rule("latency", endpoint=minted[BATCH - 1]["endpoint"], seconds=1.5)
    workers.start(1, NOTIFIER_BATCH_SIZE=str(BATCH), NOTIFIER_BATCHES_IN_FLIGHT=str(in_flight))
    cid = create_campaign(context)
    campaign = wait_state(context, cid, ["done"], timeout=40, workers=workers)

    k = campaign.counters
    assert k["total"] == 3 * BATCH and k["sent"] == 3 * BATCH and final_total(campaign) == 3 * BATCH, k
    assert campaign.pending == 0
    per_endpoint = Counter(r.endpoint for r in simulator.received())
    assert set(per_endpoint) == {s["endpoint"] for s in minted} and max(per_endpoint.values()) == 1
    first, second = _job(context, cid, "b0"), _job(context, cid, "b1")
    assert first.started_at is not None and first.ended_at is not None and second.started_at is not None
    if in_flight > 1:
        # The second batch was running while the first waited for its held answer.
        assert second.started_at < first.ended_at
    else:
        assert second.started_at >= first.ended_at


@pytest.fixture
def far_away() -> SimulatorServer:
    """A second push service whose every answer takes 4 s."""
    server = SimulatorServer(host="127.0.0.1", port=0)
    server.start()
    server.add_rule("latency", seconds=4.0)
    yield server
    server.stop()


def test_a_slow_push_service_never_holds_back_the_others(
    settings_env, r, simulator, far_away, workers
) -> None:  # type: ignore[no-untyped-def]
    hosts = ",".join(s.origin.split("://", 1)[1] for s in (simulator, far_away))
    context = Context.build(Settings.from_env({**settings_env, "NOTIFIER_PUSH_HOSTS": hosts}), client=r)
    near_subs, far_subs = simulator.mint(300, shared_keys=True), far_away.mint(300, shared_keys=True)
    # Interleaved, so every batch has both services' subscribers.
    for near, far in zip(near_subs, far_subs, strict=True):
        store_bulk(context, [near, far])
    env = {
        "NOTIFIER_BATCH_SIZE": "150",
        "NOTIFIER_WINDOW_MIN": "8",
        "NOTIFIER_BATCHES_IN_FLIGHT": "4",
        "NOTIFIER_SEND_TIMEOUT": "10",
    }
    workers.start(1, **env, NOTIFIER_PUSH_HOSTS=hosts)
    started = time.time()
    cid = create_campaign(context)
    campaign = wait_state(context, cid, ["done"], timeout=60, workers=workers)
    k = campaign.counters
    assert k["sent"] == 600 and final_total(campaign) == 600, k

    near_times = sorted(r.time for r in simulator.received())
    far_times = sorted(r.time for r in far_away.received())
    assert len(near_times) == 300 and len(far_times) == 300
    # The far service's window (8 to start with) is full for 4 s at a time; the near service's
    # subscribers in the next batches went out meanwhile, long before the far one's first answers.
    assert near_times[-1] < far_times[0] + 4.0, (near_times[-1] - started, far_times[0] - started)


class _Enqueued:
    """The batch-enqueue callback: records what planning hands out."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def __call__(
        self, batch_id: str, sids: list[str], attempts: list[int], delay: float, **_: object
    ) -> None:
        self.calls.append((batch_id, sids))


def test_batches_of_one_process_overlap_each_under_its_own_lease(settings, r, simulator) -> None:  # type: ignore[no-untyped-def]
    context = Context.build(replace(settings, batch_size=BATCH), client=r)
    delivery, planned = Delivery(context), _Enqueued()
    try:
        minted = mint_and_store(context, simulator, 2 * BATCH)
        simulator.add_rule("latency", seconds=0.6)  # long enough for both batches to be in flight at once
        campaigns = CampaignStore(context.redis, context.keys)
        cid = campaigns.create(
            validate_campaign(
                {"title": "Gempa", "body": "BMKG.", "url": "https://k.example/g", "breaking": True,
                 "topics": ["breaking"]},
                topics=context.topics,
            )
        )  # fmt: skip
        assert delivery.plan(cid, planned) == 2
        started = [threading.Event(), threading.Event()]
        results: dict[str, object] = {}

        def run(index: int) -> None:
            batch_id, sids = planned.calls[index]
            results[batch_id] = delivery.run_batch(
                cid, batch_id, sids, 1, _Enqueued(), on_started=started[index].set
            )

        threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        assert all(event.wait(10) for event in started)
        # Both batches are in progress in this process: each holds its lease, one renewal renews both.
        leases = [context.keys.batch_lease(cid, b) for b in ("b0", "b1")]
        assert all(context.redis.get(lease) == delivery.lease_token() for lease in leases)
        assert delivery.renew_lease() is True
        for thread in threads:
            thread.join(30)
        assert delivery.renew_lease() is None  # nothing in progress any more
        assert not any(context.redis.exists(lease) for lease in leases)
        campaign = campaigns.get(cid)
        assert campaign.state == "done" and campaign.counters["sent"] == 2 * BATCH and campaign.pending == 0
        assert Counter(r.endpoint for r in simulator.received()) == Counter(s["endpoint"] for s in minted)
    finally:
        delivery.close()
        context.close()
