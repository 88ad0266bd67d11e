"""A real local push service (FCM / autopush stand-in) for tests, benchmarks, the demo and offline work.

It hands out endpoints whose keys it holds, verifies VAPID (RFC 8292), decrypts
each message (RFC 8291), records it, answers by rule (404, 410, 413, 429, 5xx,
stall) and holds answers by latency rule (fixed, jitter, a tail), over HTTP/1.1
and, with TLS, HTTP/2 (ALPN ``h2``), and speaks Mozilla's WebSocket push protocol
so Firefox can use it.

    with SimulatorServer() as sim:
        subscription = sim.mint(1)[0]
        ...  # send to subscription["endpoint"] with aud = sim.origin
        sim.received(subscription["endpoint"])[0].payload
"""

from __future__ import annotations

from notifier_simulator.routes import build_app
from notifier_simulator.server import SimulatorServer, run, serve
from notifier_simulator.state import RULE_STATUSES, Outcome, Received, Rule, Simulator

__all__ = [
    "RULE_STATUSES",
    "Outcome",
    "Received",
    "Rule",
    "Simulator",
    "SimulatorServer",
    "build_app",
    "run",
    "serve",
]
