"""Workers on separate hosts (network namespaces), one cut off mid-batch and brought back.

Redis and the push service simulator run on a data host; two worker hosts, each with its own address and
hostname, reach it over their own veth link. While worker host A is half-way through a batch its link goes
down (no reset, no FIN). Held: the batch comes back to host B after the heartbeat deadline; the link is
restored while B sends it, and A notices it lost the batch's lease, stops, and records nothing; the
campaign ends ``done`` with exact counters (campaign, per-service and global outcome counts), every reader
reached and duplicates within A's one batch; A goes on working afterwards.

Skipped with the reason where namespaces cannot be made (not root, no iproute2); CI runs as root.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from notifier.campaigns import CampaignStore
from notifier.context import Context
from notifier.redis_conn import connect
from notifier.settings import Settings
from tests.factories import FAST_WORKER_ENV, create_campaign, final_total, report, store_bulk, wait_for
from tests.reliability.netns import Lab, unavailable
from tests.reliability.topology import RedisNode
from workers import inspect

pytestmark = pytest.mark.fault

SIM_PORT = 8091
REDIS_PORT = 6391


@dataclass(frozen=True)
class Size:
    audience: int
    batch: int
    hold: float


SHORT = Size(audience=3000, batch=500, hold=0.3)
LONG = Size(audience=20_000, batch=1000, hold=0.4)


@pytest.fixture
def lab() -> Iterator[Lab]:
    reason = unavailable()
    if reason:
        pytest.skip(f"network namespaces unavailable: {reason}")
    made = Lab()
    try:
        yield made.open(("worker-a", "worker-b"))
    finally:
        made.close()


class Simulator:
    """The push service simulator on the data host (HTTPS: only loopback endpoints may be plain HTTP),
    driven over its control API."""

    def __init__(self, lab: Lab, log: Path) -> None:
        self.origin = f"https://{lab.service}:{SIM_PORT}"
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [*lab.data_prefix(), sys.executable, "-m", "notifier_cli", "simulator", "--tls",
                 "--host", lab.service, "--port", str(SIM_PORT)],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        self.ca_file = wait_for(self._ca_file, timeout=30, message="the simulator's CA certificate")
        self.tls = ssl.create_default_context(cafile=self.ca_file)
        wait_for(lambda: self._answers(), timeout=30, message="the simulator on the data host")

    def _ca_file(self) -> str | None:
        found = re.search(r"TLS CA certificate \(trust this\): (\S+)", self.log.read_text(errors="replace"))
        return found.group(1) if found else None

    def _answers(self) -> bool:
        try:
            self.stats()
            return True
        except OSError:
            return False

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the lab's own address
            self.origin + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30, context=self.tls) as resp:  # noqa: S310
            raw = resp.read()
        return json.loads(raw) if raw else None

    def stats(self) -> dict[str, Any]:
        return self.call("GET", "/_sim/stats")  # type: ignore[no-any-return]

    def mint(self, n: int) -> list[dict[str, Any]]:
        return self.call("POST", "/_sim/subscriptions", {"count": n, "shared_keys": True})["subscriptions"]  # type: ignore[no-any-return]

    def received(self) -> list[str]:
        return [m["endpoint"] for m in self.call("GET", "/_sim/received?limit=1000000")["received"]]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class WorkerHost:
    """``python -m workers`` on one worker host (its namespace, address and hostname)."""

    def __init__(self, lab: Lab, name: str, env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [*lab.hosts[name].prefix(), sys.executable, "-m", "workers"],
                env={**os.environ, **env, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _leases(context: Context, cid: str) -> dict[str, str]:
    """batch id → holder (``host:pid``) of every batch lease of the campaign."""
    prefix = context.keys.batch_lease(cid, "")
    found = {}
    for key in context.redis.scan_iter(match=prefix + "*", count=1000):
        holder = context.redis.get(key)
        if holder:
            found[key[len(prefix) :]] = holder
    return found


def _diagnose(context: Context, cid: str, batch: str) -> dict[str, Any]:
    """What RQ and the lease say about a batch that was not taken over."""
    from rq.job import Job
    from rq.registry import StartedJobRegistry
    from rq.serializers import JSONSerializer

    from workers.queues import SEND_QUEUE

    raw, job_id = context.raw_redis, f"send-{cid}-{batch}"
    registry = StartedJobRegistry(SEND_QUEUE, connection=raw, serializer=JSONSerializer)
    lease = context.keys.batch_lease(cid, batch)
    return {
        "now": time.time(),
        "started_registry": raw.zrange(registry.key, 0, -1, withscores=True),
        "job_status": Job.fetch(job_id, connection=raw, serializer=JSONSerializer).get_status(),
        "lease": (context.redis.get(lease), context.redis.pttl(lease)),
        "locks": {k: raw.ttl(k) for k in raw.scan_iter(match="rq:*lock*")}
        | {k: raw.ttl(k) for k in raw.scan_iter(match="rq:clean_registries:*")},
    }


def _run(size: Size, lab: Lab, settings_env: dict[str, str], tmp_path: Path) -> None:
    redis_node = RedisNode("data", tmp_path / "redis", host=lab.service, port=REDIS_PORT,
                           prefix=tuple(lab.data_prefix()))  # fmt: skip
    redis_node.start()
    simulator = Simulator(lab, tmp_path / "simulator.log")
    hosts: dict[str, WorkerHost] = {}
    try:
        env = {
            **settings_env,
            **FAST_WORKER_ENV,
            "REDIS_URL": redis_node.url,
            "NOTIFIER_PUSH_HOSTS": f"{lab.service}:{SIM_PORT}",
            "NOTIFIER_CA_FILE": simulator.ca_file,
            "NOTIFIER_BATCH_SIZE": str(size.batch),
            # Two batches in progress per worker: A cut off may lose both, and both are sent again.
            "NOTIFIER_BATCHES_IN_FLIGHT": "2",
        }
        context = Context.build(Settings.from_env(env), client=connect(redis_node.url))
        minted: list[dict[str, Any]] = []
        while len(minted) < size.audience:
            minted += simulator.mint(min(5000, size.audience - len(minted)))
        store_bulk(context, minted)
        simulator.call("POST", "/_sim/rules", {"status": "stall", "seconds": size.hold})
        for name in ("worker-a", "worker-b"):
            hosts[name] = WorkerHost(lab, name, env, tmp_path / f"{name}.log")
        wait_for(lambda: inspect.alive_workers(context.raw_redis, context.redis, context.keys) == 2,
                 timeout=30, message="both worker hosts heartbeating")  # fmt: skip
        cid = create_campaign(context)

        # A is half-way through a batch: it holds a lease and part of the audience was accepted.
        def a_busy() -> str | None:
            if simulator.stats()["received"] < size.batch // 2:
                return None
            held = [b for b, holder in _leases(context, cid).items() if holder.startswith("worker-a:")]
            return held[0] if held else None

        batch = wait_for(a_busy, timeout=60, interval=0.02, message="worker-a sending a batch")
        lab.cut("worker-a")
        cut = time.monotonic()
        received_at_cut = simulator.stats()["received"]

        # The batch comes back to B once A's heartbeat deadline has passed.
        done_key = context.keys.campaign_batches_done(cid)
        lease_key = context.keys.batch_lease(cid, batch)

        def taken_over() -> bool:
            return str(context.redis.get(lease_key) or "").startswith("worker-b:") or bool(
                context.redis.sismember(done_key, batch)
            )

        try:
            wait_for(taken_over, timeout=60, interval=0.05, message=f"worker-b taking {batch} over")
        except TimeoutError:
            pytest.fail(f"worker-b never took {batch} over: {_diagnose(context, cid, batch)}\n"
                        f"{hosts['worker-b'].text()[-3000:]}")  # fmt: skip
        takeover = time.monotonic() - cut
        lab.restore("worker-a")
        restored = time.monotonic()

        # A notices it lost the lease (at its next heartbeat, or at its commit: taken over, or already finished
        # by the run that took it over) and records nothing.
        noticed_pattern = re.compile(
            rf"batch {batch} of {cid}: lease lost|{batch} of {cid} was taken over"
            rf"|batch {batch} of {cid} is recorded already"
        )
        wait_for(lambda: noticed_pattern.search(hosts["worker-a"].text()), timeout=60,
                 message="worker-a noticing it lost the lease")  # fmt: skip
        noticed = time.monotonic() - restored

        store = CampaignStore(context.redis, context.keys)
        wait_for(lambda: store.get(cid).state == "done", timeout=120, interval=0.1, message="campaign done")
        campaign = store.get(cid)
        k = campaign.counters
        assert k["total"] == size.audience and final_total(campaign) == size.audience, k
        assert k["sent"] == size.audience and campaign.pending == 0, k
        services = context.redis.hgetall(context.keys.campaign_services(cid))
        assert sum(int(n) for n in services.values()) == size.audience, services
        outcomes = context.redis.hgetall(context.keys.outcomes_total)
        assert sum(int(n) for n in outcomes.values()) == size.audience, outcomes
        timeline = context.redis.hgetall(context.keys.campaign_timeline(cid))
        assert sum(int(n) for f, n in timeline.items() if f.endswith(":sent")) == size.audience, timeline

        per_endpoint = Counter(simulator.received())
        assert set(per_endpoint) == {s["endpoint"] for s in minted}, "a reader never got the alert"
        duplicates = sum(n - 1 for n in per_endpoint.values())
        assert duplicates <= 2 * size.batch, (
            f"{duplicates} duplicates; A had two batches of {size.batch} at most"
        )

        # A lives on, registered again, and works for the next campaign.
        assert hosts["worker-a"].process.poll() is None, hosts["worker-a"].text()[-3000:]
        wait_for(lambda: inspect.alive_workers(context.raw_redis, context.redis, context.keys) == 2,
                 timeout=30, message="worker-a alive again after the link came back")  # fmt: skip
        report(
            f"worker host cut off ({size.audience} readers, batches of {size.batch})",
            batch=batch,
            received_at_cut=received_at_cut,
            cut_to_takeover_s=round(takeover, 2),
            restore_to_noticed_s=round(noticed, 2),
            cut_to_done_s=round(time.monotonic() - cut, 1),
            duplicates=duplicates,
            retried=k["retried"],
        )
    finally:
        for host in hosts.values():
            host.stop()
        simulator.stop()
        redis_node.stop()


def test_a_worker_host_cut_off_mid_batch(lab, settings_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _run(SHORT, lab, settings_env, tmp_path)


@pytest.mark.long
def test_a_worker_host_cut_off_mid_batch_at_the_issue_s_size(lab, settings_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _run(LONG, lab, settings_env, tmp_path)
