"""The embed on a publisher's own site in Debian's Firefox ESR, with a real push subscription end to end.

Firefox is driven over WebDriver BiDi and its push service is the simulator's WebSocket side, as in
test_firefox_push.py. The page is the publisher's static article on its own plain HTTP server, with the
documented tag and the one-line /notifier-sw.js; notifier serves two sites from another port, and the
publisher's site signs with its own VAPID key. Firefox subscribes through the widget on the
publisher's origin (notifications are granted by pref, so the widget subscribes on load), a real
worker sends a campaign of that site, Firefox decrypts it and the publisher-origin service worker
shows it. The notification is then clicked in Firefox's own alert window (reached in chrome scope with
system access): Firefox dispatches a trusted notificationclick, the worker opens the article in a new
tab, and the "shown" and "clicked" receipts are counted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis

from notifier.campaigns import CampaignStore, validate_campaign
from notifier.context import Context
from notifier.errors import NotFound
from notifier.settings import Settings
from notifier_simulator import SimulatorServer
from tests.e2e.bidi import BiDi, Firefox, diagnosed
from tests.e2e.publisher import Publisher
from tests.factories import LiveServer, Workers, wait_for, write_sites
from workers.jobs import launch

pytestmark = pytest.mark.browser

SUBSCRIPTION = """async () => {
  const registration = await navigator.serviceWorker.getRegistration("/");
  const subscription = registration && await registration.pushManager.getSubscription();
  return subscription ? { json: subscription.toJSON(), script: registration.active.scriptURL } : null;
}"""

NOTIFICATIONS = """async () => {
  const registration = await navigator.serviceWorker.ready;
  return (await registration.getNotifications()).map((n) => ({ title: n.title, url: n.data && n.data.url }));
}"""

#: In Firefox's alert window (chrome scope): the notification's title, then a click on it as a reader would.
CLICK_ALERT = """() => {
  const title = document.getElementById("alertTitleLabel");
  if (!title) { return null; }
  const text = title.getAttribute("value");
  document.getElementById("alertBox").click();
  return text;
}"""


def chrome_contexts(bidi: BiDi) -> list[dict[str, Any]]:
    """Firefox's own windows (system access), flattened."""
    out: list[dict[str, Any]] = []

    def walk(contexts: list[dict[str, Any]]) -> None:
        for context in contexts:
            out.append(context)
            walk(context.get("children") or [])

    walk(bidi.command("browsingContext.getTree", {"moz:scope": "chrome"})["contexts"])
    return out


def tabs(bidi: BiDi) -> list[str]:
    """URLs of the open tabs."""
    return [c["url"] for c in bidi.command("browsingContext.getTree", {})["contexts"]]


def test_a_real_subscription_through_the_embed_gets_the_sites_campaign_and_its_click(
    publisher: Publisher,
    settings_env: dict[str, str],
    r: redis.Redis,
    tmp_path: Path,
    start_live_server: Any,
    simulator: SimulatorServer,
    firefox: Firefox,
    bidi: BiDi,
) -> None:
    document = {
        "default": "warta",
        "sites": [
            {"id": "warta", "name": "Warta Timur", "origins": ["https://warta.example"], "lang": "en"},
            {"id": "kota", "name": "Warta Kota Lama", "origins": [publisher.origin], "lang": "id",
             "vapid_key_file": "kota-vapid.pem"},
        ],
    }  # fmt: skip
    env = {**settings_env, "NOTIFIER_SITES_FILE": str(write_sites(tmp_path / "sites", document))}
    context = Context.build(Settings.from_env(env), client=r)
    notifier: LiveServer = start_live_server(context)
    workers = Workers(env, tmp_path)
    try:
        with diagnosed(firefox, bidi, simulator, workers):
            started = time.monotonic()
            workers.start(1)
            page_url = publisher.publish(notifier.url, "kota")
            article = publisher.publish(notifier.url, "kota", page="pasar-beras.html")
            tab = bidi.top_context()
            bidi.navigate(tab, page_url)
            assert bidi.evaluate(tab, "Notification.permission") == "granted"

            # Granted and not subscribed: the widget subscribes on load, on the publisher's origin.
            store = context.subscriptions
            wait_for(lambda: store.count(site="kota") == 1, timeout=20, message="the subscription in Redis")
            got = bidi.call_function(tab, SUBSCRIPTION)
            endpoint = got["json"]["endpoint"]
            assert endpoint.startswith(simulator.origin + "/wpush/")
            assert got["script"] == publisher.origin + "/notifier-sw.js"
            sub = store.get_by_endpoint(endpoint, site="kota")
            assert sub.browser == "firefox" and sub.key_id == context.vapid_for("kota").key_id
            assert store.count_by_site(["warta", "kota"]) == {"warta": 0, "kota": 1}
            with pytest.raises(NotFound):
                store.get_by_endpoint(endpoint, site="warta")
            state = "document.querySelector('[data-notifier-widget]').getAttribute('data-state')"
            wait_for(lambda: bidi.evaluate(tab, state) == "subscribed", timeout=10, message="'subscribed'")
            subscribed = time.monotonic()

            # A campaign of the publisher's site, signed with its own key, decrypted by Firefox.
            title = "Harga beras turun lagi di Cipinang"
            item = validate_campaign(
                {
                    "title": title,
                    "body": "Rp300 per kilogram dalam sepekan.",
                    "url": article,
                    "breaking": True,
                },
                topics=context.site("kota").topics,
                site="kota",
            )
            campaigns = CampaignStore(r, context.keys)
            cid = campaigns.create(item)
            launch(context.raw_redis, cid, None)
            done = wait_for(
                lambda: (c := campaigns.get(cid)).state == "done" and c, timeout=30, message="done"
            )
            assert done.counters["sent"] == 1 and done.counters["total"] == 1
            received = simulator.received(endpoint)
            assert len(received) == 1 and received[0].forwarded
            assert received[0].vapid_key.rstrip("=") == context.vapid_for("kota").public_key_b64.rstrip("=")
            shown = wait_for(
                lambda: [n for n in bidi.call_function(tab, NOTIFICATIONS) if n["title"] == title],
                timeout=20, interval=0.25, message="the notification in getNotifications()",
            )  # fmt: skip
            assert shown[0]["url"] == article
            wait_for(
                lambda: campaigns.get(cid).counters["shown"] == 1, timeout=15, message="the shown receipt"
            )
            notified = time.monotonic()

            # The reader clicks the notification in Firefox's alert window: the article opens in a new tab.
            alert = wait_for(
                lambda: next((c for c in chrome_contexts(bidi) if c["url"].endswith("/alerts/alert.xhtml")), None),
                timeout=10, message="Firefox's notification window",
            )  # fmt: skip
            assert bidi.call_function(alert["context"], CLICK_ALERT) == title
            wait_for(lambda: article in tabs(bidi), timeout=15, message="the article opened by the click")
            wait_for(lambda: campaigns.get(cid).counters["clicked"] == 1, timeout=15, message="the click")
    finally:
        workers.stop()
    print(
        f"firefox embed chain: page to stored subscription {subscribed - started:.1f} s, "
        f"campaign to notification {notified - subscribed:.1f} s"
    )
