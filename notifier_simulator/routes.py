"""The simulator's HTTP routes: Web Push endpoints (RFC 8030) and the controls of tests and the demo.

Routes (all on one port, beside the WebSocket of :mod:`notifier_simulator.mozilla`)::

    POST   /wpush/{token}          a push message (RFC 8030 + 8291 + 8292), answered 201 + Location
    DELETE /wpush/{token}          delete the subscription (later pushes get 410)
    GET    /                       WebSocket, subprotocol "push-notification" (what Firefox speaks)
    POST   /_sim/subscriptions     {"count": N, "applicationServerKey"?: b64url, "shared_keys"?: bool}
    GET    /_sim/rules             list rules;  POST /_sim/rules  a rule or {"rules": [...]}
    DELETE /_sim/rules             remove all;  DELETE /_sim/rules/{id}  remove one
    GET    /_sim/stats             counters;    GET /_sim/received?endpoint=&limit=
    POST   /_sim/reset             forget everything
    POST   /_sim/ws/forget         {"uaid"?: ...}: forget WebSocket clients (Firefox then fires
                                   pushsubscriptionchange), all of them without a uaid
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from notifier.crypto import RECORD_SIZE
from notifier_simulator.fastpath import response_bytes
from notifier_simulator.mozilla import MozillaProtocol
from notifier_simulator.state import Outcome, Rule, Simulator

#: Generous bound on request bodies read before the 4096-byte check answers 413.
CLIENT_MAX_SIZE = 64 * 1024


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": "invalid", "message": message}, status=status)


async def _hold(seconds: float) -> None:
    """Hold an answer as a latency rule asks (the message is already handled)."""
    if seconds > 0:
        await asyncio.sleep(seconds)


def _answer(outcome: Outcome) -> web.Response:
    if outcome.status == 201:
        return web.Response(status=201, headers=outcome.headers)
    return web.json_response(outcome.error_body(), status=outcome.status, headers=outcome.headers)


class Routes:
    """The HTTP handlers bound to one :class:`Simulator` and its WebSocket clients."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.mozilla = MozillaProtocol(sim)
        self._forwarding: set[asyncio.Task[None]] = set()

    # -- Web Push ----------------------------------------------------------------------------------

    def push_bytes(self, token: str, headers: dict[str, str], body: bytes) -> tuple[bytes, float] | None:
        """The fast path's :meth:`push`: the raw answer and its hold, or None when aiohttp must serve it.

        ``headers`` has lower-case names. A push while a ``stall`` rule exists goes to
        aiohttp, which can hold one request without holding the connection's others.
        """
        outcome = self.push_outcome(token, headers, body)
        return None if outcome is None else (response_bytes(outcome), self.sim.hold_for(token))

    def push_outcome(self, token: str, headers: dict[str, str], body: bytes) -> Outcome | None:
        """Decide one push (answer rules, then the service's checks) for a fast path; None: aiohttp's."""
        sim = self.sim
        if sim.has_stall_rule():
            return None
        rule = sim.match_rule(token)
        return self._decided(
            sim.rule_outcome(rule) if rule is not None else sim.handle_push(token, headers, body)
        )

    def push_h2(
        self,
        token: str,
        headers: dict[str, str],
        body: bytes,
        answer: Callable[[Outcome | None, float], None],
        wanted: Callable[[], bool],
    ) -> None:
        """:meth:`push` for an HTTP/2 stream: ``answer(outcome, hold)`` now, or after a stall.

        A stall holds the stream (not the connection); when it ends, the push is handled only
        if ``wanted()`` (the client has not reset the stream), else counted as abandoned and
        ``answer(None, 0)``.
        """
        sim = self.sim
        sim.note_h2()
        rule = sim.match_rule(token)
        if rule is not None and rule.status == "stall":

            def after_stall() -> None:
                if not wanted():
                    sim.note_abandoned()
                    answer(None, 0.0)
                    return
                answer(self._decided(sim.handle_push(token, headers, body)), sim.hold_for(token))

            asyncio.get_running_loop().call_later(rule.seconds, after_stall)
            return
        outcome = sim.rule_outcome(rule) if rule is not None else sim.handle_push(token, headers, body)
        answer(self._decided(outcome), sim.hold_for(token))

    def _decided(self, outcome: Outcome) -> Outcome:
        if outcome.forward_to is not None and outcome.notification is not None:
            # Forwarded after the 201 is written, not before: the client holds no order on them.
            task = asyncio.get_running_loop().create_task(
                self.mozilla.send(outcome.forward_to, outcome.notification)
            )
            self._forwarding.add(task)
            task.add_done_callback(self._forwarding.discard)
        return outcome

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
                outcome = sim.rule_outcome(rule)
                await _hold(sim.hold_for(token))
                return _answer(outcome)
            await asyncio.sleep(rule.seconds)
            transport = request.transport
            if transport is None or transport.is_closing():
                # The sender gave up while we hung: like a service that never got to accept it,
                # the message is not recorded (the sender saw a timeout, not a 201).
                sim.note_abandoned()
                return web.Response(status=504)
        outcome = sim.handle_push(token, request.headers, body)
        if outcome.forward_to is not None and outcome.notification is not None:
            await self.mozilla.send(outcome.forward_to, outcome.notification)
        await _hold(sim.hold_for(token))
        return _answer(outcome)

    async def delete_subscription(self, request: web.Request) -> web.StreamResponse:
        """Delete a subscription, as a browser's ``unsubscribe()`` would."""
        endpoint = self.sim.origin + "/wpush/" + request.match_info["token"]
        if not self.sim.unsubscribe(endpoint):
            return _json_error(404, "no such subscription")
        return web.Response(status=204)

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
        stats["ws_connections"] = len(self.mozilla.connections)
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

    async def forget_clients(self, request: web.Request) -> web.StreamResponse:
        """``POST /_sim/ws/forget``: forget one WebSocket client (``{"uaid": ...}``) or all of them."""
        data = await _json_body(request) if request.can_read_body else {}
        uaid = data.get("uaid") if isinstance(data, dict) else None
        if uaid is not None and not isinstance(uaid, str):
            return _json_error(400, "uaid must be a string")
        if uaid is not None and uaid not in self.sim.clients():
            return _json_error(404, "no such WebSocket client")
        return web.json_response(await self.mozilla.forget(uaid))

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
    return application(Routes(sim))


def application(routes: Routes) -> web.Application:
    """The aiohttp application of ``routes`` (the server keeps ``routes`` for its fast path)."""
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    app.on_shutdown.append(routes.mozilla.close_sockets)
    app.router.add_post("/wpush/{token}", routes.push)
    app.router.add_delete("/wpush/{token}", routes.delete_subscription)
    app.router.add_get("/", routes.mozilla.index)
    app.router.add_post("/_sim/subscriptions", routes.mint)
    app.router.add_get("/_sim/rules", routes.list_rules)
    app.router.add_post("/_sim/rules", routes.add_rules)
    app.router.add_delete("/_sim/rules", routes.clear_rules)
    app.router.add_delete("/_sim/rules/{id}", routes.remove_rule)
    app.router.add_get("/_sim/stats", routes.stats)
    app.router.add_get("/_sim/received", routes.received)
    app.router.add_post("/_sim/reset", routes.reset)
    app.router.add_post("/_sim/ws/forget", routes.forget_clients)
    return app
