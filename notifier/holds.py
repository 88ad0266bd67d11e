"""Holds on push services asked for with 429 or 503 ``Retry-After``, shared by every worker through Redis.

A push service that answers ``429 Too Many Requests`` (or ``503`` with a
``Retry-After``) is asking *us*, not one worker, to wait. The hold is written
to one Redis hash (``push:holds``: service id → ``until|status|seconds|since``,
wall-clock seconds so every host reads the same moment), and every sender
checks it before each message: a held service's messages are deferred (never
sent, the attempt not used up) until the hold ends.

Reading Redis per message would cost a round trip each; instead each process
keeps the hash in memory and re-reads it at most every :data:`REFRESH` seconds
(a quarter of a second: another worker stops within that of a hold being
written). Writing happens only when a hold is longer than the one already known,
so a burst of 429 answers in flight costs one write, not one per answer.

Without Redis (``ServiceHolds(None)``) the holds stay in the process: what a lone
:class:`~notifier.sending.Sender` in a test or tool uses.

Services are named by :func:`notifier.browsers.service_id` (``fcm``, ``mozilla``,
``apple``, ``windows``, else the endpoint's ``host[:port]``), the same names the
per-service breakers (:mod:`notifier.breakers`) use.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

from notifier.keys import Keys

#: Seconds between two reads of the shared holds in one process.
REFRESH = 0.25
#: A new hold is written to Redis only when it ends this much later than the one already known.
EXTEND_MIN = 0.1

log = logging.getLogger(__name__)

# Set a hold unless a longer one is in place, and drop holds that have ended.
# ARGV: service, until, status, seconds, now. Returns 1 when written, 0 when a longer hold exists.
_HOLD = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local u = tonumber(string.match(cur, '^([^|]+)'))
  if u and u >= tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4] .. '|' .. ARGV[5])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local u = tonumber(string.match(all[i + 1], '^([^|]+)'))
  if not u or u < tonumber(ARGV[5]) then redis.call('HDEL', KEYS[1], all[i]) end
end
return 1
"""


@dataclass(frozen=True)
class Hold:
    """One push service on hold: until when (unix time), the status that asked, for how long, since when."""

    service: str
    until: float
    status: int
    seconds: float
    since: float

    @classmethod
    def parse(cls, service: str, value: str) -> Hold | None:
        """A hold from its stored ``until|status|seconds|since`` form, or None when malformed."""
        try:
            until, status, seconds, since = value.split("|")
            return cls(service, float(until), int(status), float(seconds), float(since))
        except ValueError:
            return None


class ServiceHolds:
    """The push-service holds of every worker (in Redis), cached in this process."""

    def __init__(self, r: redis.Redis | None, keys: Keys | None = None, *, refresh: float = REFRESH) -> None:
        self.r = r
        self.keys = keys or Keys()
        self.refresh = refresh
        self._until: dict[str, float] = {}
        self._read_at = float("-inf")
        self._script = r.register_script(_HOLD) if r is not None else None

    def wait(self, service: str) -> float:
        """Seconds until ``service`` may be sent to again (0.0: not held). Cheap: called per message."""
        if self.r is not None and time.monotonic() - self._read_at > self.refresh:
            self._read()
        until = self._until.get(service)
        if until is None:
            return 0.0
        left = until - time.time()
        if left > 0:
            return left
        del self._until[service]
        return 0.0

    def hold(self, service: str, seconds: float, status: int) -> float:
        """Hold ``service`` for ``seconds`` for every worker; returns the moment the hold ends."""
        now = time.time()
        until = now + max(0.0, seconds)
        known = self._until.get(service, 0.0)
        if until <= known + EXTEND_MIN:
            return known
        self._until[service] = until
        if self._script is not None:
            try:
                self._script(
                    keys=[self.keys.push_holds], args=[service, repr(until), status, repr(seconds), repr(now)]
                )
            except redis.RedisError:
                # The hold still applies in this process; the others will find out from the service.
                log.warning("push-service hold on %s not shared: Redis failed", service, exc_info=True)
        return until

    def active(self, now: float | None = None) -> list[Hold]:
        """Every hold in force, read from Redis now (for ops pages and the command line)."""
        now = time.time() if now is None else now
        if self.r is None:
            return [Hold(s, u, 0, 0.0, 0.0) for s, u in sorted(self._until.items()) if u > now]
        found = [Hold.parse(s, v) for s, v in self.r.hgetall(self.keys.push_holds).items()]
        return sorted((h for h in found if h is not None and h.until > now), key=lambda h: h.service)

    def clear(self, service: str) -> bool:
        """End the hold on ``service`` early (an operator's decision); False when there was none."""
        self._until.pop(service, None)
        if self.r is None:
            return False
        return bool(self.r.hdel(self.keys.push_holds, service))

    def _read(self) -> None:
        self._read_at = time.monotonic()
        assert self.r is not None
        try:
            stored = self.r.hgetall(self.keys.push_holds)
        except redis.RedisError:
            log.warning("push-service holds not read: Redis failed", exc_info=True)
            return
        fresh: dict[str, float] = {}
        for service, value in stored.items():
            hold = Hold.parse(service, value)
            if hold is not None:
                fresh[service] = hold.until
        # A hold this process set a moment ago but Redis does not show (a failed write) still counts.
        for service, until in self._until.items():
            if until > fresh.get(service, 0.0):
                fresh[service] = until
        self._until = fresh
