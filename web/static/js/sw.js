/*
 * The notifier service worker, served as /sw.js (root scope). The route prepends self.NOTIFIER_CONFIG
 * (the site name, every language's compiled catalog, icon paths and API paths) and i18n.js.
 *
 * push                    always shows a notification (a generic one when the payload is missing or
 *                         malformed), then reports "shown" for a campaign
 * notificationclick       focuses a tab already on the article or opens it, then reports "clicked"
 * pushsubscriptionchange  subscribes again with the same key and stores the new subscription with the
 *                         old one's topics
 */
"use strict";

var CONFIG = self.NOTIFIER_CONFIG;

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

/* The decrypted payload when it is a usable object with a title, else null. */
function parsePayload(event) {
  if (!event.data) { return null; }
  var payload;
  try {
    payload = event.data.json();
  } catch (e) {
    return null;
  }
  if (!payload || typeof payload !== "object" || typeof payload.title !== "string" || !payload.title) {
    return null;
  }
  return payload;
}

/* An absolute http(s) URL for the notification to open; the site's front page for anything else. */
function articleUrl(url) {
  try {
    var parsed = new URL(url, self.location.origin);
    if (parsed.protocol === "https:" || parsed.protocol === "http:") { return parsed.href; }
  } catch (e) { /* fall through to the front page */ }
  return new URL("/", self.location.origin).href;
}

function optionalString(value) {
  return typeof value === "string" && value ? value : undefined;
}

/* Title and showNotification options for a payload (null: the generic notification). */
function notificationFor(payload) {
  var lang = payload && CONFIG.catalogs[payload.lang] ? payload.lang : CONFIG.defaultLang;
  var t = i18nFor(lang);
  var actions = [{ action: "read", title: t.gettext("Read") }];
  if (!payload) {
    return {
      title: CONFIG.site,
      options: {
        body: t.gettext("There is news for you. Tap to read it."),
        icon: CONFIG.icon,
        badge: CONFIG.badge,
        lang: lang,
        tag: "notifier-generic",
        data: { url: articleUrl("/") },
        actions: actions
      }
    };
  }
  var options = {
    body: typeof payload.body === "string" ? payload.body : "",
    icon: optionalString(payload.icon) || CONFIG.icon,
    badge: optionalString(payload.badge) || CONFIG.badge,
    lang: lang,
    data: {
      url: articleUrl(payload.url),
      cid: optionalString(payload.cid),
      sid: optionalString(payload.sid),
      rt: optionalString(payload.rt)
    },
    actions: actions
  };
  if (optionalString(payload.image)) { options.image = payload.image; }
  // renotify without a tag is a TypeError, so it only travels with one.
  if (optionalString(payload.tag)) {
    options.tag = payload.tag;
    options.renotify = payload.renotify === true;
  }
  if (typeof payload.ts === "number" && payload.ts > 0) {
    options.timestamp = payload.ts < 1e12 ? payload.ts * 1000 : payload.ts;
  }
  return { title: payload.title, options: options };
}

/* POST a receipt to /api/v1/events for a campaign notification; failures are ignored. */
function report(type, data) {
  if (!data || !data.cid) { return Promise.resolve(); }
  return fetch(CONFIG.api.events, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify({ type: type, cid: data.cid, sid: data.sid, rt: data.rt })
  }).then(function () { return undefined; }, function () { return undefined; });
}

/* Show the notification for a push; a browser that refuses the options still gets the generic one. */
function showPush(payload) {
  var note = notificationFor(payload);
  return self.registration.showNotification(note.title, note.options).catch(function () {
    var generic = notificationFor(null);
    return self.registration.showNotification(generic.title, generic.options);
  }).then(function () {
    return report("shown", note.options.data);
  });
}

self.addEventListener("push", function (event) {
  event.waitUntil(showPush(parsePayload(event)));
});

/* Focus an open tab already showing the article, else open it in a new one; then report the click. */
function openArticle(data) {
  var url = articleUrl(data && data.url);
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

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  // The "read" action and a click on the body both open the article. The work starts before
  // waitUntil so that it also runs for a click dispatched by the browser test (an untrusted event,
  // on which waitUntil throws): no browser can click a notification under automation.
  var opening = openArticle(event.notification.data || {});
  event.waitUntil(opening);
});

function b64urlToBytes(text) {
  var padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  var raw = atob(padded);
  var out = new Uint8Array(raw.length);
  for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
  return out;
}

function sendJSON(method, body) {
  return fetch(CONFIG.api.subscriptions, {
    method: method,
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body)
  });
}

/* Subscribe again after the push service dropped or rotated the subscription, keeping its topics. */
async function resubscribe(oldSubscription, newSubscription) {
  var kept = null;
  if (oldSubscription) {
    try {
      var response = await fetch(
        CONFIG.api.subscriptions + "?endpoint=" + encodeURIComponent(oldSubscription.endpoint),
        { cache: "no-store", credentials: "same-origin" }
      );
      if (response.ok) { kept = await response.json(); }
    } catch (e) { /* topics unknown: the new subscription starts with none */ }
  }
  var subscription = newSubscription;
  if (!subscription) {
    var key = oldSubscription && oldSubscription.options && oldSubscription.options.applicationServerKey;
    if (!key) {
      var keyResponse = await fetch(CONFIG.api.vapidKey, { cache: "no-store", credentials: "same-origin" });
      key = b64urlToBytes((await keyResponse.json()).publicKey);
    }
    subscription = await self.registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: key
    });
  }
  var body = Object.assign({}, subscription.toJSON());
  if (kept) {
    body.topics = kept.topics;
    body.lang = kept.lang;
  }
  await sendJSON("POST", body);
  if (oldSubscription && oldSubscription.endpoint !== subscription.endpoint) {
    await sendJSON("DELETE", { endpoint: oldSubscription.endpoint });
  }
}

self.addEventListener("pushsubscriptionchange", function (event) {
  event.waitUntil(resubscribe(event.oldSubscription, event.newSubscription));
});
