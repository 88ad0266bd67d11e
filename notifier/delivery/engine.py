"""The fan-out engine of one process: planning, leases, batches, recording and resumption in one object.

Each concern is a room of its own (:mod:`~notifier.delivery.planning`, :mod:`~notifier.delivery.leases`,
:mod:`~notifier.delivery.batches`, :mod:`~notifier.delivery.recording`,
:mod:`~notifier.delivery.resumption`); this class only holds the state they share.
"""

from __future__ import annotations

import asyncio
import threading

import redis

from notifier.breakers import Breakers, Policy
from notifier.campaigns import CampaignStore
from notifier.context import Context
from notifier.delivery.batches import Batches
from notifier.delivery.leases import _CLAIM, Leases
from notifier.delivery.planning import Planning
from notifier.delivery.recording import Recording
from notifier.delivery.resumption import Resumption
from notifier.holds import ServiceHolds
from notifier.sending import PushSender, Sender


class Delivery(Planning, Leases, Batches, Recording, Resumption):
    """Planning and batch delivery for one process (holds its Sender and Lua scripts)."""

    def __init__(self, context: Context, sender: PushSender | None = None) -> None:
        self.c = context
        self.r: redis.Redis = context.redis
        self.keys = context.keys
        self.settings = context.settings
        self.campaigns = CampaignStore(self.r, self.keys)
        #: 429/503 holds are per push service for every worker (notifier.holds).
        self.sender: PushSender = sender or Sender(
            context.settings, context.vapid, context.policy, holds=ServiceHolds(context.redis, context.keys)
        )
        #: What answers set off per push service: held deletions and services, quarantine (notifier.breakers).
        self.breakers = Breakers(self.r, self.keys, Policy.from_settings(context.settings))
        self._services: dict[str, str] = {}
        self._claim = self.r.register_script(_CLAIM)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()
        #: (campaign, batch) this process runs under a lease, for the heartbeat to renew: True once lost.
        self._leases: dict[tuple[str, str], bool] = {}
