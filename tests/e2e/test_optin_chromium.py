"""The opt-in flow in Debian's Chromium against the live app and the test Redis.

What the browser cannot do offline or under automation is replaced at the narrowest point, in the page:

- ``PushManager.prototype.subscribe``/``getSubscription`` return a browser-shaped subscription (an FCM
  endpoint and real P-256 keys made here), since Chromium needs Google's push service to make a real one;
- ``Notification.requestPermission`` stands for the native prompt: it counts its calls and resolves with
  the reader's answer, which the test gives through CDP ``Browser.setPermission`` (headless Chromium
  would otherwise dismiss the prompt at once).

Pushes are real push events (CDP ``ServiceWorker.deliverPushMessage``) into the real service worker.
No browser can click a notification under automation, so the click test dispatches a
``NotificationEvent`` carrying the real notification inside the service worker, with
``clients.openWindow`` / ``WindowClient.focus`` replaced by recorders there (Chromium only lets a worker
open or focus windows during a trusted click).
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest
import redis

from notifier.campaigns import campaign_payload_prefix, message_payload
from notifier.context import Context
from notifier.declarative import check_message
from notifier.errors import NotFound
from notifier.subscriptions import SubscriptionInput
from tests.e2e.chromium import (
    CLICK_IN_WORKER,
    browser_subscription,
    cdp_for,
    notifications,
    prepare,
    record_events,
    registration_id,
    set_permission,
    wait_until,
)

pytestmark = pytest.mark.browser

FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAMSUNG_UA = (
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36"
)
IPHONE_CHROME_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1"
)
INSTAGRAM_ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 14; SM-S921B Build/UP1A; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36 Instagram 334.0.0.42.95 Android"
)
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def chromium_id(launch_chromium):  # type: ignore[no-untyped-def]
    """Chromium set to Indonesian (its Accept-Language picks the page language)."""
    return launch_chromium(locale="id-ID")


def stored(r: redis.Redis, context: Context, subscription: dict[str, Any]) -> dict[str, str]:
    """The stored subscription's fields by their short names (empty when absent)."""
    try:
        sub = context.subscriptions.get_by_endpoint(subscription["endpoint"])
    except NotFound:
        return {}
    return {
        "e": sub.endpoint, "p": sub.p256dh, "a": sub.auth, "t": ",".join(sub.topics), "l": sub.lang,
        "b": sub.browser, "k": sub.key_id, "s": str(sub.seen), "c": str(sub.created), "id": sub.sid,
    }  # fmt: skip


def mark_seen_long_ago(context: Context, subscription: dict[str, Any]) -> None:
    """Store the subscription as last seen at the epoch, so a later re-post shows as a newer time."""
    sub = context.subscriptions.get_by_endpoint(subscription["endpoint"])
    item = SubscriptionInput(sub.endpoint, sub.p256dh, sub.auth, sub.topics, sub.lang, sub.expiration_time)
    context.subscriptions.upsert(item, browser=sub.browser, key_id=sub.key_id, now=1)


def state(page: Any) -> str:
    return str(page.get_attribute("#optin", "data-state"))


def wait_state(page: Any, name: str) -> None:
    page.wait_for_selector(f'#optin[data-state="{name}"]')


def subscribed_page(
    browser_context: Any, live_server: Any, r: redis.Redis, subscription: dict[str, Any]
) -> Any:
    """A page whose browser already allowed notifications: it subscribes on load (no prompt needed)."""
    page = prepare(browser_context, subscription)
    set_permission(browser_context, page, live_server.origin, "granted")
    page.goto(live_server.url + "/")
    wait_state(page, "subscribed")
    wait_until(lambda: stored(r, live_server.context, subscription), what="the subscription in Redis")
    return page


def test_soft_prompt_first_then_permission_after_the_click_then_stored_with_topics(
    live_server, chromium_id, r, context
) -> None:  # type: ignore[no-untyped-def]
    subscription = browser_subscription()
    page = prepare(chromium_id, subscription)
    page.goto(live_server.url + "/langganan")
    wait_state(page, "default")

    # Nothing asked on load: the in-page prompt shows and the browser's own prompt was never requested.
    assert page.evaluate("Notification.permission") == "default"
    assert page.evaluate("window.__permissionRequests") == 0
    assert page.get_by_role("button", name="Aktifkan notifikasi").is_visible()

    page.get_by_label("Berita terkini", exact=True).uncheck()
    page.get_by_label("Nasional", exact=True).check()
    page.get_by_label("Teknologi", exact=True).check()
    page.get_by_role("button", name="Aktifkan notifikasi").click()
    wait_until(lambda: page.evaluate("window.__permissionRequests") == 1, what="the permission request")
    assert state(page) == "working"
    assert not stored(r, context, subscription)

    set_permission(chromium_id, page, live_server.origin, "granted")  # the reader chooses Allow
    wait_state(page, "subscribed")
    data = wait_until(lambda: stored(r, context, subscription), what="the subscription in Redis")
    assert data["e"] == subscription["endpoint"]
    assert data["p"] == subscription["keys"]["p256dh"]
    assert data["t"] == "nasional,teknologi"
    assert data["l"] == "id"
    assert data["b"] == "chrome-desktop"
    assert data["k"] == context.vapid.key_id
    assert page.evaluate("window.__permissionRequests") == 1

    # Every later visit re-posts the subscription (the server tracks "seen") and keeps its topics.
    mark_seen_long_ago(context, subscription)
    page.goto(live_server.url + "/artikel/harga-cabai-turun-jelang-panen?lang=en")
    wait_state(page, "subscribed")
    wait_until(
        lambda: int(stored(r, context, subscription).get("s") or 0) > 1, what="the re-posted subscription"
    )
    assert stored(r, context, subscription)["t"] == "nasional,teknologi"
    assert stored(r, context, subscription)["l"] == "en"


def test_denied_shows_this_browsers_steps_and_subscribes_the_moment_it_is_allowed(
    live_server, chromium_id, launch_chromium, r, context
) -> None:  # type: ignore[no-untyped-def]
    subscription = browser_subscription()
    page = prepare(chromium_id, subscription)
    set_permission(chromium_id, page, live_server.origin, "denied")
    page.goto(live_server.url + "/langganan")
    wait_state(page, "denied")

    steps = page.locator('.browser-steps[data-browser="chrome-desktop"]')
    assert steps.is_visible()
    assert "Langkah untuk Chrome (komputer)" in steps.inner_text()
    assert live_server.origin in steps.inner_text()
    assert page.locator(".origin-main").inner_text() == live_server.origin
    assert page.locator(".browser-steps:visible").count() == 1

    # Alternatives are collapsed under "Cara lain", not numbered as steps.
    assert steps.locator("ol.steps > li").count() == 2
    assert not steps.locator("details.other-ways li").first.is_visible()

    button = page.get_by_role("button", name="Periksa lagi")
    button.click()
    page.wait_for_selector("#check-result:has-text('masih diblokir')")
    assert state(page) == "denied"
    # The answer appears right under the button the reader pressed, not far above it.
    below, pressed = page.locator("#check-result").bounding_box(), button.bounding_box()
    assert below and pressed and 0 <= below["y"] - (pressed["y"] + pressed["height"]) < 60

    # The reader flips the site to Allow in the browser's settings: no further click needed.
    set_permission(chromium_id, page, live_server.origin, "granted")
    wait_state(page, "subscribed")
    assert "tanpa perlu menekan apa pun" in page.locator("#optin-status").inner_text()
    data = wait_until(lambda: stored(r, context, subscription), what="the subscription in Redis")
    assert data["t"] == "breaking"

    # Another browser family gets its own steps (user agent override; same Chromium underneath).
    other = launch_chromium(user_agent=FIREFOX_UA)
    other_page = prepare(other, browser_subscription())
    set_permission(other, other_page, live_server.origin, "denied")
    other_page.goto(live_server.url + "/langganan?lang=en")
    wait_state(other_page, "denied")
    firefox = other_page.locator('.browser-steps[data-browser="firefox"]')
    assert firefox.is_visible()
    assert "Steps for Firefox" in firefox.inner_text()
    assert "crossed-out notification icon" in firefox.inner_text()
    assert "Privacy & Security" in (firefox.locator("details.other-ways").text_content() or "")
    assert live_server.origin in firefox.inner_text()
    assert other_page.locator("#browser-select").input_value() == "firefox"

    cdp_for(other, other_page).send("Emulation.setUserAgentOverride", {"userAgent": SAMSUNG_UA})
    other_page.reload()
    wait_state(other_page, "denied")
    samsung = other_page.locator('.browser-steps[data-browser="samsung"]')
    assert samsung.is_visible()
    assert "Sites and downloads" in samsung.inner_text()
    assert other_page.locator(".browser-steps:visible").count() == 1

    # The reader can pick another browser's steps by hand.
    other_page.get_by_label("Using another browser?").select_option("safari-macos")
    assert other_page.locator('.browser-steps[data-browser="safari-macos"]').is_visible()
    assert not samsung.is_visible()

    # Safari on an iPhone, not opened from the Home Screen: explain Add to Home Screen instead.
    cdp_for(other, other_page).send("Emulation.setUserAgentOverride", {"userAgent": IPHONE_UA})
    other_page.reload()
    wait_state(other_page, "ios")
    assert "Add to Home Screen" in other_page.locator('[data-panel="ios"]').inner_text()
    assert "Safari’s toolbar" in other_page.locator('[data-panel="ios"]').inner_text()

    # Chrome on an iPhone has its Share button in its own address bar, not Safari's toolbar.
    cdp_for(other, other_page).send("Emulation.setUserAgentOverride", {"userAgent": IPHONE_CHROME_UA})
    other_page.reload()
    wait_state(other_page, "ios")
    ios_text = other_page.locator('[data-panel="ios"]').inner_text()
    assert "Chrome’s address bar" in ios_text and "Safari’s toolbar" not in ios_text

    # Instagram's in-app browser on Android cannot show notifications: a way out to Chrome.
    cdp_for(other, other_page).send("Emulation.setUserAgentOverride", {"userAgent": INSTAGRAM_ANDROID_UA})
    other_page.reload()
    wait_state(other_page, "inapp")
    open_link = other_page.locator("#inapp-open")
    assert open_link.inner_text() == "Open in Chrome"
    href = open_link.get_attribute("href") or ""
    assert href.startswith("intent://127.0.0.1:") and "package=com.android.chrome" in href


def declarative_message(**notification: Any) -> dict[str, Any]:
    """The message notifier sends (built by the campaign's own functions), with ``notification`` fields set."""
    prefix = campaign_payload_prefix(
        "Harga cabai turun sepertiga",
        "Pasokan dari dataran tinggi mulai lancar.",
        "https://kabarkini.example/ekonomi/harga-cabai",
        "",
        "",
        "story-cabai",
        "c123",
    )
    message = json.loads(message_payload(prefix, "s456", "receipt-token", 1767225600123))
    message["notification"].update(notification)
    return check_message(message)


def push(cdp: Any, origin: str, reg_id: str, data: Any) -> None:
    """Deliver a real push event with ``data`` (JSON-encoded unless it is a string) to the worker."""
    text = data if isinstance(data, str) else json.dumps(data)
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": origin, "registrationId": reg_id, "data": text})


def test_push_shows_the_notification_and_reports_shown(live_server, chromium_id, r) -> None:  # type: ignore[no-untyped-def]
    events = record_events(chromium_id)
    page = subscribed_page(chromium_id, live_server, r, browser_subscription())
    cdp, reg_id = registration_id(chromium_id, page, live_server.origin)

    # The Declarative Web Push message every campaign sends: the worker renders it.
    message = declarative_message()
    push(cdp, live_server.origin, reg_id, message)
    shown = wait_until(lambda: notifications(page), what="the notification")
    assert len(shown) == 1
    note = shown[0]
    assert note["title"] == "Harga cabai turun sepertiga"
    assert note["body"] == "Pasokan dari dataran tinggi mulai lancar."
    assert note["tag"] == "story-cabai"
    assert note["renotify"] is True
    assert note["timestamp"] == 1767225600123
    assert note["data"]["url"] == "https://kabarkini.example/ekonomi/harga-cabai"
    assert note["data"]["cid"] == "c123"
    assert note["actions"] == ["read"]
    assert note["icon"].endswith("/static/icons/icon-192.png")
    wait_until(lambda: events, what="the shown receipt", page=page)
    assert events == [{"type": "shown", "cid": "c123", "sid": "s456", "rt": "receipt-token"}]

    # The flat payload of earlier releases (still queued at push services after an upgrade) also shows.
    legacy = {
        "title": "Bus listrik",
        "body": "Rute baru",
        "url": "/artikel/bus-listrik-rute-pesisir",
        "tag": "story-bus",
        "renotify": True,
        "cid": "c124",
        "sid": "s456",
        "rt": "receipt-token-2",
        "ts": 1767225600,
    }
    push(cdp, live_server.origin, reg_id, legacy)
    flat = wait_until(
        lambda: [n for n in notifications(page) if n["tag"] == "story-bus"], what="the flat payload's one"
    )[0]
    assert flat["title"] == "Bus listrik"
    assert flat["data"]["url"] == live_server.url + "/artikel/bus-listrik-rute-pesisir"
    assert flat["timestamp"] == 1767225600000
    wait_until(lambda: len(events) == 2, what="the second shown receipt", page=page)
    assert events[1]["cid"] == "c124"

    # A push the worker cannot read still shows something (userVisibleOnly), and reports nothing.
    for unreadable in ("not json", {"web_push": 8030, "notification": {"body": "no title"}}):
        push(cdp, live_server.origin, reg_id, unreadable)
    generic = wait_until(
        lambda: [n for n in notifications(page) if n["tag"] == "notifier-generic"], what="the generic one"
    )
    assert generic[0]["title"] == live_server.context.settings.site_name
    assert generic[0]["data"]["url"] == live_server.url + "/"
    page.wait_for_timeout(300)
    assert len(events) == 2


def test_a_declarative_message_with_its_own_actions_language_and_direction(
    live_server, chromium_id, r
) -> None:  # type: ignore[no-untyped-def]
    events = record_events(chromium_id)
    page = subscribed_page(chromium_id, live_server, r, browser_subscription())
    cdp, reg_id = registration_id(chromium_id, page, live_server.origin)
    worker = wait_until(lambda: chromium_id.service_workers, what="the service worker")[0]
    message = declarative_message(
        tag="story-live",
        lang="ar",
        dir="rtl",
        requireInteraction=True,
        icon="https://kabarkini.example/icon.png",
        image="https://kabarkini.example/cabai.jpg",
        actions=[
            {"action": "read", "title": "Baca", "navigate": "https://kabarkini.example/ekonomi/harga-cabai"},
            {"action": "live", "title": "Siaran langsung", "navigate": "https://kabarkini.example/live"},
        ],
    )
    push(cdp, live_server.origin, reg_id, message)
    note = wait_until(lambda: notifications(page), what="the notification")[0]
    assert note["actions"] == ["read", "live"]
    assert note["lang"] == "ar" and note["dir"] == "rtl"
    assert note["requireInteraction"] is True
    assert note["icon"] == "https://kabarkini.example/icon.png"
    assert note["image"] == "https://kabarkini.example/cabai.jpg"
    # Each action opens its own page; the click receipt follows.
    result = worker.evaluate(CLICK_IN_WORKER.replace('action: "read"', 'action: "live"'), "story-live")
    assert result == {"opened": ["https://kabarkini.example/live"], "focused": [], "left": 0}
    wait_until(lambda: any(e.get("type") == "clicked" for e in events), what="the clicked receipt", page=page)


def test_a_refused_receipt_is_retried_with_backoff_then_kept_for_the_next_event(  # type: ignore[no-untyped-def]
    live_server, chromium_id, r, monkeypatch
) -> None:
    from web import serviceworker

    # A short retry window, so the outbox path shows within the test.
    monkeypatch.setattr(serviceworker, "RECEIPT_RETRY_SECONDS", 6)
    answers = {"mode": "429"}
    seen: list[tuple[float, str, dict[str, Any]]] = []

    def handle(route: Any) -> None:
        body = json.loads(route.request.post_data or "{}")
        seen.append((time.monotonic(), answers["mode"], body))
        if answers["mode"] == "429":
            answers["mode"] = "down"  # one 429, then the network fails
            route.fulfill(status=429, headers={"Retry-After": "1"}, body="{}")
        elif answers["mode"] == "down":
            route.abort("connectionrefused")
        else:
            route.fulfill(status=202, body='{"counted": true}')

    chromium_id.route("**/api/v1/events", handle)
    page = subscribed_page(chromium_id, live_server, r, browser_subscription())
    cdp, reg_id = registration_id(chromium_id, page, live_server.origin)
    push(cdp, live_server.origin, reg_id, declarative_message())
    # Tried again after a 429 and after network errors, with growing waits (1 s, then 2 s, jittered).
    wait_until(lambda: len(seen) >= 3, what="a third attempt", page=page, timeout=10)
    page.wait_for_timeout(5000)
    first = seen[0][0]
    assert all(at - first <= 6.5 for at, _, _ in seen)  # nothing after the window: no retry storm
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(seen)]
    assert all(gap >= 0.45 for gap in gaps), gaps  # Retry-After: 1 with jitter, then 1 s and 2 s backoffs
    assert (
        page.evaluate("caches.open('notifier-receipts').then((c) => c.keys()).then((k) => k.length)") == 1
    )  # it waits in the outbox

    # The service is back; the next push delivers its own receipt and the one that waited.
    answers["mode"] = "ok"
    push(
        cdp,
        live_server.origin,
        reg_id,
        declarative_message(tag="story-2", data={"cid": "c2", "sid": "s456", "rt": "t2"}),
    )
    wait_until(
        lambda: {b["cid"] for _, mode, b in seen if mode == "ok"} == {"c123", "c2"},
        what="both receipts delivered",
        page=page,
    )
    wait_until(
        lambda: (
            page.evaluate("caches.open('notifier-receipts').then((c) => c.keys()).then((k) => k.length)") == 0
        ),
        what="the outbox emptied",
        page=page,
    )


def test_click_opens_the_article_or_focuses_its_tab_and_reports_clicked(live_server, chromium_id, r) -> None:  # type: ignore[no-untyped-def]
    events = record_events(chromium_id)
    page = subscribed_page(chromium_id, live_server, r, browser_subscription())
    cdp, reg_id = registration_id(chromium_id, page, live_server.origin)
    worker = wait_until(lambda: chromium_id.service_workers, what="the service worker")[0]
    article = live_server.url + "/artikel/bus-listrik-rute-pesisir"

    def push(tag: str) -> None:
        body = {
            "title": "Bus listrik",
            "body": "Rute baru",
            "url": article,
            "tag": tag,
            "cid": "c9",
            "sid": "s9",
        }
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": live_server.origin, "registrationId": reg_id, "data": json.dumps(body)},
        )
        wait_until(lambda: [n for n in notifications(page) if n["tag"] == tag], what=f"notification {tag}")

    # No tab shows the article yet (the page is on "/"): the click opens it.
    push("first")
    result = worker.evaluate(CLICK_IN_WORKER, "first")
    assert result == {"opened": [article], "focused": [], "left": 0}
    wait_until(lambda: any(e.get("type") == "clicked" for e in events), what="the clicked receipt", page=page)
    assert {"type": "clicked", "cid": "c9", "sid": "s9"} in [
        {k: v for k, v in e.items() if k != "rt"} for e in events
    ]

    # A tab already on the article is focused instead of opening another.
    page.goto(article)
    push("second")
    result = worker.evaluate(CLICK_IN_WORKER, "second")
    assert result == {"opened": [], "focused": [article], "left": 0}


def test_preferences_change_topics_and_unsubscribe(live_server, chromium_id, r, context) -> None:  # type: ignore[no-untyped-def]
    subscription = browser_subscription()
    page = subscribed_page(chromium_id, live_server, r, subscription)
    page.goto(live_server.url + "/preferensi")
    page.wait_for_selector('#prefs[data-state="subscribed"]')
    assert page.get_by_label("Berita terkini", exact=True).is_checked()
    assert not page.get_by_label("Olahraga", exact=True).is_checked()

    page.get_by_label("Berita terkini", exact=True).uncheck()
    page.get_by_label("Olahraga", exact=True).check()
    page.get_by_label("Ekonomi", exact=True).check()
    page.get_by_role("button", name="Simpan topik").click()
    page.wait_for_selector("#prefs-status:has-text('Topik tersimpan')")
    assert set(stored(r, context, subscription)["t"].split(",")) == {"olahraga", "ekonomi"}
    assert r.getbit(context.keys.subs_topic("olahraga"), int(stored(r, context, subscription)["id"])) == 1

    # No topic at all: the reader is told they still get the sends to everyone, before and after saving.
    assert not page.locator("#prefs-none-hint").is_visible()
    for name in ("Olahraga", "Ekonomi"):
        page.get_by_label(name, exact=True).uncheck()
    assert "semua pembaca" in page.locator("#prefs-none-hint").inner_text()
    page.get_by_role("button", name="Simpan topik").click()
    page.wait_for_selector("#prefs-status:has-text('Tersimpan tanpa topik')")
    wait_until(lambda: stored(r, context, subscription)["t"] == "", what="the topics to be cleared")

    page.get_by_role("button", name="Berhenti berlangganan").click()
    page.wait_for_selector('#prefs[data-state="unsubscribed"]')
    wait_until(lambda: not stored(r, context, subscription), what="the subscription to be deleted")

    # Permission is still granted, but the reader opted out: the article offers the prompt again
    # instead of subscribing behind their back.
    page.goto(live_server.url + "/")
    wait_state(page, "default")
    assert not stored(r, context, subscription)


def test_a_new_vapid_key_resubscribes_on_the_next_visit(live_server, chromium_id, r, context) -> None:  # type: ignore[no-untyped-def]
    subscription = browser_subscription()
    page = subscribed_page(chromium_id, live_server, r, subscription)
    assert page.evaluate("sessionStorage.getItem('test:subscribe-calls')") == "1"
    # The browser's subscription was made with a key the site no longer uses.
    page.evaluate(
        """() => {
            const stored = JSON.parse(localStorage.getItem("test:push-subscription"));
            stored.key = "BOLDKEY" + stored.key.slice(7);
            localStorage.setItem("test:push-subscription", JSON.stringify(stored));
        }"""
    )
    mark_seen_long_ago(context, subscription)
    page.reload()
    wait_state(page, "subscribed")
    assert page.evaluate("sessionStorage.getItem('test:subscribe-calls')") == "2"
    stored_key = page.evaluate("JSON.parse(localStorage.getItem('test:push-subscription')).key")
    assert stored_key == context.vapid.public_key_b64.rstrip("=")
    wait_until(
        lambda: int(stored(r, context, subscription).get("s") or 0) > 1,
        what="the re-posted subscription",
    )
