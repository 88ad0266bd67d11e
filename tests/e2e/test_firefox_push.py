"""The whole push chain in Debian's Firefox ESR, nothing stubbed in the browser.

Firefox is driven over its built-in WebDriver BiDi (``tests/e2e/bidi.py``); its push service is the
simulator's WebSocket side (``dom.push.serverURL``). The project's own subscribe page subscribes on load
(permission pre-granted by pref), Firefox registers a channel over the WebSocket and the page stores the
endpoint through the API; a real worker sends a campaign to that endpoint, the simulator forwards the
encrypted message over the WebSocket, Firefox decrypts it (RFC 8291) and the service worker shows it.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from typing import Any

import pytest

from notifier.campaigns import CampaignStore
from notifier.context import Context
from notifier_simulator import SimulatorServer
from tests.e2e.bidi import BiDi, Firefox, diagnosed
from tests.factories import LiveServer, Workers, create, wait_for

pytestmark = pytest.mark.browser

NOTIFICATIONS = """async () => {
  const registration = await navigator.serviceWorker.ready;
  const shown = await registration.getNotifications();
  return shown.map((n) => ({
    title: n.title, body: n.body, url: n.data && n.data.url, cid: n.data && n.data.cid,
    tag: n.tag, timestamp: n.timestamp, actions: n.actions.map((a) => a.action),
  }));
}"""

SUBSCRIPTION = """async () => {
  const registration = await navigator.serviceWorker.getRegistration("/");
  const subscription = registration && await registration.pushManager.getSubscription();
  return subscription ? subscription.toJSON() : null;
}"""


def test_firefox_subscribes_through_the_simulator_and_shows_the_campaign(
    context: Context,
    live_server: LiveServer,
    simulator: SimulatorServer,
    workers: Workers,
    firefox: Firefox,
    bidi: BiDi,
) -> None:
    started = time.monotonic()
    with diagnosed(firefox, bidi, simulator, workers):
        # The worker boots while Firefox subscribes.
        workers.start(1)
        tab = bidi.top_context()
        bidi.navigate(tab, live_server.url + "/langganan")
        assert bidi.evaluate(tab, "Notification.permission") == "granted"

        # Permission is granted and there is no subscription: the page subscribes on load and stores it.
        wait_for(
            lambda: context.subscriptions.count() == 1, timeout=20, message="the page's subscription in Redis"
        )
        subscription: dict[str, Any] = bidi.call_function(tab, SUBSCRIPTION)
        endpoint = subscription["endpoint"]
        assert endpoint.startswith(simulator.origin + "/wpush/")
        stored = context.subscriptions.get_by_endpoint(endpoint)
        assert stored.endpoint == endpoint
        assert stored.p256dh == subscription["keys"]["p256dh"]
        assert stored.auth == subscription["keys"]["auth"]
        assert stored.browser == "firefox"
        wait_for(lambda: bidi.evaluate(tab, "document.getElementById('optin').dataset.state") == "subscribed",
                 timeout=10, message="the widget to show 'subscribed'")  # fmt: skip
        assert simulator.stats()["ws_registered"] == 1
        # Firefox holds one WebSocket open (only the HTTP view of the stats counts connections).
        with urllib.request.urlopen(simulator.url + "/_sim/stats", timeout=5) as response:  # noqa: S310
            assert json.load(response)["ws_connections"] == 1

        subscribed = time.monotonic()
        title = f"Firefox ESR menerima kabar {secrets.token_hex(4)}"
        url = f"https://kabarkini.example/nasional/firefox-{secrets.token_hex(4)}"
        cid = create(context, title=title, url=url, breaking=True)
        store = CampaignStore(context.redis, context.keys)
        campaign = wait_for(
            lambda: (c := store.get(cid)).state == "done" and c, timeout=30, message="campaign done"
        )
        assert campaign.counters["sent"] == 1
        assert campaign.counters["total"] == 1

        # Firefox decrypts the forwarded message and the service worker shows the notification.
        shown = wait_for(
            lambda: [n for n in bidi.call_function(tab, NOTIFICATIONS) if n["title"] == title],
            timeout=20, interval=0.25, message="the notification in getNotifications()",
        )  # fmt: skip
        assert len(shown) == 1
        notified = time.monotonic()
        assert shown[0]["url"] == url
        assert shown[0]["body"] == "BMKG: tidak berpotensi tsunami."
        assert shown[0]["cid"] == cid
        # Rendered from the Declarative Web Push message by the service worker.
        assert shown[0]["tag"] == campaign.story and shown[0]["actions"] == ["read"]
        # (Firefox does not expose Notification.timestamp; Chromium's test checks it.)
        assert shown[0]["timestamp"] is None

        # The simulator took the message over HTTP and forwarded it over the WebSocket, still encrypted
        # (only Firefox holds the key); Firefox acknowledged that version, which empties the pending queue.
        # (The simulator counts an ack whatever its code, so the shown title above is the decryption proof;
        # a nack would mean the service worker's push handler failed, e.g. 302 when showNotification rejects.)
        received = simulator.received(endpoint)
        assert len(received) == 1
        assert received[0].forwarded and not received[0].decrypted and received[0].payload is None
        assert received[0].urgency == "high"
        wait_for(lambda: simulator.stats()["ws_acked"] == 1, timeout=10, message="Firefox's ack")
        stats = simulator.stats()
        assert stats["ws_pending"] == 0
        assert stats["ws_nacked"] == 0
        # The service worker's "shown" receipt reached the app.
        wait_for(lambda: store.get(cid).counters["shown"] == 1, timeout=10, message="the shown receipt")
    print(
        f"firefox push chain: page to stored subscription {subscribed - started:.1f} s, "
        f"campaign to notification {notified - subscribed:.1f} s"
    )


def test_pushsubscriptionchange_in_firefox_replaces_the_subscription_in_place(
    context: Context,
    live_server: LiveServer,
    simulator: SimulatorServer,
    workers: Workers,
    firefox: Firefox,
    bidi: BiDi,
) -> None:
    """The push server forgets Firefox's user agent id: Firefox fires pushsubscriptionchange, for real.

    What the Mozilla protocol allows (PushServiceWebSocket.sys.mjs, _handleHelloReply): when the server's
    ``hello`` answer carries a uaid other than the one Firefox sent, Firefox drops every subscription it
    holds and notifies each service worker with the old subscription (PushService.sys.mjs,
    dropUnexpiredRegistrations). The simulator forgets the uaid and closes the socket; Firefox reconnects,
    is given a new uaid, and our worker subscribes again and posts the new subscription as replacing the
    old one: the same reader (same id, topics, site), one subscription, and the next campaign reaches it once.
    """
    with diagnosed(firefox, bidi, simulator, workers):
        workers.start(1)
        tab = bidi.top_context()
        bidi.navigate(tab, live_server.url + "/langganan")
        wait_for(lambda: context.subscriptions.count() == 1, timeout=20, message="the page's subscription")
        first: dict[str, Any] = bidi.call_function(tab, SUBSCRIPTION)
        stored = context.subscriptions.get_by_endpoint(first["endpoint"])
        # The reader's own choice of topics, which must survive the change.
        context.subscriptions.set_topics(first["endpoint"], ["nasional", "teknologi"])
        [uaid] = simulator.ws_clients()
        # Navigate away: only the service worker is left to react (no page re-posts anything).
        bidi.navigate(tab, "about:blank")

        forgotten = simulator.forget_ws_clients(uaid)
        assert forgotten["forgotten"] == {uaid: [first["endpoint"]]}
        # Firefox reconnects, gets a new uaid, drops the subscription; the worker subscribes again.
        moved = wait_for(
            lambda: (sub := context.subscriptions.get(stored.sid)).endpoint != first["endpoint"] and sub,
            timeout=30,
            interval=0.2,
            message="the worker's replacement subscription in Redis",
        )
        assert simulator.ws_clients() != [uaid] and len(simulator.ws_clients()) == 1
        assert moved.sid == stored.sid  # replaced in place: the worker named the old endpoint
        assert moved.topics == ("nasional", "teknologi")
        assert (
            context.subscriptions.site_of(moved.sid) == context.subscriptions.site_of(stored.sid) == "default"
        )
        assert moved.endpoint.startswith(simulator.origin + "/wpush/")
        assert context.subscriptions.count() == 1  # never both
        assert context.subscriptions.sid_of(first["endpoint"]) is None
        bidi.navigate(tab, live_server.url + "/preferensi")
        now: dict[str, Any] = bidi.call_function(tab, SUBSCRIPTION)
        assert now["endpoint"] == moved.endpoint  # what the browser holds is what the server has
        assert moved.p256dh == now["keys"]["p256dh"] and moved.auth == now["keys"]["auth"]

        title = f"Sesudah pushsubscriptionchange {secrets.token_hex(4)}"
        cid = create(context, title=title, topics=["nasional"], breaking=False)
        store = CampaignStore(context.redis, context.keys)
        campaign = wait_for(lambda: (c := store.get(cid)).state == "done" and c, timeout=30, message="done")
        assert campaign.counters["total"] == 1 and campaign.counters["sent"] == 1
        assert [r.endpoint for r in simulator.received()] == [moved.endpoint]
        shown = wait_for(
            lambda: [n for n in bidi.call_function(tab, NOTIFICATIONS) if n["title"] == title],
            timeout=20, interval=0.25, message="the notification",
        )  # fmt: skip
        assert len(shown) == 1
        wait_for(lambda: store.get(cid).counters["shown"] == 1, timeout=10, message="the shown receipt")


KEY_OF_SUBSCRIPTION = """async () => {
  const registration = await navigator.serviceWorker.getRegistration("/");
  const subscription = registration && await registration.pushManager.getSubscription();
  if (!subscription) { return null; }
  const bytes = new Uint8Array(subscription.options.applicationServerKey);
  let raw = "";
  bytes.forEach((b) => { raw += String.fromCharCode(b); });
  return { endpoint: subscription.endpoint,
           key: btoa(raw).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "") };
}"""


def test_a_rotated_vapid_key_moves_the_reader_on_the_next_visit_and_a_campaign_reaches_it_once(
    context: Context,
    live_server: LiveServer,
    simulator: SimulatorServer,
    workers: Workers,
    firefox: Firefox,
    bidi: BiDi,
    settings_env: dict[str, str],
) -> None:
    """Subscribe with key 1, rotate, revisit: the subscription carries key 2, and a campaign reaches it once."""
    from click.testing import CliRunner

    from notifier_cli import main

    with diagnosed(firefox, bidi, simulator, workers):
        workers.start(1)
        tab = bidi.top_context()
        bidi.navigate(tab, live_server.url + "/langganan")
        wait_for(lambda: context.subscriptions.count() == 1, timeout=20, message="the page's subscription")
        first = bidi.call_function(tab, KEY_OF_SUBSCRIPTION)
        key1 = context.vapid_for("default")
        assert first["key"] == key1.public_key_b64.rstrip("=")
        stored = context.subscriptions.get_by_endpoint(first["endpoint"])
        assert stored.key_id == key1.key_id

        rotated = CliRunner().invoke(main, ["vapid", "rotate"], env=settings_env)
        assert rotated.exit_code == 0, rotated.output
        context.keyring.reload()  # the site's process: within 5 s by itself
        key2 = context.vapid_for("default")
        assert key2.key_id != key1.key_id

        # The next visit: the page sees the browser bound to a key the site no longer uses, moves it.
        bidi.navigate(tab, live_server.url + "/")
        moved = wait_for(
            lambda: (sub := context.subscriptions.get(stored.sid)).key_id == key2.key_id and sub,
            timeout=20,
            interval=0.2,
            message="the subscription moved to key 2",
        )
        now = bidi.call_function(tab, KEY_OF_SUBSCRIPTION)
        assert now["key"] == key2.public_key_b64.rstrip("=")  # what Firefox holds ...
        assert moved.endpoint == now["endpoint"] != first["endpoint"]  # ... is what the server has
        assert context.subscriptions.count() == 1  # one reader, never two
        assert context.subscriptions.count_by_key([key1.key_id, key2.key_id]) == {
            key1.key_id: 0,
            key2.key_id: 1,
        }

        title = f"Dengan kunci baru {secrets.token_hex(4)}"
        cid = create(context, title=title)
        store = CampaignStore(context.redis, context.keys)
        campaign = wait_for(lambda: (c := store.get(cid)).state == "done" and c, timeout=30, message="done")
        assert campaign.counters["total"] == 1 and campaign.counters["sent"] == 1
        [received] = [r for r in simulator.received() if r.time >= campaign.created]
        assert received.endpoint == moved.endpoint and received.vapid_key == key2.public_key_b64
        shown = wait_for(
            lambda: [n for n in bidi.call_function(tab, NOTIFICATIONS) if n["title"] == title],
            timeout=20, interval=0.25, message="the notification",
        )  # fmt: skip
        assert len(shown) == 1
        # The old key holds nobody now: it can be retired without --force.
        retired = CliRunner().invoke(main, ["vapid", "retire", key1.key_id], env=settings_env)
        assert retired.exit_code == 0, retired.output
