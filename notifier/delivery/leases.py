"""Leases: one per batch in progress, taken, renewed by the heartbeat, and checked by the batch's commit."""

from __future__ import annotations

import os
import socket
import time

from notifier.delivery.common import DeliveryBase, log

# Claim a batch for this run (KEYS: lease, batches:done; ARGV: token, ttl in ms, batch id): 2 when the
# batch is finished, 1 when this run holds it now (renewed, or taken as nobody held it), 0 when another does.
_CLAIM = """
if redis.call('SISMEMBER', KEYS[2], ARGV[3]) == 1 then return 2 end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


#: Seconds between two looks at a batch held by another run.
LEASE_POLL = 0.25


class Leases(DeliveryBase):
    """The lease half of :class:`~notifier.delivery.engine.Delivery` (one lease per batch in progress)."""

    @staticmethod
    def lease_token() -> str:
        """Who holds the leases this process takes: ``host:pid`` (one lease key per batch)."""
        return f"{socket.gethostname()}:{os.getpid()}"

    def _claim_batch(self, cid: str, batch_id: str) -> int:
        return int(
            self._claim(
                keys=[self.keys.batch_lease(cid, batch_id), self.keys.campaign_batches_done(cid)],
                args=[self.lease_token(), int(self.settings.worker_ttl * 1000), batch_id],
            )
        )

    def renew_lease(self) -> bool | None:
        """Renew the lease of every batch this process is sending (the worker's heartbeats call this).

        ``None`` when no batch runs; ``False`` once another run holds one of them or finished it:
        that batch then stops sending and records nothing.
        """
        held = [key for key, lost in list(self._leases.items()) if not lost]
        if not held:
            return None
        kept = True
        for key in held:
            if self._claim_batch(*key) != 1:
                if self._leases.get(key) is False:
                    log.warning("batch %s of %s was taken over by another run; it stops", key[1], key[0])
                    self._leases[key] = True
                kept = False
        return kept

    def _lease_lost(self, cid: str, batch_id: str) -> bool:
        return bool(self._leases.get((cid, batch_id)))

    def _take_lease(self, cid: str, batch_id: str) -> bool:
        """Hold the batch for this run, waiting while another live run holds it; False if it is finished."""
        waited = False
        while True:
            claim = self._claim_batch(cid, batch_id)
            if claim == 2:
                return False
            if claim == 1:
                self._leases[(cid, batch_id)] = False
                return True
            if not waited:
                log.info(
                    "batch %s of %s is held by another run: waiting for it to finish or expire", batch_id, cid
                )
                waited = True
            time.sleep(LEASE_POLL)
