"""Mozilla's push protocol over WebSocket (what Firefox speaks to ``dom.push.serverURL``).

Firefox (``PushServiceWebSocket.sys.mjs``) opens one WebSocket with the
subprotocol ``push-notification``, says ``hello`` with its ``uaid``, and
``register``/``unregister``s channels; the service pushes ``notification``
messages down the socket, and Firefox ``ack``s each one. Notifications for a
client that is not connected wait until its next ``hello``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from notifier.crypto import b64url_decode
from notifier_simulator.state import Simulator

#: The WebSocket subprotocol Firefox asks for (``PushServiceWebSocket.sys.mjs``).
WS_PROTOCOL = "push-notification"


class MozillaProtocol:
    """The WebSocket side of one :class:`Simulator`; clients are tracked by uaid."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.connections: dict[str, web.WebSocketResponse] = {}
        self.sockets: set[web.WebSocketResponse] = set()

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

    async def send(self, uaid: str, notification: Any) -> None:
        """Push ``notification`` down the client's socket; kept pending when it is not connected."""
        ws = self.connections.get(uaid)
        if ws is None or ws.closed:
            return  # kept pending (when TTL > 0) and delivered after the next hello
        with contextlib.suppress(ConnectionError):
            await ws.send_json(notification)

    async def forget(self, uaid: str | None = None) -> dict[str, Any]:
        """Forget a client (every client when ``uaid`` is None) and close its socket so it reconnects.

        Firefox reconnects after its backoff (``dom.push.retryBaseInterval``), says ``hello`` with the old
        uaid, is answered with a new one, drops its subscriptions and fires ``pushsubscriptionchange``
        with each old subscription (and no new one: the service worker subscribes again).
        """
        uaids = [uaid] if uaid is not None else self.sim.clients()
        dropped: dict[str, list[str]] = {}
        for one in uaids:
            dropped[one] = self.sim.forget_client(one)
            ws = self.connections.pop(one, None)
            if ws is not None and not ws.closed:
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"user agent id reset")
        return {"forgotten": dropped}

    async def close_sockets(self, app: web.Application) -> None:
        """On shutdown, close WebSocket clients (they would otherwise hold shutdown up)."""
        for ws in list(self.sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
