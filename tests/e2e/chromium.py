"""Chromium helpers the browser tests share: the narrow stubs for what Chromium cannot do offline, and CDP.

Chromium needs Google's push service to make a real subscription, and headless Chromium dismisses the
permission prompt at once, so (installed before any page script runs):

- ``PushManager.prototype.subscribe``/``getSubscription`` return a browser-shaped subscription (an FCM
  endpoint and real P-256 keys made here);
- ``Notification.requestPermission`` stands for the native prompt: it counts its calls and resolves with
  the reader's answer, which the test gives through CDP ``Browser.setPermission``.

Pushes are real push events (CDP ``ServiceWorker.deliverPushMessage``) into the real service worker. No
browser can click a notification under automation: :data:`CLICK_IN_WORKER` dispatches a
``NotificationEvent`` carrying the real notification inside the service worker, with
``clients.openWindow`` / ``WindowClient.focus`` replaced by recorders there.
"""

from __future__ import annotations

import json
import secrets
import time
import weakref
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notifier.crypto import b64url_encode
from notifier.polling import wait_for

#: Installed before any page script runs (see the module docstring). ``__NOTIFIER_TEST__`` holds the
#: subscription JSON; subscriptions persist in localStorage so reloads see them, like the real thing.
BROWSER_STUBS = """
(() => {
  const test = window.__NOTIFIER_TEST__;
  const STORE = "test:push-subscription";
  window.__permissionRequests = 0;
  function toB64url(buffer) {
    let raw = "";
    new Uint8Array(buffer).forEach((b) => { raw += String.fromCharCode(b); });
    return btoa(raw).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  }
  function fromB64url(text) {
    const raw = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
  }
  function subscription(stored) {
    return {
      endpoint: stored.json.endpoint,
      expirationTime: null,
      options: { userVisibleOnly: true, applicationServerKey: fromB64url(stored.key) },
      toJSON() { return JSON.parse(JSON.stringify(stored.json)); },
      async unsubscribe() { localStorage.removeItem(STORE); return true; },
    };
  }
  if (window.PushManager) {
    PushManager.prototype.subscribe = async function (options) {
      if (Notification.permission !== "granted") { throw new DOMException("permission", "NotAllowedError"); }
      const calls = Number(sessionStorage.getItem("test:subscribe-calls") || 0) + 1;
      sessionStorage.setItem("test:subscribe-calls", String(calls));
      const stored = { json: test.subscription, key: toB64url(options.applicationServerKey) };
      localStorage.setItem(STORE, JSON.stringify(stored));
      return subscription(stored);
    };
    PushManager.prototype.getSubscription = async function () {
      const raw = localStorage.getItem(STORE);
      return raw ? subscription(JSON.parse(raw)) : null;
    };
  }
  if (window.Notification) {
    Notification.requestPermission = function () {
      window.__permissionRequests += 1;
      return new Promise((resolve) => {
        const answered = () => {
          if (Notification.permission !== "default") { resolve(Notification.permission); }
          else { setTimeout(answered, 25); }
        };
        answered();
      });
    };
  }
})();
"""


def browser_subscription() -> dict[str, Any]:
    """A ``PushSubscription.toJSON()`` as Chrome makes it: an FCM endpoint and real P-256 keys."""
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    token = b64url_encode(secrets.token_bytes(16)) + ":APA91b" + b64url_encode(secrets.token_bytes(96))
    return {
        "endpoint": "https://fcm.googleapis.com/fcm/send/" + token,
        "expirationTime": None,
        "keys": {"p256dh": b64url_encode(point), "auth": b64url_encode(secrets.token_bytes(16))},
    }


def wait_until(
    predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition", page: Any = None
) -> Any:
    """:func:`notifier.polling.wait_for`; with ``page``, it waits through Playwright, which is when the sync
    API delivers CDP events and runs route handlers. 30 s by default: on 2 shared cores under a full test run
    a service worker's push can take more than 10 s to show, and waiting longer costs a passing test nothing."""
    sleep = (lambda seconds: page.wait_for_timeout(seconds * 1000)) if page is not None else time.sleep
    return wait_for(predicate, timeout, message=what, sleep=sleep)


def prepare(browser_context: Any, subscription: dict[str, Any]) -> Any:
    """Install the stubs in ``browser_context`` and return its page."""
    browser_context.add_init_script(
        script=f"window.__NOTIFIER_TEST__ = {json.dumps({'subscription': subscription})};\n" + BROWSER_STUBS
    )
    page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
    # Shown with a failing test's captured output.
    page.on("console", lambda message: print(f"console.{message.type}: {message.text}"))
    page.on("pageerror", lambda error: print(f"page error: {error}"))
    return page


#: One CDP session per page, kept attached: Chromium drops a session's permission overrides when it detaches.
_CDP_SESSIONS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def cdp_for(browser_context: Any, page: Any) -> Any:
    """The page's CDP session (made on first use)."""
    if page not in _CDP_SESSIONS:
        _CDP_SESSIONS[page] = browser_context.new_cdp_session(page)
    return _CDP_SESSIONS[page]


def set_permission(browser_context: Any, page: Any, origin: str, setting: str) -> None:
    """Set the notification permission for ``origin`` the way the browser's own settings would."""
    cdp_for(browser_context, page).send(
        "Browser.setPermission",
        {"permission": {"name": "notifications"}, "setting": setting, "origin": origin},
    )


def registration_id(browser_context: Any, page: Any, origin: str) -> tuple[Any, str]:
    """A CDP session with the ServiceWorker domain on, and the id of the root-scope registration."""
    cdp = cdp_for(browser_context, page)
    registrations: dict[str, str] = {}

    def updated(event: dict[str, Any]) -> None:
        for reg in event["registrations"]:
            if not reg.get("isDeleted"):
                registrations[reg["scopeURL"]] = reg["registrationId"]

    cdp.on("ServiceWorker.workerRegistrationUpdated", updated)
    cdp.send("ServiceWorker.enable")
    scope = origin + "/"
    wait_until(lambda: scope in registrations, what="the service worker registration", page=page)
    return cdp, registrations[scope]


def notifications(page: Any) -> list[dict[str, Any]]:
    """The notifications the service worker shows right now."""
    return list(
        page.evaluate(
            """async () => {
                const reg = await navigator.serviceWorker.ready;
                return (await reg.getNotifications()).map((n) => ({
                    title: n.title, body: n.body, tag: n.tag, data: n.data,
                    actions: n.actions.map((a) => a.action), icon: n.icon, badge: n.badge,
                    image: n.image, lang: n.lang, dir: n.dir, renotify: n.renotify,
                    timestamp: n.timestamp, requireInteraction: n.requireInteraction,
                }));
            }"""
        )
    )


def record_events(browser_context: Any) -> list[dict[str, Any]]:
    """Receipts the service worker POSTs to /api/v1/events (answered here, whatever the app serves)."""
    seen: list[dict[str, Any]] = []

    def handle(route: Any) -> None:
        seen.append(json.loads(route.request.post_data or "{}"))
        route.fulfill(status=204, body="")

    browser_context.route("**/api/v1/events", handle)
    return seen


CLICK_IN_WORKER = """async (tag) => {
    const opened = [];
    const focused = [];
    self.clients.openWindow = async (url) => { opened.push(url); return null; };
    WindowClient.prototype.focus = async function () { focused.push(this.url); return this; };
    const [notification] = await self.registration.getNotifications({ tag });
    try {
        self.dispatchEvent(new NotificationEvent("notificationclick", { notification, action: "read" }));
    } catch (e) { /* waitUntil refuses an untrusted event; the handler's work has started already */ }
    for (let i = 0; i < 200 && !opened.length && !focused.length; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const left = await self.registration.getNotifications({ tag });
    return { opened, focused, left: left.length };
}"""
