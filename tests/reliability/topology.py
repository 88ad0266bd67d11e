"""Real Redis topologies for fault tests: a primary, replicas and Sentinels, configured from ``deploy/``.

Every node is its own ``redis-server`` (or ``redis-sentinel``) process with a config file written from the
repository's ``deploy/redis.conf``, ``deploy/redis-ha.conf`` and ``deploy/sentinel.conf``, so the tests run
the configuration an operator would install, with only addresses, ports and directories changed.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from notifier.redis_conn import free_port, redis_server_binary

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
#: The service name in deploy/sentinel.conf.
SERVICE = "notifier"


def sentinel_command(conf: Path) -> list[str]:
    """Debian's ``redis-sentinel`` when installed, else ``redis-server --sentinel`` (the same program)."""
    binary = shutil.which("redis-sentinel")
    return [binary, str(conf)] if binary else [redis_server_binary(), str(conf), "--sentinel"]


def _wait(predicate, timeout: float, what: str, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (redis.RedisError, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@dataclass
class RedisNode:
    """One data node: ``deploy/redis.conf`` + ``deploy/redis-ha.conf``, its own port and directory."""

    name: str
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    replica_of: tuple[str, int] | None = None
    #: Extra config lines (after the deploy files, so they win).
    extra: tuple[str, ...] = ()
    #: Run the server through this command prefix (``ip netns exec NS``), if any.
    prefix: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        lines = [
            f"include {DEPLOY / 'redis.conf'}",
            f"include {DEPLOY / 'redis-ha.conf'}",
            f"bind {self.host}",
            f"port {self.port}",
            f"dir {self.data_dir}",
            "logfile redis.log",
            "daemonize no",
            # The tests' clients reach the node at its address; protected mode would refuse them without a
            # password. Production sets requirepass (deploy/redis.conf) instead.
            "protected-mode no",
        ]
        if self.replica_of is not None:
            lines.append(f"replicaof {self.replica_of[0]} {self.replica_of[1]}")
        return "\n".join([*lines, *self.extra]) + "\n"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server (replaying its AOF if it has one) and wait until it answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        conf = self.data_dir / "redis.conf"
        # A restarted node keeps what Sentinel wrote into its config (its new replicaof), as in production.
        if not conf.exists():
            conf.write_text(self.config())
        self.process = subprocess.Popen(
            [*self.prefix, redis_server_binary(), str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(lambda: self._alive() and self.client(0.2).ping(), timeout, f"redis {self.name} answering")

    def _alive(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            log = self.data_dir / "redis.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"redis {self.name} exited:\n{tail}")
        return True

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def client(self, timeout: float = 2.0) -> redis.Redis:
        """A plain client of this node (not Sentinel-aware)."""
        return redis.Redis(
            host=self.host, port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def role(self) -> str:
        return str(self.client().info("replication")["role"])

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the server and reap it (SIGKILL: no AOF flush, no goodbye to its replicas)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass
class SentinelNode:
    """One ``redis-sentinel`` with ``deploy/sentinel.conf``, pointed at the test's primary."""

    name: str
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def config(self, primary: tuple[str, int]) -> str:
        text = (DEPLOY / "sentinel.conf").read_text()
        text = re.sub(r"(?m)^port \d+$", f"port {self.port}", text)
        text = re.sub(
            rf"(?m)^sentinel monitor {SERVICE} \S+ \d+ (\d+)$",
            rf"sentinel monitor {SERVICE} {primary[0]} {primary[1]} \1",
            text,
        )
        assert f"port {self.port}" in text and f"{primary[0]} {primary[1]}" in text, "deploy/sentinel.conf"
        return text + f"bind {self.host}\ndir {self.data_dir}\nlogfile sentinel.log\ndaemonize no\n"

    def start(self, primary: tuple[str, int], timeout: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        conf = self.data_dir / "sentinel.conf"
        conf.write_text(self.config(primary))
        self.process = subprocess.Popen(
            sentinel_command(conf), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait(lambda: self.client().ping(), timeout, f"sentinel {self.name} answering")

    def client(self) -> redis.Redis:
        return redis.Redis(
            host=self.host, port=self.port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True
        )

    def master(self) -> dict[str, str]:
        """This sentinel's view of the service (``SENTINEL MASTER``)."""
        return self.client().sentinel_master(SERVICE)  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass
class SentinelSet:
    """A primary, ``replicas`` replicas and three sentinels, all on loopback; ``url`` for ``REDIS_URL``."""

    base: Path
    replicas: int = 1
    nodes: list[RedisNode] = field(default_factory=list)
    sentinels: list[SentinelNode] = field(default_factory=list)

    def start(self) -> SentinelSet:
        primary = RedisNode("primary", self.base / "primary")
        primary.start()
        self.nodes.append(primary)
        for i in range(self.replicas):
            node = RedisNode(
                f"replica{i + 1}", self.base / f"replica{i + 1}", replica_of=("127.0.0.1", primary.port)
            )
            node.start()
            self.nodes.append(node)
        _wait(self._replicas_in_sync, 20, "replicas in sync")
        for i in range(3):
            sentinel = SentinelNode(f"sentinel{i + 1}", self.base / f"sentinel{i + 1}")
            sentinel.start(("127.0.0.1", primary.port))
            self.sentinels.append(sentinel)
        _wait(self._sentinels_agree, 30, "sentinels discovering each other and the replicas", interval=0.2)
        return self

    def _replicas_in_sync(self) -> bool:
        return all(n.client().info("replication").get("master_link_status") == "up" for n in self.nodes[1:])

    def _sentinels_agree(self) -> bool:
        for s in self.sentinels:
            m = s.master()
            if (
                int(m["num-other-sentinels"]) != len(self.sentinels) - 1
                or int(m["num-slaves"]) < self.replicas
            ):
                return False
        return True

    @property
    def url(self) -> str:
        hosts = ",".join(f"{s.host}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def primary_address(self) -> tuple[str, int]:
        """The primary as the sentinels announce it (the first one that answers)."""
        for s in self.sentinels:
            try:
                host, port = s.client().sentinel_get_master_addr_by_name(SERVICE)
                return str(host), int(port)
            except (redis.RedisError, TypeError):
                continue
        raise RuntimeError("no sentinel answers")

    def node_at(self, address: tuple[str, int]) -> RedisNode:
        return next(n for n in self.nodes if (n.host, n.port) == address)

    @property
    def primary(self) -> RedisNode:
        return self.node_at(self.primary_address())

    def wait_promoted(self, old: tuple[str, int], timeout: float = 60.0) -> tuple[tuple[str, int], float]:
        """Wait for a new primary: returns its address and the moment (``time.monotonic()``) it first answered
        as a master, polled every 10 ms, then waits until every sentinel names it (what clients ask)."""

        def master() -> tuple[tuple[str, int], float] | None:
            for node in self.nodes:
                if (node.host, node.port) != old and node.process is not None and node.role() == "master":
                    return (node.host, node.port), time.monotonic()
            return None

        address, since = _wait(master, timeout, "a replica promoted by Sentinel", interval=0.01)

        def announced() -> bool:
            named = {tuple(s.client().sentinel_get_master_addr_by_name(SERVICE)) for s in self.sentinels}
            return named == {(address[0], str(address[1]))} or named == {address}

        _wait(announced, timeout, "every sentinel naming the new primary", interval=0.05)
        return address, since

    def stop(self) -> None:
        for s in self.sentinels:
            s.stop()
        for n in self.nodes:
            n.stop()
