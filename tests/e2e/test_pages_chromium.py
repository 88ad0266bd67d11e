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

import heapq
import json
import random
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notifier.campaigns import CampaignInput, CampaignStore, Receipt, count_receipt
from notifier.context import Context
from notifier.crypto import b64url_encode
from notifier.delivery import BatchResult, Delivery
from notifier.sending import Outcome, OutcomeKind, origin_of
from notifier.stats import DEFAULT_SAMPLE
from notifier.subscriptions import Subscription, SubscriptionInput
from notifier.users import UserStore
from tests.factories import CHROMIUM, CHROMIUM_ARGS, LiveServer, browser_or_skip, require_browsers
from web import i18n
from workers.jobs import batch_enqueuer

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


#: Where each push service's endpoints start (Chrome's FCM, Firefox's Mozilla push service).
PUSH_ENDPOINTS = {
    "fcm": "https://fcm.googleapis.com/fcm/send/",
    "mozilla": "https://updates.push.services.mozilla.com/wpush/v2/",
}


def browser_subscription(service: str = "fcm") -> dict[str, Any]:
    """A ``PushSubscription.toJSON()`` as Chrome (``fcm``) or Firefox (``mozilla``) makes it: its push
    service's endpoint and real P-256 keys."""
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {
        "endpoint": PUSH_ENDPOINTS[service] + b64url_encode(secrets.token_bytes(48)),
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


#: Reads a campaign page's figures: each counter, "N of M", and each column of the two outcome tables summed.
PAGE_FIGURES = """() => {
  const n = (el) => Number((el ? el.textContent : "").replace(/[^0-9]/g, "") || 0);
  const column = (table, kind) => [...document.querySelectorAll(`#${table} tbody td[data-kind=${kind}]`)]
    .reduce((sum, td) => sum + n(td), 0);
  const kinds = ["sent", "gone", "rejected", "failed", "retry", "deferred"];
  const counters = {};
  document.querySelectorAll("[data-counter]").forEach((el) => { counters[el.dataset.counter] = n(el); });
  return {
    done: n(document.getElementById("done-count")), total: n(document.getElementById("total-count")),
    left: n(document.getElementById("left-count")), counters,
    services: Object.fromEntries(kinds.map((k) => [k, column("services", k)])),
    browsers: Object.fromEntries(kinds.map((k) => [k, column("browsers", k)])),
  };
}"""


def assert_figures_agree(page: Any) -> dict[str, Any]:
    """The campaign page's figures agree: readers done and left add up to its audience, and the outcomes by
    push service and by browser add up to its counters."""
    f = page.evaluate(PAGE_FIGURES)
    c = f["counters"]
    assert f["done"] == sum(c[k] for k in ("sent", "gone", "rejected", "failed", "skipped")), f
    assert f["done"] + f["left"] == f["total"], f
    by_kind = {k: c[k] for k in ("sent", "gone", "rejected", "failed", "deferred")} | {"retry": c["retried"]}
    assert f["services"] == by_kind and f["browsers"] == by_kind, f
    return f


#: The readers the seed's campaigns went to: "breaking" followers when the finished one was planned, by the
#: browser they subscribed with (Chrome on Android through FCM, Firefox through Mozilla's push service).
BREAKING_CHROME, BREAKING_FIREFOX = 1707, 300


def _answer(
    sub: Subscription, kind: OutcomeKind, status: int, at: float, retry_after: float | None = None
) -> Outcome:
    """A push service's answer to one message, ``at`` (40 to 100 ms after it went; none when never sent)."""
    latency = 0.04 + int(sub.sid) % 7 * 0.01 if status else 0.0
    origin = origin_of(sub.endpoint)
    return Outcome(
        sub.sid, kind, status, retry_after, latency=latency, origin=origin, at=at if status else 0.0
    )


class Fanout:
    """A campaign's fan-out, recorded as its workers would have done it: planned now, sent by :meth:`until`.

    A batch of ``batch`` readers every ``every`` seconds from ``start``, each reader's answer from
    ``answer(subscription, attempt, at)``; retries and waits go into follow-up batches as the fan-out makes
    them (``Delivery._account``), and every figure is written by the fan-out's own recording
    (``Delivery._write``): counters, timeline, outcomes by push service and browser, HTTP statuses,
    throughput, latency, pushes per reader, gone subscriptions deleted. The last batch finishes the campaign
    (``done``).
    """

    def __init__(
        self,
        context: Context,
        cid: str,
        audience: list[str],
        *,
        start: float,
        answer: Callable[[Subscription, int, float], Outcome],
        batch: int = 96,
        every: float = 10.0,
    ) -> None:
        self.context, self.cid, self.answer = context, cid, answer
        self.delivery = Delivery(context)
        store = self.store = self.delivery.campaigns
        assert store.start_planning(cid)
        # Planning began 3 s before the first answer.
        context.redis.hset(context.keys.campaign(cid), "started", repr(start - 3))
        store.audience_snapshotted(cid)
        #: Batches not recorded yet: (when, batch id, ids, attempts).
        self.due: list[tuple[float, str, list[str], list[int]]] = []
        for n, first in enumerate(range(0, len(audience), batch)):
            store.reserve(cid, f"b{n}")
            chunk = audience[first : first + batch]
            heapq.heappush(self.due, (start + n * every, f"b{n}", chunk, [1] * len(chunk)))
        store.finish_planning(cid, total=len(audience), batches=len(self.due))
        self.subs = {sub.sid: sub for sub in context.subscriptions.load_many(audience)}

    def until(self, moment: float) -> None:
        """Record every batch due by ``moment``, in the order the workers would have finished them."""
        r, store, delivery, due = self.context.redis, self.store, self.delivery, self.due
        while due and due[0][0] <= moment:
            at, batch_id, sids, attempts = heapq.heappop(due)
            outcomes = [self.answer(self.subs[s], n, at) for s, n in zip(sids, attempts, strict=True)]
            result = BatchResult()
            delivery._account(outcomes, dict(zip(sids, attempts, strict=True)), result)
            campaign = store.get(self.cid)
            with r.pipeline(transaction=True) as pipe:
                if result.retry_sids:
                    retry_id = f"{batch_id}-{max(result.retry_attempts)}"
                    store.reserve(self.cid, retry_id, pipe)
                    follow_up = (at + result.retry_delay, retry_id, result.retry_sids, result.retry_attempts)
                    heapq.heappush(due, follow_up)
                delivery._write(
                    campaign, batch_id, outcomes, [], result, pipe, held=[], now=at + 0.5, by_sid=self.subs
                )
                pipe.execute()

    def queue_the_rest(self) -> None:
        """Put the batches not recorded in the queue, as the planner and the batches left them: those not
        taken yet waiting, the follow-ups of held and retried messages scheduled for when they are due."""
        enqueue = batch_enqueuer(self.context.raw_redis, self.cid)
        now = time.time()
        for at, batch_id, sids, attempts in self.due:
            enqueue(batch_id, sids, attempts, max(0.0, at - now) if "-" in batch_id else 0.0)
        self.due = []


@dataclass
class Seeded:
    """What :func:`seed` left: the campaigns' ids and the figures the tour checks the pages against."""

    ids: dict[str, str]
    subscribers: int  # every stored subscription (what "send to everyone" counts, before this browser's)
    running: dict[str, int]  # the running campaign's counters as stored
    sending: Fanout  # the running campaign's

    def catch_up(self) -> None:
        """What the running campaign's workers sent while the tour read other pages (its rate over the last
        60 s is one of the figures checked), then the rest of it queued."""
        self.sending.until(time.time() - 1)
        self.sending.queue_the_rest()
        self.running = self.sending.store.get(self.ids["running"]).counters


def _receipts(context: Context, cid: str, sent: dict[str, float], *, until: float) -> None:
    """``shown`` receipts from every other reader a campaign reached, a few seconds to two minutes after its
    push was accepted, and ``clicked`` from one in ten of those half a minute later (those due by ``until``)."""
    for n, (sid, at) in enumerate(sorted(sent.items(), key=lambda item: item[1])[::2]):
        shown_at = at + 5 + n % 120
        if shown_at < until:
            count_receipt(context.redis, context.keys, Receipt("shown", cid, sid, f"s{sid}"), now=shown_at)
        if n % 10 == 0 and shown_at + 30 < until:
            receipt = Receipt("clicked", cid, sid, f"c{sid}")
            count_receipt(context.redis, context.keys, receipt, now=shown_at + 30)


def seed(context: Context) -> Seeded:
    """Readers, an admin, a campaign done and one sending, FCM rate-limiting us: what the newsroom and ops
    pages show, every figure written by the product's own code so that they all agree.

    2,007 readers follow "breaking" (1,707 Chrome on Android, 300 Firefox), subscribed over four weeks, and 40
    more follow other topics or none. The done campaign went to the 2,007, 25 minutes ago, in 3 min 20 s:
    1,991 accepted, 14 gone (deleted), 2 refused; 40 answers of 429 retried and 120 messages waiting for FCM's
    hold meanwhile, all accepted after. The running one went out 4 minutes ago to the 1,993 left, until FCM
    answered 429 with Retry-After 600 s 20 s ago: its FCM messages wait for it. It goes on (its Mozilla
    messages) when the tour calls :meth:`Seeded.catch_up`, which also queues what it has left to send.
    """
    now = time.time()
    r, keys = context.redis, context.keys
    slugs = context.topic_slugs
    subscriptions = context.subscriptions
    rng = random.Random(2007)
    for i in range(40):
        topics = (slugs[i % len(slugs)],) if i % 3 else ()
        browser = "chrome-android" if i % 2 else "firefox"
        sub = browser_subscription("fcm" if i % 2 else "mozilla")
        item = SubscriptionInput(sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"], topics, "id")
        subscriptions.upsert(item, browser=browser, now=now)
    families = ["chrome-android"] * BREAKING_CHROME + ["firefox"] * BREAKING_FIREFOX
    rng.shuffle(families)
    breaking: list[str] = []
    for day in range(28):  # about 72 a day for four weeks
        group = families[day::28]
        items = []
        for family in group:
            sub = browser_subscription("fcm" if family == "chrome-android" else "mozilla")
            key = sub["keys"]
            items.append(SubscriptionInput(sub["endpoint"], key["p256dh"], key["auth"], (slugs[0],), "id"))
        stored = subscriptions.upsert_many(items, browsers=group, now=now - 86400 * (27 - day) - 7200)
        breaking += [sid for sid, _ in stored]
    rng.shuffle(breaking)
    UserStore(r, keys).create(ADMIN, PASSWORD, "admin")
    campaigns = CampaignStore(r, keys)

    def campaign(created: float) -> str:
        return campaigns.create(
            CampaignInput(
                "Gempa M6,1 guncang Cianjur, warga diminta tetap tenang dan menjauhi bangunan tinggi",
                "BMKG: tidak berpotensi tsunami. Warga diminta waspada gempa susulan.",
                "https://kabarkini.example/nasional/2025/05/12/gempa-m61-guncang-cianjur-warga-diminta-tenang",
                topics=(slugs[0],),
                source="editor",
                created_by=ADMIN,
            ),
            now=created,
        )

    # The done one: 14 of its FCM readers are gone, 2 refused; 40 asked to try again in 5 s, and 120 more
    # waited for FCM meanwhile; all of those accepted on their next try.
    loaded = {sub.sid: sub for sub in subscriptions.load_many(breaking)}
    fcm = [sid for sid in breaking if loaded[sid].browser == "chrome-android"]
    retry, wait = set(fcm[600:640]), set(fcm[640:760])
    others = [sid for sid in fcm if sid not in retry | wait]
    gone, refused = set(others[100:1500:100]), set(others[150:1500:700])
    waited: set[str] = set()
    done_sent: dict[str, float] = {}

    def done_answer(sub: Subscription, attempt: int, at: float) -> Outcome:
        if sub.sid in gone:
            return _answer(sub, OutcomeKind.GONE, 410, at)
        if sub.sid in refused:
            return _answer(sub, OutcomeKind.REJECTED, 400, at)
        if sub.sid in retry and attempt == 1:
            return _answer(sub, OutcomeKind.RETRY, 429, at, retry_after=5.0)
        if sub.sid in wait and sub.sid not in waited:
            waited.add(sub.sid)
            return _answer(sub, OutcomeKind.DEFERRED, 0, at, retry_after=4.0)
        done_sent[sub.sid] = at
        return _answer(sub, OutcomeKind.SENT, 201, at)

    done_start = now - 1500
    done = campaign(done_start - 60)
    fanout = Fanout(context, done, breaking, start=done_start, answer=done_answer)
    fanout.until(now)
    assert not fanout.due
    assert campaigns.state(done) == "done"
    _receipts(context, done, done_sent, until=now)

    # The running one, to the readers left: 9 more gone, one refused, 12 answers of 500 retried a second
    # later; 20 s ago FCM answered 429 asking for 600 s: its messages since wait for the hold to end.
    left = [sid for sid, live in zip(breaking, subscriptions.exists_many(breaking), strict=True) if live]
    fcm_left = [sid for sid in left if loaded[sid].browser == "chrome-android"]
    gone2, refused2, errors = set(fcm_left[50:950:100]), {fcm_left[475]}, set(fcm_left[300:312])
    running_start = now - 240
    hold_at, hold = running_start + 220, 600.0  # (the start of a batch: not a float's width off)
    running_sent: dict[str, float] = {}

    def running_answer(sub: Subscription, attempt: int, at: float) -> Outcome:
        if sub.browser == "chrome-android" and at >= hold_at:
            if at < hold_at + 10:
                return _answer(sub, OutcomeKind.RETRY, 429, at, retry_after=hold)
            return _answer(sub, OutcomeKind.DEFERRED, 0, at, retry_after=hold_at + hold - at)
        if sub.sid in gone2:
            return _answer(sub, OutcomeKind.GONE, 410, at)
        if sub.sid in refused2:
            return _answer(sub, OutcomeKind.REJECTED, 400, at)
        if sub.sid in errors and attempt == 1:
            return _answer(sub, OutcomeKind.RETRY, 500, at)
        running_sent[sub.sid] = at
        return _answer(sub, OutcomeKind.SENT, 201, at)

    running = campaign(running_start - 60)
    sending = Fanout(context, running, left, start=running_start, answer=running_answer, batch=48)
    sending.until(now - 2)
    _receipts(context, running, running_sent, until=now)
    r.hset(keys.push_holds, "fcm", f"{hold_at + hold!r}|429|{hold!r}|{hold_at!r}")
    counters = campaigns.get(running).counters
    return Seeded({"done": done, "running": running}, subscriptions.count(), counters, sending)


@pytest.mark.parametrize("lang", ["id", "en"])
def test_every_page_passes_axe_and_fits_a_phone(  # type: ignore[no-untyped-def]
    lang, context, live_server, browser, axe_source
) -> None:
    seeded = seed(context)
    ids = seeded.ids
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
    # Every stored subscription and this reader's.
    everyone = page.evaluate("(n) => NotifierI18n.number(n)", seeded.subscribers + 1)
    assert everyone in (page.text_content("#review-title") or ""), everyone
    tour.check("compose-review")
    tour.goto("/newsroom/campaigns", "main")
    tour.check("campaigns")
    tour.goto(f"/newsroom/campaigns/{ids['running']}", "#campaign-state[data-state=sending]")
    assert page.text_content(".nr-brand") == brand  # the site's name, as on every newsroom page
    # Readers not reached yet, counted now (total - sent - gone - refused), not the waits.
    k = seeded.running
    left = k["total"] - k["sent"] - k["gone"] - k["rejected"] - k["failed"] - k["skipped"]
    assert 0 < left < k["total"] and k["deferred"] > 0, k
    page.wait_for_function("document.getElementById('left-count').textContent !== ''")
    assert page.text_content("#left-count") == page.evaluate("(n) => NotifierI18n.number(n)", left)
    # The push service's hold (seeded: FCM, 429) is named with its end, and the estimate includes it.
    note = page.locator("#deferred-note")
    assert note.is_visible() and "429" in (note.text_content() or "")
    # Row names wrap between words, never inside one.
    widths = page.evaluate(
        """() => [...document.querySelectorAll("#counters th, #browsers th[scope=row]")].map(
             (th) => th.scrollWidth <= th.clientWidth + 1)"""
    )
    assert all(widths), widths
    figures = assert_figures_agree(page)
    assert figures["left"] == left and figures["counters"]["deferred"] == k["deferred"], figures
    tour.check("campaign-running")
    tour.goto(f"/newsroom/campaigns/{ids['done']}", "#campaign-state[data-state=done]")
    page.wait_for_selector("#browsers tbody tr")
    # Services named as ops names them; browsers counted per reader, biggest first.
    assert page.text_content("#services tbody tr[data-key=mozilla] th") == "Mozilla (Firefox)"
    assert page.locator("#browsers tbody tr th").all_text_contents() == ["Chrome (Android)", "Firefox"]
    # Every reader of the finished one is accounted for, once: as many done as it went to.
    figures = assert_figures_agree(page)
    assert figures["done"] == figures["total"] == BREAKING_CHROME + BREAKING_FIREFOX, figures
    tour.check("campaign-done")
    tour.goto("/newsroom/users", "main")
    tour.check("users")
    tour.goto("/newsroom/readers", "#per-reader-default")
    tour.check("readers")

    # Ops with a campaign in flight and a push service asking us to wait (it went on sending meanwhile).
    seeded.catch_up()
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
    # Both are counted on one sample of the subscriptions: both say so, and both add up to it.
    note = page.text_content("#sample-note")
    assert note and page.text_content("#lang-sample-note") == note, note
    sums = page.evaluate(
        """() => ["browsers-table", "langs-table"].map((id) => [...document.querySelectorAll(`#${id} tbody td`)]
             .reduce((n, td) => n + Number(td.textContent.replace(/[^0-9]/g, "")), 0))"""
    )
    sample = page.evaluate("(n) => NotifierI18n.number(n)", min(DEFAULT_SAMPLE, seeded.subscribers + 1))
    assert sums[0] == sums[1] and sample in note, (sums, note)
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
