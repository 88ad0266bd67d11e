"""The embed on a publisher's own site, in Debian's Chromium: a page notifier does not serve.

The publisher (tests/e2e/publisher.py) is a plain HTTP server on its own port serving a static article
with the documented tag pasted in and the one-line worker file at its root; notifier runs on another
port with two sites, ``kabar`` (declared for the publisher's origin) and ``warta``. Chromium cannot
make a real push subscription offline, so the narrow stubs of tests/e2e/chromium.py stand in for
``PushManager.subscribe`` and the permission prompt; everything else is real: the widget's shadow DOM,
the cross-origin calls and their CORS, the service worker registered on the publisher's origin from
notifier's versioned code, pushes into it (CDP), Redis.

Screenshots of the widget at phone width go to ``var/screenshots/embed-*.png`` (docs/embed.md shows
copies kept in ``docs/screenshots/``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from notifier.context import Context
from notifier.errors import NotFound
from notifier.settings import Settings
from tests.e2e.chromium import (
    CLICK_IN_WORKER,
    browser_subscription,
    notifications,
    prepare,
    record_events,
    registration_id,
    set_permission,
    wait_until,
)
from tests.e2e.publisher import Publisher
from tests.factories import LiveServer, require_browsers, write_sites
from web import serviceworker

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots"
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


ANDROID_IN_APP_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UQ1A.240205.004; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 Instagram 330.0.0.40.92 Android"
)
IOS_IN_APP_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.38.108;FBBV/612345678;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS]"
)


def intent_link(url: str) -> str:
    """The Android way out of an in-app browser to Chrome, for ``url`` (what /langganan offers)."""
    from urllib.parse import quote

    scheme, rest = url.split("://", 1)
    return (
        f"intent://{rest}#Intent;scheme={scheme};package=com.android.chrome;"
        f"S.browser_fallback_url={quote(url, safe='')};end"
    )


@dataclass
class Deployment:
    """notifier serving two sites, and the publisher of one of them."""

    notifier: LiveServer
    context: Context
    publisher: Publisher

    def article(self, **options: Any) -> str:
        """Publish the article with the tag (and the worker file) and return its URL."""
        return self.publisher.publish(self.notifier.url, "kabar", **options)


@pytest.fixture
def deployment(
    publisher: Publisher,
    settings_env: dict[str, str],
    r: redis.Redis,
    tmp_path: Path,
    start_live_server: Callable[..., LiveServer],
) -> Deployment:
    document = {
        "default": "kabar",
        "sites": [
            {"id": "kabar", "name": "Warta Kota Lama", "origins": [publisher.origin], "lang": "id",
             "url": publisher.origin + "/"},
            {"id": "warta", "name": "Warta Timur", "origins": ["https://warta.example"], "lang": "en",
             "vapid_key_file": "warta-vapid.pem"},
        ],
    }  # fmt: skip
    path = write_sites(tmp_path / "sites", document)
    context = Context.build(Settings.from_env({**settings_env, "NOTIFIER_SITES_FILE": str(path)}), client=r)
    return Deployment(start_live_server(context), context, publisher)


def widget(page: Any) -> Any:
    """The widget's root inside its shadow tree (Playwright's CSS engine pierces open shadow roots)."""
    return page.locator("[data-notifier-widget] section")


def panel(page: Any, name: str) -> Any:
    """One panel of the widget (the others are hidden)."""
    return page.locator(f'[data-notifier-widget] [data-panel="{name}"]')


def widget_state(page: Any) -> str:
    return str(page.get_attribute("[data-notifier-widget]", "data-state"))


def wait_widget(page: Any, state: str) -> None:
    page.wait_for_selector(f'[data-notifier-widget][data-state="{state}"]')


def axe(page: Any, where: str) -> None:
    """axe-core on the widget (in its shadow tree): no serious or critical violation."""
    if not AXE.is_file():
        message = f"{AXE} is missing: run scripts/bootstrap --browsers (npm ci in tests/e2e)"
        if require_browsers():
            pytest.fail(message)
        return
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text("utf-8"))
    found = page.evaluate(
        """async () => {
            const result = await axe.run({ include: [["[data-notifier-widget]"]] }, { resultTypes: ["violations"] });
            return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
                .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
        }"""
    )
    assert not found, f"{where}: {found}"


def shot(page: Any, name: str, above: int = 120) -> None:
    """The widget's part of the page at phone width, as readers see it (checked by axe-core first)."""
    axe(page, name)
    SHOTS.mkdir(parents=True, exist_ok=True)
    slot = page.evaluate(
        """() => { const box = document.querySelector(".notify-slot").getBoundingClientRect();
                   return { y: box.top + window.scrollY, height: box.height }; }"""
    )  # page coordinates: the shot is clipped out of the full page
    top = max(0, slot["y"] - above)
    page.screenshot(
        path=str(SHOTS / f"embed-{name}-390.png"),
        clip={"x": 0, "y": top, "width": PHONE["width"], "height": min(844, slot["height"] + above + 50)},
        full_page=True,
    )


def stored_in(context: Context, subscription: dict[str, Any], site: str) -> Any:
    try:
        return context.subscriptions.get_by_endpoint(subscription["endpoint"], site=site)
    except NotFound:
        return None


def test_the_embed_renders_on_the_publishers_page_and_subscribes_into_its_site(
    deployment: Deployment, launch_chromium: Callable[..., Any]
) -> None:
    browser = launch_chromium(locale="id-ID", viewport=PHONE)
    subscription = browser_subscription()
    page = prepare(browser, subscription)
    url = deployment.article()
    page.goto(url)
    wait_widget(page, "default")
    shot(page, "prompt")

    # The soft prompt, in the site's language; the browser's own prompt was not requested.
    assert page.evaluate("Notification.permission") == "default"
    assert page.evaluate("window.__permissionRequests") == 0
    assert widget(page).get_by_role("heading", level=2).inner_text() == (
        "Dapatkan berita terbaru dari Warta Kota Lama"
    )
    # Nothing of notifier lands on the publisher's window.
    assert page.evaluate("typeof window.NotifierPush + typeof window.NotifierI18n") == "undefinedundefined"

    panel(page, "default").get_by_label("Berita terkini", exact=True).uncheck()
    panel(page, "default").get_by_label("Ekonomi", exact=True).check()
    widget(page).get_by_role("button", name="Aktifkan notifikasi").click()
    wait_until(lambda: page.evaluate("window.__permissionRequests") == 1, what="the permission request")
    assert widget_state(page) == "working"
    set_permission(browser, page, deployment.publisher.origin, "granted")  # the reader chooses Allow
    wait_widget(page, "subscribed")
    shot(page, "subscribed")

    c = deployment.context
    stored = wait_until(lambda: stored_in(c, subscription, "kabar"), what="the subscription in Redis")
    assert stored.topics == ("ekonomi",) and stored.lang == "id" and stored.browser == "chrome-desktop"
    assert stored.key_id == c.vapid_for("kabar").key_id
    assert c.subscriptions.count_by_site(["kabar", "warta"]) == {"kabar": 1, "warta": 0}

    # The worker is the publisher's one-line file at its root, running notifier's current code.
    reg = page.evaluate(
        """async () => {
            const reg = await navigator.serviceWorker.ready;
            const version = await new Promise((resolve) => {
                const channel = new MessageChannel();
                channel.port1.onmessage = (event) => resolve(event.data);
                reg.active.postMessage({ type: "notifier:version" }, [channel.port2]);
            });
            return { scope: reg.scope, script: reg.active.scriptURL, version };
        }"""
    )
    assert reg["scope"] == deployment.publisher.origin + "/"
    assert reg["script"] == deployment.publisher.origin + "/notifier-sw.js"
    assert reg["version"] == {"version": serviceworker.current_version(), "site": "kabar"}

    # The reader's language choice: the widget switches, and later visits keep it.
    widget(page).get_by_role("button", name="English").click()
    page.wait_for_selector("[data-notifier-widget] h3:has-text('Notifications are on')")
    page.reload()
    wait_widget(page, "subscribed")
    assert "Notifications are on" in widget(page).inner_text()
    assert widget(page).get_attribute("lang") == "en"
    assert wait_until(lambda: stored_in(c, subscription, "kabar").lang == "en", what="the language re-posted")


def test_blocked_shows_steps_naming_the_publishers_origin_and_allowing_subscribes_live(
    deployment: Deployment, launch_chromium: Callable[..., Any]
) -> None:
    browser = launch_chromium(locale="id-ID", viewport=PHONE)
    subscription = browser_subscription()
    page = prepare(browser, subscription)
    origin = deployment.publisher.origin
    set_permission(browser, page, origin, "denied")
    page.goto(deployment.article())
    wait_widget(page, "denied")
    shot(page, "blocked")

    text = widget(page).inner_text()
    assert "Langkah untuk Chrome (komputer)" in text
    assert text.count(origin) >= 2  # the address to look for, and in the steps
    assert deployment.notifier.url not in text  # the reader's browser lists the publisher, not notifier

    widget(page).get_by_role("button", name="Periksa lagi").click()
    page.wait_for_selector("[data-notifier-widget] p:has-text('masih diblokir')")
    assert widget_state(page) == "denied"
    # Another browser's steps, picked by hand.
    widget(page).get_by_label("Memakai peramban lain?").select_option("firefox")
    assert "Langkah untuk Firefox" in widget(page).inner_text()

    # The reader allows notifications in the browser's settings: the widget subscribes with no click.
    set_permission(browser, page, origin, "granted")
    wait_widget(page, "subscribed")
    assert "tanpa perlu menekan apa pun" in widget(page).inner_text()
    stored = wait_until(lambda: stored_in(deployment.context, subscription, "kabar"), what="the subscription")
    assert stored.topics == ("breaking",)

    # Safari on an iPhone, not opened from the Home Screen: the Home Screen steps instead.
    iphone = launch_chromium(locale="id-ID", viewport=PHONE, user_agent=IPHONE_UA)
    ios_page = prepare(iphone, browser_subscription())
    ios_page.goto(deployment.article())
    wait_widget(ios_page, "ios")
    assert "Tambahkan ke Layar Utama" in widget(ios_page).inner_text()
    shot(ios_page, "ios")


def test_a_page_on_an_undeclared_origin_is_refused_by_cors(
    deployment: Deployment, launch_chromium: Callable[..., Any]
) -> None:
    browser = launch_chromium(locale="id-ID")
    subscription = browser_subscription()
    page = prepare(browser, subscription)
    warnings: list[str] = []
    page.on("console", lambda message: warnings.append(message.text))
    # The same static page, reached as http://localhost:<port>: an origin no site declares.
    url = deployment.article().replace("127.0.0.1", "localhost")
    page.goto(url)
    wait_until(lambda: any("is not available on http://localhost" in w for w in warnings), page=page,
               what="the widget's warning")  # fmt: skip
    assert page.evaluate("document.querySelector('[data-notifier-widget]').shadowRoot") is None
    # The page's own attempts are refused by the browser (no CORS answer), and nothing is stored.
    refused = page.evaluate(
        """async (api) => {
            const out = {};
            for (const [name, init] of [
                ["key", {}],
                ["post", { method: "POST", headers: { "Content-Type": "application/json" },
                           body: JSON.stringify(window.__NOTIFIER_TEST__.subscription) }],
            ]) {
                try {
                    const response = await fetch(api + (name === "key" ? "/api/v1/vapid-public-key?site=kabar"
                                                                        : "/api/v1/subscriptions?site=kabar"), init);
                    out[name] = "answered " + response.status;
                } catch (error) { out[name] = error.name; }
            }
            return out;
        }""",
        deployment.notifier.url,
    )
    assert refused == {"key": "TypeError", "post": "TypeError"}
    assert deployment.context.subscriptions.count() == 0


#: Computed styles compared with and without the publisher's hostile stylesheet.
WIDGET_LOOK = """() => {
    const root = document.querySelector("[data-notifier-widget]").shadowRoot;
    const host = document.querySelector("[data-notifier-widget]").getBoundingClientRect();
    const pick = (el) => {
        const s = getComputedStyle(el);
        const box = el.getBoundingClientRect();
        return [el.tagName, s.fontFamily, s.fontSize, s.color, s.backgroundColor, s.textTransform,
                s.letterSpacing, s.lineHeight, s.padding, s.margin, s.borderTopWidth, s.display,
                Math.round(box.width), Math.round(box.height)];
    };
    const els = [root.querySelector("section"), root.querySelector("h2"), ...root.querySelectorAll("button"),
                 ...root.querySelectorAll("label"), ...root.querySelectorAll("input")];
    return { host: [Math.round(host.width), Math.round(host.height)], elements: els.map(pick) };
}"""


def test_the_publishers_hostile_css_does_not_change_the_widget(
    deployment: Deployment, launch_chromium: Callable[..., Any]
) -> None:
    browser = launch_chromium(locale="id-ID", viewport=PHONE)
    page = prepare(browser, browser_subscription())
    calm = deployment.publisher.publish(deployment.notifier.url, "kabar", page="calm.html")
    hostile = deployment.publisher.publish(
        deployment.notifier.url, "kabar", hostile=True, page="hostile.html"
    )
    page.goto(calm)
    wait_widget(page, "default")
    before = page.evaluate(WIDGET_LOOK)
    page.goto(hostile)
    wait_widget(page, "default")
    # The stylesheet did apply to the publisher's own elements ...
    assert page.evaluate("getComputedStyle(document.querySelector('.byline')).textTransform") == "uppercase"
    after = page.evaluate(WIDGET_LOOK)
    shot(page, "hostile-css", above=420)
    # ... and to nothing of the widget: every font, colour, box and size is the same.
    assert after == before
    assert before["elements"][0][1].startswith("system-ui")


def test_preferences_and_unsubscribe_inside_the_widget(
    deployment: Deployment, launch_chromium: Callable[..., Any]
) -> None:
    browser = launch_chromium(locale="id-ID", viewport=PHONE)
    subscription = browser_subscription()
    page = prepare(browser, subscription)
    set_permission(browser, page, deployment.publisher.origin, "granted")
    page.goto(deployment.article())
    wait_widget(page, "subscribed")  # permission already granted: the widget subscribed on load
    c = deployment.context
    wait_until(lambda: stored_in(c, subscription, "kabar"), what="the subscription")

    widget(page).get_by_role("button", name="Atur topik atau berhenti berlangganan").click()
    wait_widget(page, "prefs")
    panel(page, "prefs").get_by_label("Berita terkini", exact=True).uncheck()
    panel(page, "prefs").get_by_label("Olahraga", exact=True).check()
    panel(page, "prefs").get_by_label("Teknologi", exact=True).check()
    shot(page, "preferences")
    widget(page).get_by_role("button", name="Simpan topik").click()
    wait_widget(page, "subscribed")
    assert "Topik tersimpan" in widget(page).inner_text()
    assert set(stored_in(c, subscription, "kabar").topics) == {"olahraga", "teknologi"}

    widget(page).get_by_role("button", name="Atur topik atau berhenti berlangganan").click()
    widget(page).get_by_role("button", name="Berhenti berlangganan").click()
    wait_widget(page, "default")
    assert "Anda sudah berhenti berlangganan" in widget(page).inner_text()
    wait_until(lambda: stored_in(c, subscription, "kabar") is None, what="the subscription deleted")
    # The reader opted out: the next visit offers the prompt instead of subscribing behind their back.
    page.reload()
    wait_widget(page, "default")
    assert c.subscriptions.count() == 0


def test_two_widgets_on_one_page_both_render_and_make_one_subscription(
    deployment: Deployment, launch_chromium: Callable[..., Any]
) -> None:
    browser = launch_chromium(locale="id-ID", viewport=PHONE)
    subscription = browser_subscription()
    page = prepare(browser, subscription)
    page.goto(deployment.article(widgets=2))  # one tag, two widget elements
    hosts = page.locator("[data-notifier-widget]")

    def states() -> list[str]:
        return [str(hosts.nth(i).get_attribute("data-state")) for i in range(hosts.count())]

    wait_until(lambda: states() == ["default", "default"], page=page, what="two widgets")
    for i in range(2):
        heading = hosts.nth(i).locator("section").get_by_role("heading", level=2).inner_text()
        assert heading == "Dapatkan berita terbaru dari Warta Kota Lama"
    hosts.nth(1).locator("section").get_by_role("button", name="Aktifkan notifikasi").click()
    wait_until(lambda: page.evaluate("window.__permissionRequests") == 1, what="the permission request")
    set_permission(browser, page, deployment.publisher.origin, "granted")
    wait_until(lambda: states() == ["subscribed", "subscribed"], page=page, what="both widgets subscribed")
    c = deployment.context
    wait_until(lambda: stored_in(c, subscription, "kabar"), what="the subscription in Redis")
    assert page.evaluate("window.__permissionRequests") == 1  # one prompt, not one per widget
    assert c.subscriptions.count_by_site(["kabar", "warta"]) == {"kabar": 1, "warta": 0}
    regs = page.evaluate("async () => (await navigator.serviceWorker.getRegistrations()).length")
    assert regs == 1
    # Unsubscribing in one widget shows in the other; the reader has no subscription left.
    first = hosts.nth(0).locator("section")
    first.get_by_role("button", name="Atur topik atau berhenti berlangganan").click()
    first.get_by_role("button", name="Berhenti berlangganan").click()
    wait_until(lambda: states() == ["default", "default"], page=page, what="both widgets unsubscribed")
    wait_until(lambda: c.subscriptions.count() == 0, what="the subscription deleted")


def test_an_in_app_browser_gets_the_way_out_that_langganan_offers(
    deployment: Deployment, launch_chromium: Callable[..., Any]
) -> None:
    browser = launch_chromium(locale="en-GB", viewport=PHONE, user_agent=ANDROID_IN_APP_UA)
    browser.grant_permissions(["clipboard-read", "clipboard-write"], origin=deployment.publisher.origin)
    page = prepare(browser, browser_subscription())
    url = deployment.article(lang="en")
    page.goto(url)
    wait_widget(page, "inapp")
    inapp = panel(page, "inapp")
    assert inapp.get_by_role("heading", level=3).inner_text() == "Open this page in your browser"
    assert inapp.get_by_role("link", name="Open in Chrome").get_attribute("href") == intent_link(url)
    assert url in inapp.inner_text()
    inapp.get_by_role("button", name="Copy link").click()
    wait_until(lambda: "Link copied" in inapp.inner_text(), page=page, what="the copied note")
    assert page.evaluate("navigator.clipboard.readText()") == url
    shot(page, "inapp")
    # notifier's own /langganan, in the same app, sends the reader out the same way.
    own = browser.new_page()
    own.goto(deployment.notifier.url + "/langganan?lang=en")
    own.wait_for_selector("[data-panel=inapp]:not([hidden])")
    assert own.get_attribute("#inapp-open", "href") == intent_link(own.url)
    assert own.inner_text("#inapp-open") == "Open in Chrome"

    iphone = launch_chromium(locale="id-ID", viewport=PHONE, user_agent=IOS_IN_APP_UA)
    ios_page = prepare(iphone, browser_subscription())
    ios_page.goto(deployment.article())
    wait_widget(ios_page, "inapp")
    ios = panel(ios_page, "inapp")
    assert ios.get_by_role("link", name="Buka di Safari").get_attribute("href") == "x-safari-" + ios_page.url
    assert "Buka di Safari" in ios.locator("ol").inner_text()  # the app's own steps, for older iOS
    axe(ios_page, "inapp-ios")


def test_the_proxied_worker_shows_pushes_and_a_deploy_updates_it(
    deployment: Deployment,
    launch_chromium: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    browser = launch_chromium(locale="id-ID")
    events = record_events(browser)
    subscription = browser_subscription()
    page = prepare(browser, subscription)
    origin = deployment.publisher.origin
    set_permission(browser, page, origin, "granted")
    page.goto(deployment.article(worker="proxy"))  # /notifier-sw.js proxied to notifier's /sw/kabar.js
    wait_widget(page, "subscribed")
    cdp, reg_id = registration_id(browser, page, origin)

    article = origin + "/ekonomi/beras-turun-lagi.html"
    payload = {"title": "Beras turun lagi", "body": "Rp300 sepekan.", "url": article,
               "tag": "story-beras", "cid": "c1", "sid": "s1", "rt": "token"}  # fmt: skip
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": origin, "registrationId": reg_id, "data": json.dumps(payload)},
    )
    shown = wait_until(lambda: notifications(page), what="the notification")
    assert shown[0]["title"] == "Beras turun lagi" and shown[0]["data"]["url"] == article
    # Icons and receipts come from notifier's origin, through CORS.
    assert shown[0]["icon"].startswith(deployment.notifier.url + "/static/icons/")
    wait_until(lambda: events, page=page, what="the shown receipt")
    assert events[0]["type"] == "shown" and events[0]["cid"] == "c1"
    # The click opens the article on the publisher's site.
    worker = wait_until(lambda: browser.service_workers, what="the service worker")[0]
    result = worker.evaluate(CLICK_IN_WORKER, "story-beras")
    assert result == {"opened": [article], "focused": [], "left": 0}

    # A deploy of notifier with new worker code: the next visit has the browser install it.
    old = serviceworker.current_version()
    extra = tmp_path / "release.js"
    extra.write_text("/* the next release */\n")
    monkeypatch.setattr(serviceworker, "WORKER_PARTS", (*serviceworker.WORKER_PARTS, extra))
    new = serviceworker.current_version()
    assert new != old
    page.reload()
    wait_widget(page, "subscribed")
    running = wait_until(
        lambda: (v := page.evaluate(
            """async () => {
                const reg = await navigator.serviceWorker.getRegistration("/");
                if (!reg.active || reg.waiting || reg.installing) { return null; }
                return await new Promise((resolve) => {
                    const channel = new MessageChannel();
                    channel.port1.onmessage = (event) => resolve(event.data.version);
                    reg.active.postMessage({ type: "notifier:version" }, [channel.port2]);
                });
            }"""
        )) == new and v,
        timeout=15, page=page, what="the new worker code",
    )  # fmt: skip
    assert running == new
