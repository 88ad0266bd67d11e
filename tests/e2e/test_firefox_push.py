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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from notifier.campaigns import CampaignStore
from notifier.context import Context
from notifier_simulator import SimulatorServer
from tests.conftest import Workers, browser_or_skip, wait_for
from tests.e2e.bidi import BiDi, Firefox, launch_firefox
from tests.e2e.conftest import LiveServer
from tests.workers.test_fanout import create

pytestmark = pytest.mark.browser

FIREFOX = "/usr/bin/firefox-esr"


def firefox_prefs(push_server_url: str) -> dict[str, bool | int | str]:
    """Prefs for a headless, offline, automated profile whose push service is the simulator."""
    return {
        # Push through the simulator's WebSocket (ws:// needs the testing pref; PushService.sys.mjs).
        "dom.push.enabled": True,
        "dom.push.serverURL": push_server_url,
        "dom.push.testing.allowInsecureServerURL": True,
        # Needed although true is the default: the Remote Agent's recommended prefs (RecommendedPreferences
        # .sys.mjs) set it to false at start-up unless the profile has a user value, which user.js gives.
        "dom.push.connection.enabled": True,
        "dom.push.requestTimeout": 20_000,
        "dom.push.loglevel": "Debug",
        # Notifications: granted for every site; shown by Firefox's own alert window, not a desktop daemon.
        "permissions.default.desktop-notification": 1,
        "alerts.useSystemBackend": False,
        "dom.webnotifications.requireuserinteraction": False,
        # Service workers on http://127.0.0.1 (potentially trustworthy anyway), with no idle kill mid-test.
        "dom.serviceWorkers.enabled": True,
        "dom.serviceWorkers.testing.enabled": True,
        # BiDi only (no CDP); the Remote Agent's recommended automation prefs stay on, under ours.
        "remote.active-protocols": 1,
        # A quiet, offline profile.
        "browser.shell.checkDefaultBrowser": False,
        "browser.startup.homepage_override.mstone": "ignore",
        "browser.startup.page": 0,
        "browser.aboutwelcome.enabled": False,
        "datareporting.policy.dataSubmissionEnabled": False,
        "datareporting.healthreport.uploadEnabled": False,
        "toolkit.telemetry.reportingpolicy.firstRun": False,
        "toolkit.telemetry.enabled": False,
        "app.update.enabled": False,
        "app.update.disabledForTesting": True,
        "app.normandy.enabled": False,
        "browser.safebrowsing.malware.enabled": False,
        "browser.safebrowsing.phishing.enabled": False,
        "browser.search.update": False,
        "extensions.update.enabled": False,
        "network.proxy.type": 0,
        "network.manage-offline-status": False,
        "network.connectivity-service.enabled": False,
        "network.captive-portal-service.enabled": False,
        "services.settings.server": "http://127.0.0.1:1/",
        # Chrome console messages (PushService logs) to stdout, captured in the log file.
        "devtools.console.stdout.chrome": True,
        "devtools.console.stdout.content": True,
    }


@pytest.fixture
def firefox(simulator: SimulatorServer, tmp_path: Path) -> Iterator[Firefox]:
    """Headless Firefox ESR whose push service is the simulator; killed and its profile deleted after."""
    binary = browser_or_skip(FIREFOX)
    browser = launch_firefox(binary, firefox_prefs(simulator.ws_url), log=tmp_path / "firefox.log")
    try:
        yield browser
    finally:
        browser.stop(keep_log=True)


@pytest.fixture
def bidi(firefox: Firefox) -> Iterator[BiDi]:
    """A BiDi session on that Firefox, with the page console collected."""
    try:
        client = BiDi.connect(firefox.ws_url)
    except BaseException:
        print(firefox.output_tail(120))
        raise
    try:
        client.new_session({"alwaysMatch": {"acceptInsecureCerts": True}})
        client.subscribe("log.entryAdded")
    except BaseException:
        print(firefox.output_tail(120))
        client.close()
        raise
    try:
        yield client
    finally:
        client.close()


@contextmanager
def diagnosed(firefox: Firefox, bidi: BiDi, simulator: SimulatorServer, workers: Workers) -> Iterator[None]:
    """On failure, print what Firefox, the page, the simulator and the worker said (CI shows stdout then)."""
    try:
        yield
    except BaseException:
        print("---- Firefox output (tail) ----")
        print(firefox.output_tail(120))
        print("---- page console ----")
        print("\n".join(bidi.console()[-40:]))
        print("---- simulator stats ----")
        print(simulator.stats())
        print("---- worker log (tail) ----")
        print(workers.logs()[-3000:])
        raise


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
