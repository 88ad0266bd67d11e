"""Fan-out: plan a campaign into batches, and deliver one batch. Free of RQ: the queue is a callback.

Completion is tracked with a ``pending`` counter on the campaign: planning holds
one unit while it runs and adds one per batch it hands out; a batch that
schedules a retry adds one for it; every batch or planning run gives its own
unit back exactly once (guarded by the ``batches:done`` set), and the run that
brings ``pending`` to zero marks the campaign ``done``.

A batch is run under a **lease** (``Keys.batch_lease``: ``host:pid`` of the run, for
``worker_ttl`` seconds, renewed by the worker's heartbeat with the job's own
registration, so both expire together). Only the holder records the batch's outcome,
and it records everything in one transaction that also hands the lease back: the
counters, the subscriptions' bookkeeping, the retry batch's reservation and its RQ job.
So a run that was cut off (a worker host off the network, a process frozen) and whose
batch went to another worker after the heartbeat deadline comes back, finds the lease
taken (or the batch finished), stops sending and writes nothing: nothing is counted
twice. A run whose lease merely expired, with nobody else taking it, takes it again.
A run that finds another holder waits until the holder finishes (the batch is done)
or dies (its lease expires).

The commit waits out a Redis failover (``redis_failover_wait`` seconds): a batch
whose messages went out while the primary died is recorded on the new primary
instead of being sent again. It cannot apply twice: a retry after a lost reply finds
the batch finished.

One process may have **several batches in progress** (the worker starts the next
one while the last answers of the previous one are outstanding): each holds its
own lease, and all of them send on one event loop, on a thread of its own
(:meth:`Delivery.run_batch`), sharing the sender's connections and windows. The
Redis work of a batch (its lease, loading, the commit) runs on the caller's
thread, never on that loop: a slow Redis or a lease wait never stalls the
messages of the other batches.

The rooms: :mod:`~notifier.delivery.planning`, :mod:`~notifier.delivery.leases`,
:mod:`~notifier.delivery.batches`, :mod:`~notifier.delivery.recording`, :mod:`~notifier.delivery.resumption`,
with what they share in :mod:`~notifier.delivery.common` and the engine in :mod:`~notifier.delivery.engine`.
"""

from __future__ import annotations

from notifier.delivery.common import (
    LATENCY_BUCKETS,
    BatchResult,
    EnqueueBatch,
    PolicyWrites,
    long_hold_reason,
    new_event_loop,
)
from notifier.delivery.engine import Delivery
from notifier.delivery.leases import LEASE_POLL
from notifier.delivery.resumption import Restored

__all__ = [
    "LATENCY_BUCKETS",
    "LEASE_POLL",
    "BatchResult",
    "Delivery",
    "EnqueueBatch",
    "PolicyWrites",
    "Restored",
    "long_hold_reason",
    "new_event_loop",
]
