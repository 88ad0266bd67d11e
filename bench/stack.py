"""The processes of a benchmark run: a private Redis, the simulator, worker processes; all stopped at exit."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil
import redis

from notifier.polling import wait_for
from notifier.redis_conn import EmbeddedRedis, free_port
from notifier.vapid import generate_private_key, write_private_key

#: Project root: the benchmark runs ``python -m bench...`` and ``python -m notifier_cli`` from here.
ROOT = Path(__file__).resolve().parents[1]


#: Receive times the simulator keeps (``Simulator(keep_received=...)``'s default): the latest ones.
SIMULATOR_KEEPS = 100_000


class Bars(Protocol):
    """The progress bars a section reports to (``bench.runner.Bars``): a task with a total, a counter."""

    def task(self, description: str, total: int | None) -> AbstractContextManager[Callable[..., None]]: ...

    def counter(self, description: str, total: int) -> AbstractContextManager[Callable[[int], None]]: ...


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM one child we started, then SIGKILL it if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 when it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def bench_redis(work_dir: Path) -> EmbeddedRedis:
    """The benchmark's private Redis: the embedded launcher without persistence (fsync is not measured)."""
    return EmbeddedRedis(work_dir, port=free_port(), persistent=False)


class SimulatorProcess:
    """``notifier simulator`` as its own process, so it never shares the benchmark's GIL."""

    def __init__(
        self, log_dir: Path, *, tls: bool = False, verify_fraction: float = 0.02, name: str = ""
    ) -> None:
        self.tls = tls
        self.verify_fraction = verify_fraction
        self.port = free_port()
        self.log_path = log_dir / f"simulator-{name or ('https' if tls else 'http')}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.origin = ""
        self.ca_file: str | None = None

    def start(self, timeout: float = 30.0) -> SimulatorProcess:
        """Start it and read its origin (and CA certificate path) from its announcement."""
        args = [
            sys.executable,
            "-m",
            "notifier_cli",
            "simulator",
            "--port",
            str(self.port),
            "--verify-fraction",
            str(self.verify_fraction),
        ]
        if self.tls:
            args.append("--tls")
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        log.close()

        def announced() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"simulator exited: {self.log_path.read_text(errors='replace')[-2000:]}")
            text = self.log_path.read_text(errors="replace")
            found = re.search(r"listening on (\S+)", text)
            if not found or (self.tls and "trust this" not in text):
                return False
            self.origin = found.group(1)
            ca = re.search(r"trust this\): (\S+)", text)
            self.ca_file = ca.group(1) if ca else None
            return True

        wait_for(announced, timeout, message="the simulator to listen")
        return self

    @property
    def pid(self) -> int:
        """Process id of the simulator."""
        assert self.process is not None
        return self.process.pid

    @property
    def host_port(self) -> str:
        """``host:port`` for ``NOTIFIER_PUSH_HOSTS``."""
        return self.origin.split("://", 1)[1]

    def _request(self, method: str, path: str, body: Any = None, timeout: float = 120.0) -> Any:
        import ssl

        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - our own child process
            self.origin + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        context = ssl.create_default_context(cafile=self.ca_file) if self.tls else None
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:  # noqa: S310
            raw = resp.read()
        return json.loads(raw) if raw else None

    def mint(self, count: int, chunk: int = 1000) -> list[dict[str, Any]]:
        """Mint subscriptions in chunks of ``chunk``, one real P-256 key pair per chunk."""
        out: list[dict[str, Any]] = []
        while len(out) < count:
            n = min(chunk, count - len(out))
            out += self._request("POST", "/_sim/subscriptions", {"count": n, "shared_keys": True})[
                "subscriptions"
            ]
        return out

    def stats(self) -> dict[str, Any]:
        """``GET /_sim/stats``."""
        result: dict[str, Any] = self._request("GET", "/_sim/stats")
        return result

    def add_rule(self, rule: dict[str, Any]) -> int:
        """``POST /_sim/rules`` (e.g. a latency rule); the rule's id."""
        ids: list[int] = self._request("POST", "/_sim/rules", rule)["ids"]
        return ids[0]

    def clear_rules(self) -> None:
        """``DELETE /_sim/rules``."""
        self._request("DELETE", "/_sim/rules")

    def receive_window(self, count: int) -> tuple[float, float]:
        """Receive times (first, last) of the latest ``count`` accepted messages (``GET /_sim/received``)."""
        items = self._request("GET", f"/_sim/received?limit={count}")["received"]
        times = [item["time"] for item in items]
        return min(times), max(times)

    def stop(self) -> None:
        """Stop it (the simulator removes its temporary certificate directory on exit)."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None


@dataclass
class Workers:
    """``notifier worker`` subprocesses with a sampler of their resident memory."""

    env: dict[str, str]
    log_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    peak_rss: dict[int, int] = field(default_factory=dict)
    _sampling: threading.Event = field(default_factory=threading.Event)
    _sampler: threading.Thread | None = None

    def start(self, n: int, tag: str) -> None:
        """Start ``n`` workers and begin sampling their RSS every 0.1 s."""
        for i in range(n):
            with open(self.log_dir / f"worker-{tag}-{i}.log", "wb") as log:
                self.procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "notifier_cli",
                            "worker",
                            "--name",
                            f"bench-{tag}-{i}-{os.getpid()}",
                        ],
                        env=self.env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=ROOT,
                    )
                )
        self._sampling.set()
        self._sampler = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._sampler.start()

    def wait_ready(self, raw: redis.Redis, timeout: float = 60.0) -> None:
        """Wait until every worker has registered with RQ (it is then idle and listening)."""
        from rq import Worker

        def ready() -> bool:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a worker exited with {proc.returncode}; see {self.log_dir}")
            return Worker.count(connection=raw) >= len(self.procs)

        wait_for(ready, timeout, message="workers to register")

    def _sample(self) -> None:
        handles = {p.pid: psutil.Process(p.pid) for p in self.procs}
        while self._sampling.is_set():
            for pid, handle in handles.items():
                try:
                    rss = handle.memory_info().rss
                except psutil.Error:
                    continue
                self.peak_rss[pid] = max(self.peak_rss.get(pid, 0), rss)
            time.sleep(0.1)

    def pids(self) -> list[int]:
        """Process ids of the workers."""
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        """Stop sampling and the workers."""
        self._sampling.clear()
        if self._sampler is not None:
            self._sampler.join()
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            stop_process(proc, timeout=15)
        self.procs = []


def write_vapid_key(directory: Path) -> Path:
    """A fresh VAPID private key for the run."""
    path = directory / "vapid_private.pem"
    write_private_key(path, generate_private_key())
    return path


def stack_env(redis_url: str, vapid_key: Path, data_dir: Path, sim: SimulatorProcess) -> dict[str, str]:
    """The environment workers (and the bench itself) run with."""
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "VAPID_PRIVATE_KEY_FILE": str(vapid_key),
        "VAPID_SUBJECT": "mailto:bench@kabarkini.example",
        "SECRET_KEY": "bench-secret-key-0123456789",
        "NOTIFIER_PUSH_HOSTS": sim.host_port,
        "NOTIFIER_DATA_DIR": str(data_dir),
        "NOTIFIER_ENV": "development",
        "NOTIFIER_RATE_LIMITS": "0",
        # The simulator shows nothing (no browser sends "shown" or "clicked"): repeated runs against
        # the same subscriptions must not leave them out as unreachable or over their budget.
        "NOTIFIER_UNREACHABLE_AFTER": "0",
        "NOTIFIER_READER_BUDGET": "0",
        "NOTIFIER_WORKER_MAINTENANCE": "600",
        "PYTHONUNBUFFERED": "1",
    }
    if sim.ca_file:
        env["NOTIFIER_CA_FILE"] = sim.ca_file
    else:
        env.pop("NOTIFIER_CA_FILE", None)
    return env
