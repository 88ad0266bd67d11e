"""Every page in its main states, in Debian's Chromium, in Indonesian and English: axe-core, fit, screenshots.

Each reader, newsroom and ops page is visited at 390x844 (a phone) and 1366x768 (a laptop). At each
size axe-core (npm, ``tests/e2e/node_modules``, installed by ``scripts/bootstrap --browsers``) runs on
the page and any *serious* or *critical* violation fails the test; at 360 px wide the page must not
scroll sideways (tables scroll inside their own box). Every state is saved as a PNG in
``var/screenshots/`` (gitignored; ``docs/screenshots/`` keeps a chosen few).

One Chromium serves the whole module (one persistent profile, one page; the language comes from
``?lang=``, which the site remembers, and every language gets its own server, so its own origin).
``PushManager.subscribe``/``getSubscription`` are replaced by a browser-shaped subscription kept in
``localStorage``: a real one needs Google's push service, and what is tested here is what readers see.
"""

from __future__ import annotations

import json
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notifier.campaigns import CampaignInput, CampaignStore
from notifier.context import Context
from notifier.crypto import b64url_encode
from notifier.subscriptions import SubscriptionInput
from notifier.users import UserStore
from tests.factories import CHROMIUM, CHROMIUM_ARGS, LiveServer, browser_or_skip, require_browsers
from web import i18n

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "var" / "screenshots"
SIZES = ((390, 844), (1366, 768))
NARROWEST = 360
ADMIN = "redaksi@kabarkini.example"
PASSWORD = "kata-sandi-rahasia-123"
INSTAGRAM_ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 14; SM-S921B Build/UP1A; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36 Instagram 334.0.0.42.95 Android"
)

#: The push stubs (see the module docstring) and a permission prompt that answers with the current setting.
STUBS = """
(() => {
  const STORE = "test:push-subscription";
  const sub = (stored) => ({
    endpoint: stored.endpoint, expirationTime: null, options: { userVisibleOnly: true },
    toJSON() { return JSON.parse(JSON.stringify(stored)); },
    async unsubscribe() { localStorage.removeItem(STORE); return true; },
  });
  if (window.PushManager) {
    PushManager.prototype.subscribe = async function () {
      if (Notification.permission !== "granted") { throw new DOMException("permission", "NotAllowedError"); }
      localStorage.setItem(STORE, JSON.stringify(window.__SUBSCRIPTION__));
      return sub(window.__SUBSCRIPTION__);
    };
    PushManager.prototype.getSubscription = async function () {
      const raw = localStorage.getItem(STORE);
      return raw ? sub(JSON.parse(raw)) : null;
    };
  }
  if (window.Notification) {
    Notification.requestPermission = async () => Notification.permission;
  }
})();
"""


def browser_subscription() -> dict[str, Any]:
    """A ``PushSubscription.toJSON()`` as Chrome makes it: an FCM endpoint and real P-256 keys."""
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {
        "endpoint": "https://fcm.googleapis.com/fcm/send/" + b64url_encode(secrets.token_bytes(48)),
        "expirationTime": None,
        "keys": {"p256dh": b64url_encode(point), "auth": b64url_encode(secrets.token_bytes(16))},
    }


@pytest.fixture(scope="module")
def axe_source() -> str:
    """axe-core's browser bundle (fails in CI, skips elsewhere, when npm did not install it)."""
    if not AXE.is_file():
        message = f"{AXE} is missing: run scripts/bootstrap --browsers (npm ci in tests/e2e)"
        if require_browsers():
            pytest.fail(message)
        pytest.skip(message)
    return AXE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def browser(playwright_instance: Any) -> Iterator[Any]:
    """One persistent Chromium profile for the whole module (push needs a non-incognito profile)."""
    executable = browser_or_skip(CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="nt-pages-") as profile:
        context = playwright_instance.chromium.launch_persistent_context(
            user_data_dir=profile,
            executable_path=executable,
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport={"width": SIZES[0][0], "height": SIZES[0][1]},
        )
        context.set_default_timeout(10_000)
        context.add_init_script(
            script=f"window.__SUBSCRIPTION__ = {json.dumps(browser_subscription())};\n" + STUBS
        )
        try:
            yield context
        finally:
            context.close()


class Tour:
    """Visits pages of one live server in one language; checks and photographs each state."""

    def __init__(self, browser: Any, server: LiveServer, lang: str, axe: str) -> None:
        self.browser = browser
        self.server = server
        self.lang = lang
        self.axe = axe
        self.page = browser.new_page()
        self.cdp = browser.new_cdp_session(self.page)
        self.problems: list[str] = []
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(f"{self.page.url}: {exc}"))
        self.page.on(
            "response",
            lambda r: (
                self.errors.append(f"{r.status} {r.url}")
                if r.status >= 400
                and r.status not in (400, 409)  # every page names its icon: no /favicon.ico 404
                else None
            ),
        )
        SHOTS.mkdir(parents=True, exist_ok=True)

    def goto(self, path: str, ready: str = "body") -> None:
        """Open ``path`` in this tour's language and wait for ``ready``."""
        sep = "&" if "?" in path else "?"
        self.page.goto(f"{self.server.url}{path}{sep}lang={self.lang}")
        self.page.wait_for_selector(ready)

    def permission(self, setting: str) -> None:
        """The site's notification permission, as the browser's own settings would set it."""
        self.cdp.send(
            "Browser.setPermission",
            {"permission": {"name": "notifications"}, "setting": setting, "origin": self.server.origin},
        )

    def check(self, name: str, *, sizes: tuple[tuple[int, int], ...] = SIZES) -> None:
        """axe-core at each size, no sideways scroll at 360 px, a screenshot per size."""
        page = self.page
        assert page.get_attribute("html", "lang") == self.lang, f"{name}: <html lang> is not {self.lang}"
        for width, height in sizes:
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(60)  # a frame for layout and the pages' resize handlers
            self._axe(f"{name} @{width}")
            page.screenshot(path=str(SHOTS / f"{name}-{self.lang}-{width}.png"), full_page=True)
        page.set_viewport_size({"width": NARROWEST, "height": 740})
        page.wait_for_timeout(60)
        overflow = page.evaluate(
            """() => {
              const width = document.documentElement.clientWidth;
              const wide = [...document.querySelectorAll("body *")].filter((el) => {
                const box = el.getBoundingClientRect();
                if (box.right <= width + 1 || !box.width) return false;
                for (let p = el.parentElement; p; p = p.parentElement) {
                  const style = getComputedStyle(p);
                  if (["auto", "scroll", "hidden", "clip"].includes(style.overflowX)) return false;
                }
                return true;
              }).slice(0, 5).map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
                (el.className && typeof el.className === "string" ? "." + el.className.split(" ").join(".") : ""));
              return { scroll: document.documentElement.scrollWidth, width, wide };
            }"""
        )
        if overflow["scroll"] > overflow["width"]:
            self.problems.append(
                f"{name}: {overflow['scroll']} px wide at {NARROWEST} px (too wide: {overflow['wide']})"
            )
        page.set_viewport_size({"width": sizes[0][0], "height": sizes[0][1]})

    def _axe(self, where: str) -> None:
        page = self.page
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate(self.axe)  # through the debugger protocol: the page's CSP does not apply
        found = page.evaluate(
            """async () => {
              const result = await axe.run(document, { resultTypes: ["violations"] });
              return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
                .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                               nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
            }"""
        )
        for v in found:
            self.problems.append(f"{where}: {v['impact']} {v['id']} ({v['help']}) at {v['nodes']}")

    def finish(self) -> None:
        """Fail with every problem found on the tour (all of them, not only the first)."""
        self.page.close()
        problems = self.problems + [f"error: {e}" for e in self.errors]
        assert not problems, "\n".join(problems)


def seed(context: Context) -> dict[str, str]:
    """Readers, an admin, a campaign sending and one done: what the newsroom and ops pages show."""
    now = time.time()
    slugs = context.topic_slugs
    for i in range(40):
        topics = (slugs[i % len(slugs)],) if i % 3 else ()
        sub = browser_subscription()
        item = SubscriptionInput(sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"], topics, "id")
        context.subscriptions.upsert(item, browser="chrome-android" if i % 2 else "firefox", now=now)
    UserStore(context.redis, context.keys).create(ADMIN, PASSWORD, "admin")
    r, keys = context.redis, context.keys
    store = CampaignStore(r, keys)
    ids = {}
    for name, state in (("done", "done"), ("running", "sending")):
        cid = store.create(
            CampaignInput(
                "Gempa M6,1 guncang Cianjur, warga diminta tetap tenang dan menjauhi bangunan tinggi",
                "BMKG: tidak berpotensi tsunami. Warga diminta waspada gempa susulan.",
                "https://kabarkini.example/nasional/2025/05/12/gempa-m61-guncang-cianjur-warga-diminta-tenang",
                topics=(slugs[0],),
                source="editor",
                created_by=ADMIN,
            ),
            now=now - 300,
        )
        assert store.transition(cid, "planning") and store.transition(cid, "sending")
        sent = 2007 if state == "done" else 812
        # The done one sent for 4 minutes, 25 minutes ago; the running one has sent for 4 minutes.
        start = now - (1500 if state == "done" else 240)
        r.hset(
            keys.campaign(cid),
            mapping={
                "total": 2007, "sent": sent, "gone": 14, "rejected": 2, "retried": 40, "deferred": 120,
                "started": repr(start - 3), "first_sent": repr(start), "last_sent": repr(start + 235),
                "shown": sent // 2, "clicked": sent // 20,
            },
        )  # fmt: skip
        for i in range(24):
            bucket = int(start // 10 * 10) + 10 * i
            r.hincrby(keys.campaign_timeline(cid), f"{bucket}:sent", sent // 24)
            r.hincrby(keys.campaign_timeline(cid), f"{bucket}:clicked", sent // 480)
            r.hincrby(keys.throughput_minute(bucket // 60 * 60), str(bucket), sent // 24)
        r.hset(
            keys.campaign_services(cid), mapping={"fcm:sent": sent - 300, "mozilla:sent": 300, "fcm:gone": 14}
        )
        r.hset(
            keys.campaign_browsers(cid),
            mapping={"chrome-android:sent": sent - 300, "firefox:sent": 300, "chrome-android:gone": 14},
        )
        if state == "done":
            assert store.transition(cid, "done")
        ids[name] = cid
    r.hset(
        keys.outcomes_total,
        mapping={"fcm:sent": 2500, "fcm:deferred": 120, "fcm:retry": 40, "mozilla:sent": 319},
    )
    r.hset(keys.statuses_total, mapping={"fcm:201": 2500, "fcm:0": 130, "fcm:429": 30, "mozilla:201": 319})
    r.hset(keys.push_holds, "fcm", f"{now + 600!r}|429|600.0|{now!r}")
    return ids


@pytest.mark.parametrize("lang", ["id", "en"])
def test_every_page_passes_axe_and_fits_a_phone(  # type: ignore[no-untyped-def]
    lang, context, live_server, browser, axe_source
) -> None:
    ids = seed(context)
    tour = Tour(browser, live_server, lang, axe_source)
    page = tour.page
    slug = "bus-listrik-rute-pesisir"

    # Readers: the soft prompt first, the article, the subscribe page; blocked; an in-app browser.
    tour.goto("/", '#optin[data-state="default"]')
    tour.check("home")
    tour.goto(f"/artikel/{slug}", '#optin[data-state="default"]')
    tour.check("article")
    tour.permission("denied")
    tour.goto("/langganan", '#optin[data-state="denied"]')
    tour.check("subscribe-denied")
    own_agent = page.evaluate("navigator.userAgent")
    tour.cdp.send("Emulation.setUserAgentOverride", {"userAgent": INSTAGRAM_ANDROID_UA})
    tour.goto("/langganan", '#optin[data-state="inapp"]')
    tour.check("subscribe-inapp", sizes=SIZES[:1])
    tour.cdp.send("Emulation.setUserAgentOverride", {"userAgent": own_agent})
    # Allowed: it subscribes by itself; an article then shows one line, not the whole box.
    tour.permission("granted")
    tour.goto("/langganan", '#optin[data-state="subscribed"]')
    tour.check("subscribe-subscribed")
    tour.goto(f"/artikel/{slug}", '#optin[data-state="subscribed"]')
    compact = page.locator("#optin.optin-compact.optin-on")
    assert compact.is_visible()
    box = compact.bounding_box()
    assert box and box["height"] < 120, f"the subscribed line on an article is {box} (not one line)"
    assert not page.locator("#optin-form").is_visible()
    tour.check("article-subscribed", sizes=SIZES[:1])
    tour.goto("/preferensi", "#prefs-form, form")
    tour.check("preferences")

    # The newsroom: log in, compose (empty, refused, the review before a send to everyone), campaigns.
    tour.goto("/login", "input[name=email]")
    tour.check("login")
    page.fill("input[name=email]", ADMIN)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r"/newsroom/"))
    tour.goto("/newsroom/compose", "#send-button")
    brand = page.text_content(".nr-brand")
    # "Send now" asks for no date; "Schedule" shows the field.
    assert page.locator("#f-when-now").is_checked() and not page.locator("#f-send-at").is_visible()
    page.check("#f-when-later")
    assert page.locator("#f-send-at").is_visible()
    page.check("#f-when-now")
    tour.check("compose")
    page.click("#send-button")
    page.wait_for_selector(".nr-field-error")
    tour.check("compose-errors")
    page.fill("#f-url", "https://kabarkini.example/nasional/gempa-cianjur")
    page.fill("#f-title", "Gempa M6,1 guncang Cianjur")
    page.fill("#f-body", "BMKG: tidak berpotensi tsunami.")
    page.click("#send-button")
    page.wait_for_selector("#review")
    assert page.locator("#confirm-everyone-button").is_visible()
    assert "41" in (page.text_content("#review-title") or "")  # the 40 seeded and this reader
    tour.check("compose-review")
    tour.goto("/newsroom/campaigns", "main")
    tour.check("campaigns")
    tour.goto(f"/newsroom/campaigns/{ids['running']}", "#campaign-state[data-state=sending]")
    assert page.text_content(".nr-brand") == brand  # the site's name, as on every newsroom page
    # Readers not reached yet, counted now (2,007 - 812 sent - 14 gone - 2 refused), not the waits.
    page.wait_for_function("document.getElementById('left-count').textContent !== ''")
    assert page.text_content("#left-count") == page.evaluate("(n) => NotifierI18n.number(n)", 2007 - 812 - 16)
    # The push service's hold (seeded: FCM, 429) is named with its end, and the estimate includes it.
    note = page.locator("#deferred-note")
    assert note.is_visible() and "429" in (note.text_content() or "")
    # Row names wrap between words, never inside one.
    widths = page.evaluate(
        """() => [...document.querySelectorAll("#counters th, #browsers th[scope=row]")].map(
             (th) => th.scrollWidth <= th.clientWidth + 1)"""
    )
    assert all(widths), widths
    tour.check("campaign-running")
    tour.goto(f"/newsroom/campaigns/{ids['done']}", "#campaign-state[data-state=done]")
    page.wait_for_selector("#browsers tbody tr")
    # Services named as ops names them; browsers counted per reader, biggest first.
    assert page.text_content("#services tbody tr[data-key=mozilla] th") == "Mozilla (Firefox)"
    assert page.locator("#browsers tbody tr th").all_text_contents() == ["Chrome (Android)", "Firefox"]
    tour.check("campaign-done")
    tour.goto("/newsroom/users", "main")
    tour.check("users")
    tour.goto("/newsroom/readers", "#per-reader-default")
    tour.check("readers")

    # Ops with a campaign in flight and a push service asking us to wait.
    tour.goto("/ops/", "#campaigns-table tbody tr[data-campaign]")
    page.wait_for_selector("#ops-alerts [data-kind=hold]")
    # One campaign sending: its rate and the throughput panel are the same figure, over the same 60 s.
    row_rate = page.get_attribute("#campaigns-table tbody tr[data-campaign]", "data-rate")
    assert row_rate and float(row_rate) > 0
    assert page.text_content("#tp-now") == page.evaluate("(n) => NotifierI18n.number(n)", float(row_rate))
    # Campaign titles link to their page and read as lines of words, not a column one word wide.
    link = page.locator("#campaigns-table tbody tr[data-campaign] .ops-campaign a")
    assert link.get_attribute("href") == f"/newsroom/campaigns/{ids['running']}"
    page.set_viewport_size({"width": 390, "height": 844})
    title_width = page.evaluate(
        "() => document.querySelector('#campaigns-table tbody tr[data-campaign] td').getBoundingClientRect().width"
    )
    assert title_width >= 200, f"the campaign title column is {title_width} px wide on a phone"
    # Subscribers by browser and language are named, not ids.
    names = page.locator("#browsers-table tbody th, #browsers-table tbody td:first-child").all_text_contents()
    assert "Firefox" in names and "chrome-android" not in names, names
    # The scale's label sits above the tallest bar, never on it.
    clash = page.evaluate(
        """() => [...document.querySelectorAll(".ops-svg")].filter((svg) => {
             const label = svg.querySelector(".ops-tick-max");
             const bars = [...svg.querySelectorAll("rect")];
             if (!label || !bars.length) return false;
             const bottom = label.getBBox().y + label.getBBox().height;
             return bars.some((b) => b.getBBox().y < bottom && b.getBBox().x < label.getBBox().x + label.getBBox().width);
           }).map((svg) => svg.parentElement.id)"""
    )
    assert clash == [], f"scale label on a bar in {clash}"
    tour.check("ops")
    tour.finish()


def test_a_javanese_page_falls_back_to_indonesian_message_by_message(  # type: ignore[no-untyped-def]
    live_server, browser, axe_source
) -> None:
    tour = Tour(browser, live_server, "jv", axe_source)
    tour.goto("/", "#optin[data-state]")
    page = tour.page
    assert page.get_attribute("html", "lang") == "jv"
    # Translated in jv.po:
    assert "Entuk kabar paling anyar saka" in page.inner_text("#optin-heading")
    # Not translated in jv.po: the Indonesian text, not the English source.
    source = "Topics you want to follow"
    assert i18n.translations_for("jv").gettext(source) != source
    untranslated = "You can change them at any time on the Preferences page."
    indonesian = i18n.translations_for("id").gettext(untranslated)
    assert indonesian != untranslated and i18n.translations_for("jv").gettext(untranslated) == indonesian
    assert indonesian in page.inner_text("#optin")
    tour.check("home-javanese", sizes=SIZES[:1])
    tour.finish()


def test_the_checks_catch_a_broken_page(live_server, browser, axe_source) -> None:  # type: ignore[no-untyped-def]
    tour = Tour(browser, live_server, "id", axe_source)
    tour.goto("/", "body")
    tour.page.set_content(
        # (The site's CSP refuses inline styles: the width is an attribute.)
        '<html lang="id"><body><main><img src="/static/icons/icon-192.png">'
        '<img id="too-wide" src="/static/icons/icon-192.png" alt="lebar" width="700" height="20"></main></body></html>'
    )
    tour.check("broken", sizes=SIZES[:1])
    found = "\n".join(tour.problems)
    assert "critical image-alt" in found and "img#too-wide" in found
    assert re.search(r"broken: \d+ px wide at 360 px", found)
    (SHOTS / "broken-id-390.png").unlink()
    tour.page.close()
