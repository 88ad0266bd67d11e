/*
 * The notifier service worker code: one file for notifier's own origin and every publisher's origin.
 *
 * It is never registered directly. A *loader* (web/serviceworker.py) is: /sw.js on notifier's origin,
 * or /sw/<site>.js imported by the one-line /notifier-sw.js a publisher hosts at its root. The loader
 * sets self.NOTIFIER_CONFIG and then importScripts() /sw/worker.<version>.js, which is web/static/js/
 * i18n.js followed by this file (version: a hash of both). self.NOTIFIER_CONFIG:
 *
 *   version      this code's version (the widget compares it and asks the browser to update)
 *   site         {id, name, url}: the site whose readers this worker serves; url is its front page
 *   defaultLang  the site's language (a payload without "lang" is shown in it)
 *   catalogs     {lang: compiled catalog} for every language (i18n.js's NotifierI18n.create)
 *   icon, badge  notification icon URLs (absolute on a publisher's origin)
 *   api          {vapidKey, subscriptions, events}: URLs of notifier's API (absolute on a publisher's
 *                origin, answered with CORS for the site's declared origins)
 *   receipts     {retryMs, keepMs}: how long a receipt is retried within one event, then kept
 *
 * push                    always shows a notification (a generic one when the payload is missing or
 *                         malformed), from a Declarative Web Push message or the earlier flat payload,
 *                         then reports "shown" for a campaign (retried with backoff, see report())
 * notificationclick       focuses a tab already on the article or opens it, then reports "clicked"
 * pushsubscriptionchange  posts the new subscription (subscribing again when the browser gave none) as
 *                         "replaces" the old endpoint: the server swaps it in place, topics and site kept
 * message                 {type: "notifier:version"} on a MessagePort: answers {version, site}
 */
"use strict";

var CONFIG = self.NOTIFIER_CONFIG;

/* A URL of notifier's API with query parameters added (the configured URL may carry ?site= already). */
function apiUrl(url, params) {
  var parsed = new URL(url, self.location.href);
  Object.keys(params || {}).forEach(function (name) { parsed.searchParams.set(name, params[name]); });
  return parsed.href;
}

/* The site's front page: where a notification without a usable URL leads. */
function frontPage() {
  return new URL(CONFIG.site.url || "/", self.location.origin).href;
}

self.addEventListener("install", function () {
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(self.clients.claim());
});

var TRANSLATORS = {};

/* gettext for one language (the service worker serves readers of every language at once). */
function i18nFor(lang) {
  if (!TRANSLATORS[lang]) {
    TRANSLATORS[lang] = self.NotifierI18n.create(CONFIG.catalogs[lang] || CONFIG.catalogs[CONFIG.defaultLang]);
  }
  return TRANSLATORS[lang];
}

/*
 * The decrypted payload as { title, options } source fields, or null when it is missing or unusable.
 *
 * Two formats: the Declarative Web Push message that notifier sends ({"web_push": 8030, "notification":
 * {...}, "app_badge", "mutable"}: Safari 18.4+ shows it by itself, and hands it here first because it is
 * "mutable"), and the flat {"title", "body", "url", ...} of earlier releases, still in flight for a day
 * after an upgrade (a message waits at the push service until its TTL).
 */
function parsePayload(event) {
  if (!event.data) { return null; }
  var payload;
  try {
    payload = event.data.json();
  } catch (e) {
    return null;
  }
  if (!payload || typeof payload !== "object") { return null; }
  if (payload.web_push === 8030) {
    var note = payload.notification;
    if (!note || typeof note !== "object" || typeof note.title !== "string" || !note.title) { return null; }
    var data = note.data && typeof note.data === "object" ? note.data : {};
    return {
      title: note.title,
      body: note.body,
      url: note.navigate,
      lang: note.lang,
      dir: note.dir,
      tag: note.tag,
      image: note.image,
      icon: note.icon,
      badge: note.badge,
      vibrate: note.vibrate,
      timestamp: note.timestamp,
      renotify: note.renotify,
      silent: note.silent,
      requireInteraction: note.requireInteraction,
      actions: note.actions,
      cid: data.cid,
      sid: data.sid,
      rt: data.rt,
      appBadge: payload.app_badge
    };
  }
  if (typeof payload.title !== "string" || !payload.title) { return null; }
  return {
    title: payload.title,
    body: payload.body,
    url: payload.url,
    lang: payload.lang,
    tag: payload.tag,
    image: payload.image,
    icon: payload.icon,
    badge: payload.badge,
    // Seconds in the flat format.
    timestamp: typeof payload.ts === "number" && payload.ts < 1e12 ? payload.ts * 1000 : payload.ts,
    renotify: payload.renotify,
    cid: payload.cid,
    sid: payload.sid,
    rt: payload.rt
  };
}

/* An absolute http(s) URL for the notification to open; the site's front page for anything else. */
function articleUrl(url) {
  try {
    var parsed = new URL(url, self.location.origin);
    if (parsed.protocol === "https:" || parsed.protocol === "http:") { return parsed.href; }
  } catch (e) { /* fall through to the front page */ }
  return frontPage();
}

function optionalString(value) {
  return typeof value === "string" && value ? value : undefined;
}

/* The payload's own actions (each opening its own page), else the site's one "read" action. */
function actionsFor(payload, t) {
  var own = [];
  var pages = {};
  if (payload && Array.isArray(payload.actions)) {
    for (var i = 0; i < payload.actions.length; i++) {
      var a = payload.actions[i];
      if (a && optionalString(a.action) && typeof a.title === "string") {
        var entry = { action: a.action, title: a.title };
        if (optionalString(a.icon)) { entry.icon = a.icon; }
        own.push(entry);
        pages[a.action] = articleUrl(a.navigate || payload.url);
      }
    }
  }
  if (own.length) { return { actions: own, pages: pages }; }
  return { actions: [{ action: "read", title: t.gettext("Read") }], pages: {} };
}

/* Title and showNotification options for a payload (null: the generic notification). */
function notificationFor(payload) {
  var lang = payload && CONFIG.catalogs[payload.lang] ? payload.lang : CONFIG.defaultLang;
  var t = i18nFor(lang);
  if (!payload) {
    return {
      title: CONFIG.site.name,
      options: {
        body: t.gettext("There is news for you. Tap to read it."),
        icon: CONFIG.icon,
        badge: CONFIG.badge,
        lang: lang,
        tag: "notifier-generic",
        data: { url: frontPage() },
        actions: actionsFor(null, t).actions
      }
    };
  }
  var chosen = actionsFor(payload, t);
  var options = {
    body: typeof payload.body === "string" ? payload.body : "",
    icon: optionalString(payload.icon) || CONFIG.icon,
    badge: optionalString(payload.badge) || CONFIG.badge,
    // A declared language the worker has no strings for still labels the text correctly.
    lang: optionalString(payload.lang) || lang,
    data: {
      url: articleUrl(payload.url),
      cid: optionalString(payload.cid),
      sid: optionalString(payload.sid),
      rt: optionalString(payload.rt),
      pages: chosen.pages
    },
    actions: chosen.actions
  };
  if (payload.dir === "ltr" || payload.dir === "rtl" || payload.dir === "auto") { options.dir = payload.dir; }
  if (optionalString(payload.image)) { options.image = payload.image; }
  // renotify without a tag is a TypeError, so it only travels with one.
  if (optionalString(payload.tag)) {
    options.tag = payload.tag;
    options.renotify = payload.renotify === true;
  }
  if (typeof payload.timestamp === "number" && payload.timestamp > 0) { options.timestamp = payload.timestamp; }
  if (payload.requireInteraction === true) { options.requireInteraction = true; }
  // vibrate with silent is a TypeError: silent wins.
  if (payload.silent === true) {
    options.silent = true;
  } else if (Array.isArray(payload.vibrate) || typeof payload.vibrate === "number") {
    options.vibrate = payload.vibrate;
  }
  return { title: payload.title, options: options };
}

/*
 * Receipts. A receipt is POSTed at once; on 429, a 5xx or a network error it is tried again with
 * exponential backoff and jitter (honouring Retry-After) for as long as the event may keep the worker
 * alive (RECEIPT_RETRY_MS: Firefox ends an event's extension after 30 s). One still not delivered then
 * waits in the Cache Storage outbox and is tried again at the worker's next event (a push, a click, a
 * close), for up to RECEIPT_KEEP_MS after it was made. A 4xx other than 429 is final (a forged or
 * malformed receipt, an unknown campaign): retrying cannot change it.
 */
var RECEIPT_RETRY_MS = (CONFIG.receipts && CONFIG.receipts.retryMs) || 25000;
var RECEIPT_KEEP_MS = (CONFIG.receipts && CONFIG.receipts.keepMs) || 24 * 3600 * 1000;
var RECEIPT_FIRST_DELAY_MS = 1000;
var OUTBOX = "notifier-receipts";

function sleep(ms) {
  return new Promise(function (resolve) { setTimeout(resolve, ms); });
}

/* One attempt: "done" (counted, a repeat, or refused for good) or the milliseconds to wait at least. */
async function postReceipt(body) {
  var response;
  try {
    response = await fetch(CONFIG.api.events, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body)
    });
  } catch (e) {
    return 0;
  }
  if (response.status === 429 || response.status >= 500) {
    var after = Number(response.headers.get("Retry-After"));
    return after > 0 ? after * 1000 : 0;
  }
  return "done";
}

function outboxKey(body) {
  return new Request(self.registration.scope + "__notifier_receipt/" +
    encodeURIComponent(body.type + ":" + body.cid + ":" + body.sid));
}

async function keepForLater(body, made) {
  try {
    var cache = await caches.open(OUTBOX);
    await cache.put(outboxKey(body), new Response(JSON.stringify({ body: body, made: made })));
  } catch (e) { /* no Cache Storage (private mode): the receipt is lost, as before retries existed */ }
}

async function deliverReceipt(body, made) {
  var started = Date.now();
  var delay = RECEIPT_FIRST_DELAY_MS;
  for (;;) {
    var result = await postReceipt(body);
    if (result === "done") { return true; }
    // Full jitter around the backoff: a crowd of readers retrying after one big push spreads out.
    var wait = Math.max(result, delay) * (0.5 + Math.random());
    if (Date.now() + wait - started > RECEIPT_RETRY_MS || Date.now() + wait - made > RECEIPT_KEEP_MS) {
      await keepForLater(body, made);
      return false;
    }
    await sleep(wait);
    delay *= 2;
  }
}

/* Report a receipt for a campaign notification (nothing for the generic one). */
function report(type, data) {
  if (!data || !data.cid) { return Promise.resolve(); }
  return deliverReceipt({ type: type, cid: data.cid, sid: data.sid, rt: data.rt }, Date.now());
}

/* Try each receipt waiting in the outbox once; drop those older than RECEIPT_KEEP_MS. */
async function flushOutbox() {
  var cache;
  try {
    cache = await caches.open(OUTBOX);
  } catch (e) {
    return;
  }
  var requests = await cache.keys();
  for (var i = 0; i < requests.length; i++) {
    var entry = null;
    try {
      entry = await (await cache.match(requests[i])).json();
    } catch (e) { /* unreadable: dropped below */ }
    if (!entry || Date.now() - entry.made > RECEIPT_KEEP_MS || (await postReceipt(entry.body)) === "done") {
      await cache.delete(requests[i]);
    }
  }
}

/* Show the notification for a push; a browser that refuses the options still gets the generic one. */
function showPush(payload) {
  var note = notificationFor(payload);
  if (payload && typeof payload.appBadge === "number" && self.navigator && self.navigator.setAppBadge) {
    self.navigator.setAppBadge(payload.appBadge).catch(function () { /* badging not allowed */ });
  }
  return self.registration.showNotification(note.title, note.options).catch(function () {
    var generic = notificationFor(null);
    return self.registration.showNotification(generic.title, generic.options);
  }).then(function () {
    return Promise.all([report("shown", note.options.data), flushOutbox()]);
  });
}

self.addEventListener("push", function (event) {
  event.waitUntil(showPush(parsePayload(event)));
});

/* Focus an open tab already showing the article, else open it in a new one; then report the click. */
function openArticle(data, action) {
  var pages = (data && data.pages) || {};
  var url = action && pages[action] ? pages[action] : articleUrl(data && data.url);
  return self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
    for (var i = 0; i < windows.length; i++) {
      if (windows[i].url === url && "focus" in windows[i]) { return windows[i].focus(); }
    }
    return self.clients.openWindow(url);
  }).then(function () {
    return report("clicked", data);
  }, function () {
    return report("clicked", data);
  });
}

self.addEventListener("notificationclose", function (event) {
  event.waitUntil(flushOutbox());
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  // The "read" action and a click on the body both open the article. The work starts before
  // waitUntil so that it also runs for a click dispatched by the browser test (an untrusted event,
  // on which waitUntil throws): no browser can click a notification under automation.
  var opening = Promise.all([openArticle(event.notification.data || {}, event.action), flushOutbox()]);
  event.waitUntil(opening);
});

function b64urlToBytes(text) {
  var padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  var raw = atob(padded);
  var out = new Uint8Array(raw.length);
  for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
  return out;
}

function bytesToB64url(buffer) {
  var bytes = new Uint8Array(buffer);
  var raw = "";
  for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
  return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function sendJSON(method, body) {
  return fetch(CONFIG.api.subscriptions, {
    method: method,
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body)
  });
}

/* The site's current VAPID key (bytes), or null when it cannot be fetched. */
async function currentKey() {
  try {
    var response = await fetch(CONFIG.api.vapidKey, { cache: "no-store", credentials: "same-origin" });
    if (response.ok) { return b64urlToBytes((await response.json()).publicKey); }
  } catch (e) { /* offline: the caller falls back to the old subscription's key */ }
  return null;
}

/* POST a subscription, again after a network error or a 5xx (the event may keep the worker up to ~30 s). */
async function postSubscription(body) {
  var delay = 1000;
  for (var attempt = 1; ; attempt++) {
    try {
      var response = await sendJSON("POST", body);
      if (response.ok || (response.status < 500 && response.status !== 429) || attempt >= 4) { return response; }
    } catch (e) {
      if (attempt >= 4) { throw e; }
    }
    await sleep(delay * (0.5 + Math.random()));
    delay *= 2;
  }
}

/*
 * The push service replaced or dropped the subscription (pushsubscriptionchange). Chrome (138+) hands over
 * the new one; Firefox hands over only the old one (it dropped every subscription when its push server
 * gave it a new user agent id), so the worker subscribes again, with the site's current key (else the old
 * one's). The new subscription is posted with "replaces": the server puts it in the old one's place, with
 * its id, topics, language and site, in one step: the reader is never stored twice, nor lost in between.
 */
async function resubscribe(oldSubscription, newSubscription) {
  var subscription = newSubscription;
  if (!subscription) {
    var key = await currentKey();
    if (!key) { key = oldSubscription && oldSubscription.options && oldSubscription.options.applicationServerKey; }
    subscription = await self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  }
  var body = Object.assign({}, subscription.toJSON());
  var used = subscription.options && subscription.options.applicationServerKey;
  if (used) { body.applicationServerKey = bytesToB64url(used); }
  if (oldSubscription && oldSubscription.endpoint && oldSubscription.endpoint !== subscription.endpoint) {
    body.replaces = oldSubscription.endpoint;
  }
  await postSubscription(body);
}

self.addEventListener("pushsubscriptionchange", function (event) {
  event.waitUntil(resubscribe(event.oldSubscription, event.newSubscription));
});

/* The widget asks which code this worker runs, to have the browser update it after a deploy. */
self.addEventListener("message", function (event) {
  var port = event.ports && event.ports[0];
  if (port && event.data && event.data.type === "notifier:version") {
    port.postMessage({ version: CONFIG.version, site: CONFIG.site.id });
  }
});
