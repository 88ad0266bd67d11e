"""Declarative Web Push messages in Firefox ESR: every declarative message renders, with or without ``mutable``.

Safari 18.4+ shows a declarative message by itself. Firefox ESR 153 has no native declarative push (no
``dom.push.declarative.enabled`` pref: setting one in a profile has no default value behind it and changes
nothing), so it hands every message to the service worker, as Chrome does: the worker must render the
declarative fields whether ``mutable`` is set (notifier's own messages, which also report ``shown``) or not
(a declarative message as another sender writes it, which Safari would show by itself).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import pytest

from notifier.campaigns import (
    CampaignInput,
    CampaignStore,
    campaign_payload_prefix,
    message_payload,
    receipt_token,
)
from notifier.context import Context
from notifier.sending import Message, Sender
from notifier_simulator import SimulatorServer
from tests.e2e.bidi import BiDi, Firefox, diagnosed
from tests.factories import LiveServer, Workers, wait_for

pytestmark = pytest.mark.browser

NOTIFICATIONS = """async () => {
  const registration = await navigator.serviceWorker.ready;
  return (await registration.getNotifications()).map((n) => ({
    title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url, actions: n.actions.map((a) => a.action),
  }));
}"""


def push(context: Context, endpoint: str, payload: bytes) -> int:
    """Send one message to the stored subscription of ``endpoint`` through the real sender."""
    sub = context.subscriptions.get_by_endpoint(endpoint)

    async def go() -> int:
        sender = Sender(context.settings, context.vapid, context.policy)
        try:
            outcomes, _ = await sender.send_all(
                [Message(sub.sid, sub.endpoint, sub.p256dh, sub.auth, payload, 600)]
            )
        finally:
            await sender.close()
        return outcomes[0].status

    return asyncio.run(go())


def test_firefox_renders_declarative_messages_mutable_or_not_through_the_worker(
    context: Context,
    live_server: LiveServer,
    simulator: SimulatorServer,
    workers: Workers,
    firefox: Firefox,
    bidi: BiDi,
) -> None:
    with diagnosed(firefox, bidi, simulator, workers):
        tab = bidi.top_context()
        bidi.navigate(tab, live_server.url + "/langganan")
        wait_for(lambda: context.subscriptions.count() == 1, timeout=20, message="the subscription")
        [sub] = [
            s for page in context.subscriptions.scan_ids() for s in context.subscriptions.load_many(page)
        ]

        # Not mutable, as another sender writes it: shown as declared (navigate, body, tag) exactly once.
        plain = {
            "web_push": 8030,
            "notification": {
                "title": f"Tanpa service worker {secrets.token_hex(3)}",
                "body": "Ditampilkan oleh browser sendiri.",
                "navigate": "https://kabarkini.example/deklaratif",
                "tag": "declared",
            },
        }
        assert push(context, sub.endpoint, json.dumps(plain).encode()) == 201
        shown: list[dict[str, Any]] = wait_for(
            lambda: [n for n in bidi.call_function(tab, NOTIFICATIONS) if n["tag"] == "declared"],
            timeout=20, interval=0.25, message="the browser's own notification",
        )  # fmt: skip
        assert len(shown) == 1 and shown[0]["title"] == plain["notification"]["title"]
        assert shown[0]["body"] == "Ditampilkan oleh browser sendiri."
        assert shown[0]["url"] == "https://kabarkini.example/deklaratif"

        # notifier's message (mutable): the worker renders it (its "Read" action) and reports it shown.
        store = CampaignStore(context.redis, context.keys)
        cid = store.create(CampaignInput(title="Mutable", body="b", url="https://kabarkini.example/m"))
        prefix = campaign_payload_prefix(
            "Dengan service worker", "b", "https://kabarkini.example/m", "", "", "mut", cid
        )
        payload = message_payload(
            prefix, sub.sid, receipt_token(context.receipt_key, cid, sub.sid), 1767225600000
        )
        assert push(context, sub.endpoint, payload) == 201
        worker_shown = wait_for(
            lambda: [n for n in bidi.call_function(tab, NOTIFICATIONS) if n["tag"] == "mut"],
            timeout=20, interval=0.25, message="the worker's notification",
        )  # fmt: skip
        assert worker_shown[0]["title"] == "Dengan service worker" and worker_shown[0]["actions"] == ["read"]
        wait_for(lambda: store.get(cid).counters["shown"] == 1, timeout=10, message="the shown receipt")
