"""The simulator's lifecycle: listen (plain or TLS), serve, stop cleanly; on a thread or in the foreground.

:class:`SimulatorServer` runs it on its own thread and event loop for tests; :func:`serve`
runs it in the foreground for the ``notifier simulator`` command. Both use uvloop, and push
POSTs are answered by :mod:`notifier_simulator.fastpath` without aiohttp's per-request machinery
(the simulator shares the benchmark's cores, so its CPU per message lowers what is measured).
The routes are in :mod:`notifier_simulator.routes`, Firefox's WebSocket protocol in
:mod:`notifier_simulator.mozilla`.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import uvloop
from aiohttp import web

from notifier_simulator.fastpath import HeldAnswers, PushProtocol
from notifier_simulator.http2 import DEFAULT_MAX_STREAMS, make_h2
from notifier_simulator.routes import CLIENT_MAX_SIZE, Routes, application
from notifier_simulator.state import Received, Rule, Simulator
from notifier_simulator.tls import CertificateFiles, make_certificates

#: How long shutdown waits for in-flight (e.g. stalled) requests before cancelling them.
_SHUTDOWN_TIMEOUT = 0.25


def _public_host(host: str) -> str:
    if host in {"", "0.0.0.0", "::"}:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


@dataclass
class _Running:
    """A listening simulator: aiohttp's runner, the listening server, connections still on the fast path."""

    runner: web.AppRunner
    server: asyncio.AbstractServer
    fast: set[Any]  # connections still on a fast path (HTTP/1.1 push POSTs, HTTP/2)
    routes: Routes


@dataclass(frozen=True)
class Http2Options:
    """HTTP/2 over TLS: offered by ALPN (``enabled``), and the streams one connection may have open."""

    enabled: bool = True
    max_streams: int = DEFAULT_MAX_STREAMS


async def _start(
    sim: Simulator,
    host: str,
    port: int,
    certificates: CertificateFiles | None,
    http2: Http2Options = Http2Options(),
) -> tuple[_Running, int]:
    routes = Routes(sim)
    runner = web.AppRunner(application(routes), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
    await runner.setup()
    fallback = runner.server
    assert fallback is not None
    fast: set[Any] = set()
    context = certificates.server_context() if certificates is not None else None
    if context is not None:
        context.set_alpn_protocols(["h2", "http/1.1"] if http2.enabled else ["http/1.1"])
    loop = asyncio.get_running_loop()
    try:
        # Every connection starts on the fast path (push POSTs); aiohttp's handler takes over the
        # connection at its first other request (fastpath.py); ALPN h2 goes to http2.py.
        held = HeldAnswers(loop)
        h2 = make_h2(routes, held, fast, http2.max_streams) if context is not None and http2.enabled else None
        server = await loop.create_server(
            lambda: PushProtocol(routes.push_bytes, fallback, fast, CLIENT_MAX_SIZE, held, h2),
            host or None,
            port,
            ssl=context,
            backlog=2048,
        )
    except BaseException:
        await runner.cleanup()
        raise
    bound = int(server.sockets[0].getsockname()[1])
    scheme = "https" if certificates is not None else "http"
    sim.set_origin(f"{scheme}://{_public_host(host)}:{bound}")
    return _Running(runner, server, fast, routes), bound


async def _stop(running: _Running) -> None:
    running.server.close()
    server = running.runner.server
    transports = [h.transport for h in server.connections if h.transport is not None] if server else []
    await running.runner.cleanup()
    # A TLS connection closes only once the peer answers close_notify; abort whatever is still
    # open and give the loop a moment to run the close callbacks, so no socket outlives it.
    for transport in transports:
        transport.abort()
    for connection in list(running.fast):
        connection.close()
    await asyncio.sleep(0.01)


def _certificates(host: str) -> tuple[Path, CertificateFiles]:
    directory = Path(tempfile.mkdtemp(prefix="notifier-sim-tls-"))
    hosts = ["127.0.0.1", "localhost", "::1"]
    if host not in {"", "0.0.0.0", "::", *hosts}:
        hosts.insert(0, host)
    return directory, make_certificates(directory, hosts)


class SimulatorServer:
    """Run a :class:`Simulator` on its own thread and event loop; use as a context manager or start/stop."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        verify_fraction: float = 1.0,
        *,
        seed: int = 0,
        keep_received: int = 100_000,
        http2: bool = True,
        h2_max_streams: int = DEFAULT_MAX_STREAMS,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.http2 = Http2Options(http2, h2_max_streams)
        self.simulator = Simulator(verify_fraction=verify_fraction, seed=seed, keep_received=keep_received)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._tls_dir: Path | None = None
        self._certificates: CertificateFiles | None = None
        self._running: _Running | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> SimulatorServer:
        """Start serving; return once the socket is listening (``port`` is then the bound port)."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        if self.tls:
            self._tls_dir, self._certificates = _certificates(self.host)
        self._thread = threading.Thread(target=self._run, name="push-simulator", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            self._remove_tls_dir()
            raise self._error
        return self

    def stop(self) -> None:
        """Stop serving, close WebSocket clients, and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = None
        self._loop = None
        self._running = None
        self._ready.clear()
        self._remove_tls_dir()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _remove_tls_dir(self) -> None:
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = None

    def _run(self) -> None:
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        running: _Running | None = None
        try:
            running, self.port = loop.run_until_complete(
                _start(self.simulator, self.host, self.port, self._certificates, self.http2)
            )
        except BaseException as exc:  # handed to start(), which re-raises it in the caller's thread
            self._error = exc
        self._loop = loop if running is not None else None
        self._running = running
        self._ready.set()
        try:
            if running is not None:
                loop.run_forever()
                loop.run_until_complete(_stop(running))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """``scheme://host:port``: the ``aud`` claim senders must use."""
        return self.simulator.origin

    @property
    def url(self) -> str:
        """Base URL of the service (same as the origin)."""
        return self.simulator.origin

    @property
    def ws_url(self) -> str:
        """WebSocket URL for ``dom.push.serverURL`` (``ws://`` or ``wss://``, path ``/``)."""
        origin = self.simulator.origin
        return "ws" + origin[len("http") :] + "/"

    @property
    def ca_file(self) -> str | None:
        """PEM of the CA that signed the HTTPS certificate (tls=True), for clients to trust."""
        return None if self._certificates is None else str(self._certificates.ca_file)

    # -- in-process accessors (thread-safe) --------------------------------------------------------

    def mint(
        self, count: int = 1, *, application_server_key: bytes | str | None = None, shared_keys: bool = False
    ) -> list[dict[str, Any]]:
        """Create subscriptions in ``PushSubscription.toJSON()`` shape."""
        return self.simulator.mint(
            count, application_server_key=application_server_key, shared_keys=shared_keys
        )

    def add_rule(
        self,
        status: int | Literal["stall", "latency"],
        *,
        endpoint: str | None = None,
        fraction: float | None = None,
        count: int | None = None,
        retry_after: int | str | None = None,
        seconds: float = 0.0,
        jitter: float = 0.0,
        tail_fraction: float = 0.0,
        tail_seconds: float = 0.0,
    ) -> int:
        """Add a rule (see :class:`~notifier_simulator.state.Rule`); return its id."""
        return self.simulator.add_rule(
            status,
            endpoint=endpoint,
            fraction=fraction,
            count=count,
            retry_after=retry_after,
            seconds=seconds,
            jitter=jitter,
            tail_fraction=tail_fraction,
            tail_seconds=tail_seconds,
        )

    def rules(self) -> list[Rule]:
        """The current rules, in match order (with their hit counts and last hit times)."""
        return self.simulator.rules()

    def remove_rule(self, rule_id: int) -> bool:
        """Remove one rule."""
        return self.simulator.remove_rule(rule_id)

    def clear_rules(self) -> None:
        """Remove every rule."""
        self.simulator.clear_rules()

    def unsubscribe(self, endpoint: str) -> bool:
        """Delete a subscription so its endpoint answers 410."""
        return self.simulator.unsubscribe(endpoint)

    def stats(self) -> dict[str, Any]:
        """Counters (see :meth:`Simulator.stats`)."""
        return self.simulator.stats()

    def received(self, endpoint: str | None = None) -> list[Received]:
        """Messages accepted so far, optionally for one endpoint."""
        return self.simulator.received(endpoint)

    def reset(self) -> None:
        """Forget subscriptions, rules, messages and counters."""
        self.simulator.reset()

    def ws_clients(self) -> list[str]:
        """The uaids of the WebSocket clients the service knows."""
        return self.simulator.clients()

    def forget_ws_clients(self, uaid: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """Forget a WebSocket client (all when ``uaid`` is None) and close its socket, from any thread.

        A real Firefox then fires ``pushsubscriptionchange`` (see :meth:`MozillaProtocol.forget`).
        """
        loop, running = self._loop, self._running
        if loop is None or running is None:
            raise RuntimeError("the simulator is not running")
        future = asyncio.run_coroutine_threadsafe(running.routes.mozilla.forget(uaid), loop)
        return future.result(timeout)


async def run(
    host: str = "127.0.0.1",
    port: int = 8090,
    *,
    tls: bool = False,
    verify_fraction: float = 1.0,
    ready: Callable[[Simulator, str | None], None] | None = None,
    http2: Http2Options = Http2Options(),
) -> None:
    """Serve a simulator on the current event loop until cancelled; ``ready(sim, ca_file)`` once listening."""
    sim = Simulator(verify_fraction=verify_fraction)
    tls_dir: Path | None = None
    certificates: CertificateFiles | None = None
    if tls:
        tls_dir, certificates = _certificates(host)
    try:
        running, _ = await _start(sim, host, port, certificates, http2)
        try:
            if ready is not None:
                ready(sim, None if certificates is None else str(certificates.ca_file))
            await asyncio.Event().wait()
        finally:
            await _stop(running)
    finally:
        if tls_dir is not None:
            shutil.rmtree(tls_dir, ignore_errors=True)


def _announce(sim: Simulator, ca_file: str | None) -> None:
    origin = sim.origin
    print(f"push service simulator listening on {origin}", flush=True)
    print(f"  WebSocket (dom.push.serverURL): ws{origin[len('http') :]}/", flush=True)
    print(f"  controls: {origin}/_sim/stats, {origin}/_sim/subscriptions, {origin}/_sim/rules", flush=True)
    if ca_file is not None:
        print(f"  TLS CA certificate (trust this): {ca_file}", flush=True)


def serve(
    host: str = "127.0.0.1",
    port: int = 8090,
    tls: bool = False,
    verify_fraction: float = 1.0,
    http2: Http2Options = Http2Options(),
) -> None:
    """Run the simulator in the foreground until SIGINT or SIGTERM (the ``notifier simulator`` command)."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        # A process manager stops us with SIGTERM: shut down as cleanly as on Ctrl-C.
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with (
            contextlib.suppress(KeyboardInterrupt),
            asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop,
        ):
            loop.run(run(host, port, tls=tls, verify_fraction=verify_fraction, ready=_announce, http2=http2))
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
