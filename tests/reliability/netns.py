"""Separate hosts on one machine: Linux network namespaces joined by veth pairs (iproute2), for fault tests.

One namespace is the data host (Redis and the push service simulator, on a service address on its loopback);
each worker host is a namespace with its own address and one veth link to the data host, which it reaches
through a default route. The test process reaches the data host through a veth of its own. Cutting a worker
host off is ``ip link set ... down`` on its side of the link: no reset, no FIN, its packets go nowhere.

Everything created is named with a per-run tag and removed by :meth:`Lab.close` (processes left in a
namespace are killed first; deleting a namespace deletes its veth ends and their routes).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def unavailable() -> str | None:
    """Why network namespaces cannot be made here (None when they can): not root, no iproute2, refused."""
    if shutil.which("ip") is None:
        return "iproute2 (the ip command) is not installed: apt-get install iproute2"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (CI runs as root)"
    probe = f"ntprobe{secrets.token_hex(3)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add was refused: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass
class Host:
    """A worker host: its namespace, its end of the link, its address and the data host's end."""

    name: str
    netns: str
    link: str
    address: str
    gateway: str

    def prefix(self) -> list[str]:
        """Run a command on this host, with a hostname of its own (its own UTS namespace)."""
        return ["ip", "netns", "exec", self.netns, "unshare", "--uts", "sh", "-c",
                'hostname "$0" && exec "$@"', self.name]  # fmt: skip


@dataclass
class Lab:
    """The namespaces of one test run; ``data`` is the data host, ``service`` its address."""

    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    net: int = field(default_factory=lambda: 100 + secrets.randbelow(100))
    namespaces: list[str] = field(default_factory=list)
    root_links: list[str] = field(default_factory=list)
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def data(self) -> str:
        return f"nt{self.tag}db"

    @property
    def service(self) -> str:
        """The data host's service address (Redis and the simulator listen on it)."""
        return f"10.{self.net}.0.1"

    def data_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.data]

    def open(self, workers: tuple[str, ...]) -> Lab:
        """Create the data host, a link to it from here, and one worker host per name."""
        net = self.net
        self._netns(self.data)
        _ip("-n", self.data, "addr", "add", f"{self.service}/32", "dev", "lo")
        # This (root) namespace ↔ data host, so the test reads Redis and the simulator directly.
        here, there = f"nt{self.tag}r", f"nt{self.tag}rd"
        _ip("link", "add", here, "type", "veth", "peer", "name", there)
        self.root_links.append(here)
        _ip("link", "set", there, "netns", self.data)
        _ip("addr", "add", f"10.{net}.9.1/30", "dev", here)
        _ip("link", "set", here, "up")
        _ip("-n", self.data, "addr", "add", f"10.{net}.9.2/30", "dev", there)
        _ip("-n", self.data, "link", "set", there, "up")
        _ip("route", "add", f"{self.service}/32", "via", f"10.{net}.9.2")
        for i, name in enumerate(workers, start=1):
            ns, link, peer = f"nt{self.tag}w{i}", f"nt{self.tag}w{i}", f"nt{self.tag}d{i}"
            self._netns(ns)
            _ip("-n", ns, "link", "add", link, "type", "veth", "peer", "name", peer)
            _ip("-n", ns, "link", "set", peer, "netns", self.data)
            _ip("-n", ns, "addr", "add", f"10.{net}.{i}.2/24", "dev", link)
            _ip("-n", ns, "link", "set", link, "up")
            _ip("-n", self.data, "addr", "add", f"10.{net}.{i}.1/24", "dev", peer)
            _ip("-n", self.data, "link", "set", peer, "up")
            _ip("-n", ns, "route", "add", "default", "via", f"10.{net}.{i}.1")
            self.hosts[name] = Host(name, ns, link, f"10.{net}.{i}.2", f"10.{net}.{i}.1")
        return self

    def _netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self.namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def cut(self, name: str) -> None:
        """Take the worker host's link down: it can reach nothing, and nothing tells it so."""
        host = self.hosts[name]
        _ip("-n", host.netns, "link", "set", host.link, "down")

    def restore(self, name: str) -> None:
        """Bring the link back (and its default route, which went with the link)."""
        host = self.hosts[name]
        _ip("-n", host.netns, "link", "set", host.link, "up")
        _ip("-n", host.netns, "route", "replace", "default", "via", host.gateway)

    def close(self) -> None:
        """Kill what still runs in the namespaces, then delete them (their veths and routes go with them)."""
        for ns in self.namespaces:
            pids = _ip("netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        if any(_ip("netns", "pids", ns, check=False).stdout.strip() for ns in self.namespaces):
            time.sleep(0.5)
        for ns in reversed(self.namespaces):
            _ip("netns", "del", ns, check=False)
        for link in self.root_links:
            _ip("link", "del", link, check=False)  # gone with its peer already; this is belt and braces
        self.namespaces.clear()
        self.root_links.clear()
        self.hosts.clear()
