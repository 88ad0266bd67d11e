"""The push service simulator's aiohttp server: Web Push endpoints, Mozilla's WebSocket protocol, controls.

Routes (all on one port)::

    POST   /wpush/{token}          a push message (RFC 8030 + 8291 + 8292), answered 201 + Location
    DELETE /wpush/{token}          delete the subscription (later pushes get 410)
    GET    /                       WebSocket, subprotocol "push-notification" (what Firefox speaks)
    POST   /_sim/subscriptions     {"count": N, "applicationServerKey"?: b64url, "shared_keys"?: bool}
    GET    /_sim/rules             list rules;  POST /_sim/rules  a rule or {"rules": [...]}
    DELETE /_sim/rules             remove all;  DELETE /_sim/rules/{id}  remove one
    GET    /_sim/stats             counters;    GET /_sim/received?endpoint=&limit=
    POST   /_sim/reset             forget everything

:class:`SimulatorServer` runs it on its own thread and event loop for tests; :func:`serve`
runs it in the foreground for the ``notifier simulator`` command. Both use uvloop, and push
POSTs are answered by :mod:`notifier.simulator.fastpath` without aiohttp's per-request machinery
(the simulator shares the benchmark's cores, so its CPU per message lowers what is measured).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import uvloop
from aiohttp import WSCloseCode, WSMsgType, web

from notifier.crypto import RECORD_SIZE, b64url_decode
from notifier.simulator.fastpath import PushProtocol, response_bytes
from notifier.simulator.state import Outcome, Received, Rule, Simulator
from notifier.simulator.tls import CertificateFiles, make_certificates

#: The WebSocket subprotocol Firefox asks for (``PushServiceWebSocket.sys.mjs``).
WS_PROTOCOL = "push-notification"
#: Generous bound on request bodies read before the 4096-byte check answers 413.
_CLIENT_MAX_SIZE = 64 * 1024
#: How long shutdown waits for in-flight (e.g. stalled) requests before cancelling them.
_SHUTDOWN_TIMEOUT = 0.25


def _public_host(host: str) -> str:
    if host in {"", "0.0.0.0", "::"}:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": "invalid", "message": message}, status=status)


def _answer(outcome: Outcome) -> web.Response:
    if outcome.status == 201:
        return web.Response(status=201, headers=outcome.headers)
    return web.json_response(outcome.error_body(), status=outcome.status, headers=outcome.headers)


class _Handlers:
    """Request handlers bound to one :class:`Simulator`; WebSocket clients are tracked by uaid."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.connections: dict[str, web.WebSocketResponse] = {}
        self.sockets: set[web.WebSocketResponse] = set()
        self._forwarding: set[asyncio.Task[None]] = set()

    # -- Web Push ----------------------------------------------------------------------------------

    def push_bytes(self, token: str, headers: dict[str, str], body: bytes) -> bytes | None:
        """The fast path's :meth:`push`: the raw answer, or None (untouched) when aiohttp must serve it.

        ``headers`` has lower-case names. A push while a ``stall`` rule exists goes to
        aiohttp, which can hold one request without holding the connection's others.
        """
        sim = self.sim
        if sim.has_stall_rule():
            return None
        rule = sim.match_rule(token)
        outcome = sim.rule_outcome(rule) if rule is not None else sim.handle_push(token, headers, body)
        if outcome.forward_to is not None and outcome.notification is not None:
            # Forwarded after the 201 is written, not before: the client holds no order on them.
            task = asyncio.get_running_loop().create_task(
                self._send(outcome.forward_to, outcome.notification)
            )
            self._forwarding.add(task)
            task.add_done_callback(self._forwarding.discard)
        return response_bytes(outcome)

    async def push(self, request: web.Request) -> web.StreamResponse:
        """Handle one push message."""
        sim = self.sim
        token = request.match_info["token"]
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _answer(sim.refuse(413, f"body exceeds the limit of {RECORD_SIZE} bytes"))
        rule = sim.match_rule(token)
        if rule is not None:
            if rule.status != "stall":
                return _answer(sim.rule_outcome(rule))
            await asyncio.sleep(rule.seconds)
            transport = request.transport
            if transport is None or transport.is_closing():
                # The sender gave up while we hung: like a service that never got to accept it,
                # the message is not recorded (the sender saw a timeout, not a 201).
                sim.note_abandoned()
                return web.Response(status=504)
        outcome = sim.handle_push(token, request.headers, body)
        if outcome.forward_to is not None and outcome.notification is not None:
            await self._send(outcome.forward_to, outcome.notification)
        return _answer(outcome)

    async def delete_subscription(self, request: web.Request) -> web.StreamResponse:
        """Delete a subscription, as a browser's ``unsubscribe()`` would."""
        endpoint = self.sim.origin + "/wpush/" + request.match_info["token"]
        if not self.sim.unsubscribe(endpoint):
            return _json_error(404, "no such subscription")
        return web.Response(status=204)

    # -- Mozilla push protocol over WebSocket ------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        """WebSocket upgrade for push clients; plain GET describes the service."""
        ws = web.WebSocketResponse(protocols=(WS_PROTOCOL,), max_msg_size=64 * 1024)
        if not ws.can_prepare(request).ok:
            origin = self.sim.origin
            return web.json_response(
                {
                    "service": "notifier push service simulator",
                    "endpoints": origin + "/wpush/{token}",
                    "websocket": "ws" + origin[len("http") :] + "/",
                    "stats": origin + "/_sim/stats",
                }
            )
        await ws.prepare(request)
        self.sockets.add(ws)
        uaid: str | None = None
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(message.data)
                except ValueError:
                    await ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b"messages must be JSON")
                    break
                if not isinstance(data, dict):
                    continue
                kind = data.get("messageType")
                if not data or kind is None or kind == "ping":
                    # Firefox pings with "{}" and treats "{}" as the pong.
                    await ws.send_str("{}")
                elif kind == "hello":
                    uaid = await self._hello(ws, data, uaid)
                elif uaid is None:
                    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"send hello first")
                    break
                elif kind == "register":
                    await self._register(ws, data, uaid)
                elif kind == "unregister":
                    await self._unregister(ws, data, uaid)
                elif kind == "ack":
                    for update in data.get("updates") or []:
                        if isinstance(update, dict) and isinstance(update.get("version"), str):
                            # Firefox acks with code 100 when it showed the message, 101 when it could not
                            # decrypt it and 102 for other errors: only 100 is a delivery.
                            ok = update.get("code", 100) == 100
                            self.sim.acknowledge(uaid, update["version"], ok=ok)
                elif kind == "nack":
                    if isinstance(data.get("version"), str):
                        self.sim.acknowledge(uaid, data["version"], ok=False)
                # Anything else (e.g. broadcast_subscribe) needs no answer here.
        finally:
            self.sockets.discard(ws)
            if uaid is not None and self.connections.get(uaid) is ws:
                del self.connections[uaid]
        return ws

    async def _hello(self, ws: web.WebSocketResponse, data: dict[str, Any], current: str | None) -> str:
        if current is not None:
            return current
        asked = data.get("uaid")
        uaid = self.sim.hello(asked if isinstance(asked, str) else None)
        previous = self.connections.get(uaid)
        self.connections[uaid] = ws
        if previous is not None and previous is not ws:
            await previous.close(code=WSCloseCode.GOING_AWAY, message=b"superseded by a newer connection")
        await ws.send_json(
            {"messageType": "hello", "uaid": uaid, "status": 200, "use_webpush": True, "broadcasts": {}}
        )
        for notification in self.sim.pending_for(uaid):
            await ws.send_json(notification)
        return uaid

    async def _register(self, ws: web.WebSocketResponse, data: dict[str, Any], uaid: str) -> None:
        channel_id = data.get("channelID")
        if not isinstance(channel_id, str) or not channel_id:
            await ws.send_json({"messageType": "register", "channelID": channel_id, "status": 400})
            return
        key: bytes | None = None
        if data.get("key") is not None:
            try:
                key = b64url_decode(str(data["key"]))
            except ValueError:
                key = b""
            if len(key) != 65 or key[0] != 4:
                await ws.send_json({"messageType": "register", "channelID": channel_id, "status": 400})
                return
        endpoint = self.sim.register_channel(uaid, channel_id, key)
        await ws.send_json(
            {"messageType": "register", "channelID": channel_id, "status": 200, "pushEndpoint": endpoint}
        )

    async def _unregister(self, ws: web.WebSocketResponse, data: dict[str, Any], uaid: str) -> None:
        channel_id = data.get("channelID")
        if isinstance(channel_id, str):
            self.sim.unregister_channel(uaid, channel_id)
        await ws.send_json({"messageType": "unregister", "channelID": channel_id, "status": 200})

    async def _send(self, uaid: str, notification: Any) -> None:
        ws = self.connections.get(uaid)
        if ws is None or ws.closed:
            return  # kept pending (when TTL > 0) and delivered after the next hello
        with contextlib.suppress(ConnectionError):
            await ws.send_json(notification)

    async def close_sockets(self, app: web.Application) -> None:
        """On shutdown, close WebSocket clients (they would otherwise hold shutdown up)."""
        for ws in list(self.sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    # -- controls for tests, benchmarks and the demo -----------------------------------------------

    async def mint(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/subscriptions``: mint subscriptions."""
        data = await _json_body(request)
        if not isinstance(data, dict):
            return _json_error(400, 'expected {"count": N}')
        count = data.get("count", 1)
        key = data.get("applicationServerKey")
        if not isinstance(count, int) or isinstance(count, bool):
            return _json_error(400, "count must be an integer")
        if key is not None and not isinstance(key, str):
            return _json_error(400, "applicationServerKey must be base64url")
        try:
            subscriptions = self.sim.mint(
                count, application_server_key=key, shared_keys=bool(data.get("shared_keys", False))
            )
        except ValueError as exc:
            return _json_error(400, str(exc))
        return web.json_response({"subscriptions": subscriptions}, status=201)

    async def list_rules(self, request: web.Request) -> web.StreamResponse:
        """``GET /_sim/rules``."""
        return web.json_response({"rules": [rule.to_json() for rule in self.sim.rules()]})

    async def add_rules(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/rules``: one rule object, or ``{"rules": [...]}``."""
        data = await _json_body(request)
        items = data.get("rules") if isinstance(data, dict) and "rules" in data else [data]
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            return _json_error(400, "expected a rule object or {'rules': [rule, ...]}")
        try:
            rules = [Rule.from_json(item) for item in items]
        except ValueError as exc:
            return _json_error(400, str(exc))
        return web.json_response({"ids": [self.sim.add(rule) for rule in rules]}, status=201)

    async def clear_rules(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /_sim/rules``."""
        self.sim.clear_rules()
        return web.Response(status=204)

    async def remove_rule(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /_sim/rules/{id}``."""
        try:
            rule_id = int(request.match_info["id"])
        except ValueError:
            return _json_error(404, "no such rule")
        if not self.sim.remove_rule(rule_id):
            return _json_error(404, "no such rule")
        return web.Response(status=204)

    async def stats(self, request: web.Request) -> web.StreamResponse:
        """``GET /_sim/stats``."""
        stats = self.sim.stats()
        stats["ws_connections"] = len(self.connections)
        return web.json_response(stats)

    async def received(self, request: web.Request) -> web.StreamResponse:
        """``GET /_sim/received?endpoint=&limit=``: the latest received messages."""
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return _json_error(400, "limit must be an integer")
        items = self.sim.received(request.query.get("endpoint"))
        items = items[-limit:] if limit > 0 else []
        return web.json_response({"received": [item.to_json() for item in items]})

    async def reset(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/reset``."""
        self.sim.reset()
        return web.Response(status=204)


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "invalid", "message": "body must be JSON"}),
            content_type="application/json",
        ) from None


def build_app(sim: Simulator) -> web.Application:
    """The aiohttp application serving ``sim``."""
    return _application(_Handlers(sim))


def _application(handlers: _Handlers) -> web.Application:
    app = web.Application(client_max_size=_CLIENT_MAX_SIZE)
    app.on_shutdown.append(handlers.close_sockets)
    app.router.add_post("/wpush/{token}", handlers.push)
    app.router.add_delete("/wpush/{token}", handlers.delete_subscription)
    app.router.add_get("/", handlers.index)
    app.router.add_post("/_sim/subscriptions", handlers.mint)
    app.router.add_get("/_sim/rules", handlers.list_rules)
    app.router.add_post("/_sim/rules", handlers.add_rules)
    app.router.add_delete("/_sim/rules", handlers.clear_rules)
    app.router.add_delete("/_sim/rules/{id}", handlers.remove_rule)
    app.router.add_get("/_sim/stats", handlers.stats)
    app.router.add_get("/_sim/received", handlers.received)
    app.router.add_post("/_sim/reset", handlers.reset)
    return app


@dataclass
class _Running:
    """A listening simulator: aiohttp's runner, the listening server, connections still on the fast path."""

    runner: web.AppRunner
    server: asyncio.AbstractServer
    fast: set[PushProtocol]


async def _start(
    sim: Simulator, host: str, port: int, certificates: CertificateFiles | None
) -> tuple[_Running, int]:
    handlers = _Handlers(sim)
    runner = web.AppRunner(_application(handlers), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
    await runner.setup()
    fallback = runner.server
    assert fallback is not None
    fast: set[PushProtocol] = set()
    context = certificates.server_context() if certificates is not None else None
    loop = asyncio.get_running_loop()
    try:
        # Every connection starts on the fast path (push POSTs); aiohttp's handler takes over the
        # connection at its first other request (fastpath.py).
        server = await loop.create_server(
            lambda: PushProtocol(handlers.push_bytes, fallback, fast, _CLIENT_MAX_SIZE),
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
    return _Running(runner, server, fast), bound


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
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.simulator = Simulator(verify_fraction=verify_fraction, seed=seed, keep_received=keep_received)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._tls_dir: Path | None = None
        self._certificates: CertificateFiles | None = None

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
                _start(self.simulator, self.host, self.port, self._certificates)
            )
        except BaseException as exc:  # handed to start(), which re-raises it in the caller's thread
            self._error = exc
        self._loop = loop if running is not None else None
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
        status: int | Literal["stall"],
        *,
        endpoint: str | None = None,
        fraction: float | None = None,
        count: int | None = None,
        retry_after: int | str | None = None,
        seconds: float = 0.0,
    ) -> int:
        """Add a rule (see :class:`~notifier.simulator.state.Rule`); return its id."""
        return self.simulator.add_rule(
            status,
            endpoint=endpoint,
            fraction=fraction,
            count=count,
            retry_after=retry_after,
            seconds=seconds,
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


async def run(
    host: str = "127.0.0.1",
    port: int = 8090,
    *,
    tls: bool = False,
    verify_fraction: float = 1.0,
    ready: Callable[[Simulator, str | None], None] | None = None,
) -> None:
    """Serve a simulator on the current event loop until cancelled; ``ready(sim, ca_file)`` once listening."""
    sim = Simulator(verify_fraction=verify_fraction)
    tls_dir: Path | None = None
    certificates: CertificateFiles | None = None
    if tls:
        tls_dir, certificates = _certificates(host)
    try:
        running, _ = await _start(sim, host, port, certificates)
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


def serve(host: str = "127.0.0.1", port: int = 8090, tls: bool = False, verify_fraction: float = 1.0) -> None:
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
            loop.run(run(host, port, tls=tls, verify_fraction=verify_fraction, ready=_announce))
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
