/*
 * Push helpers shared by the public pages and the embed: feature checks, the service worker, subscribing,
 * and keeping the server's copy of this browser's subscription current. No reader-facing text lives in
 * this file (the scripts use NotifierI18n from i18n.js).
 *
 * NotifierPush is the helpers for notifier's own pages, made from the JSON block #notifier-page;
 * NotifierPush.create(data) makes them for other data: the embed's (API URLs on notifier's origin, the
 * publisher's worker file). data: { api: { vapidKey, subscriptions }, sw, scope?, defaultTopics? }.
 * The embed bundle (web/embed.py) defines NOTIFIER_SCOPE, so nothing lands on the publisher's window.
 */
(function (global) {
  "use strict";

  var STORE = {
    topics: "notifier:topics",
    key: "notifier:vapidKey",
    optedOut: "notifier:optedOut"
  };

  function readPageData() {
    var el = document.getElementById("notifier-page");
    return el ? JSON.parse(el.textContent) : {};
  }

  // localStorage throws in some private modes; the flow works without it, only less smoothly.
  function storeGet(name) {
    try { return window.localStorage.getItem(name); } catch (e) { return null; }
  }
  function storeSet(name, value) {
    try { window.localStorage.setItem(name, value); } catch (e) { /* not persisted */ }
  }
  function storeRemove(name) {
    try { window.localStorage.removeItem(name); } catch (e) { /* not persisted */ }
  }

  function isIOS() {
    var ua = navigator.userAgent;
    // iPadOS 13+ sends a desktop Safari user agent; touch points give it away.
    return /iPhone|iPad|iPod/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1);
  }

  function isStandalone() {
    return navigator.standalone === true ||
      (typeof window.matchMedia === "function" && window.matchMedia("(display-mode: standalone)").matches);
  }

  function supported() {
    return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  }

  function permission() {
    return "Notification" in window ? window.Notification.permission : "unsupported";
  }

  /* Mirrors notifier.browsers.detect_browser, plus what only the page can see (iPadOS, Edge's brands). */
  function detectBrowser(ua, fallback) {
    ua = ua || "";
    if (ua.indexOf("SamsungBrowser/") !== -1) { return "samsung"; }
    var brands = (navigator.userAgentData && navigator.userAgentData.brands) || [];
    var edgeBrand = brands.some(function (b) { return /Edge/.test(b.brand); });
    if (edgeBrand || /Edg(A|iOS)?\//.test(ua)) { return "edge"; }
    if (/Firefox\/|FxiOS\//.test(ua)) { return "firefox"; }
    if (isIOS()) { return "safari-ios"; }
    if (/Chrom(e|ium)\//.test(ua)) { return /Android/.test(ua) ? "chrome-android" : "chrome-desktop"; }
    if (/Safari\//.test(ua) && /Macintosh/.test(ua)) { return "safari-macos"; }
    return fallback || "other";
  }

  /*
   * The built-in browser of a social or messaging app ({ app, os }), or null. Their web views have no push
   * (Android WebViews announce themselves with "; wv)"), so the reader is sent to a real browser.
   */
  function inAppBrowser(ua) {
    ua = ua || "";
    var apps = [
      [/FBAN|FBAV|FB_IAB|FB4A/, "Facebook"], [/Instagram/, "Instagram"], [/\bLine\//, "LINE"],
      [/musical_ly|BytedanceWebview|TikTok/, "TikTok"], [/Twitter/, "X"], [/Snapchat/, "Snapchat"],
      [/Pinterest/, "Pinterest"], [/GSA\//, "Google"]
    ];
    var android = /Android/.test(ua);
    var ios = /iPhone|iPad|iPod/.test(ua);
    for (var i = 0; i < apps.length; i++) {
      if (apps[i][0].test(ua) && (android || ios)) { return { app: apps[i][1], os: android ? "android" : "ios" }; }
    }
    if (android && /; wv\)/.test(ua)) { return { app: "", os: "android" }; }
    return null;
  }

  /*
   * The way out of an in-app browser ({ app, os } of inAppBrowser) for the page `href`: { browser, href }.
   * Android hands an intent: URL to Chrome, or to the reader's default browser (browser_fallback_url) when
   * Chrome is absent; iOS gets Safari's x-safari- link (the app's own "Open in Safari" steps are shown too).
   * /langganan and the embed share it, so both send a reader out the same way.
   */
  function inAppExit(app, href) {
    if (app && app.os === "android") {
      var scheme = href.split(":", 1)[0];
      return {
        browser: "chrome",
        href: "intent://" + href.replace(/^https?:\/\//, "") + "#Intent;scheme=" + scheme +
          ";package=com.android.chrome;S.browser_fallback_url=" + encodeURIComponent(href) + ";end"
      };
    }
    return { browser: "safari", href: "x-safari-" + href };
  }

  /* Which Home Screen steps an iPhone or iPad reader needs: Safari's, Chrome's or another browser's. */
  function iosBrowser(ua) {
    if (/CriOS\//.test(ua || "")) { return "chrome"; }
    if (/FxiOS\/|EdgiOS\/|OPiOS\/|YaBrowser\//.test(ua || "")) { return "other"; }
    return "safari";
  }

  function b64urlToBytes(text) {
    var padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = window.atob(padded);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }

  function bytesToB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return window.btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function sendJSON(url, method, body) {
    return fetch(url, {
      method: method,
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body)
    });
  }

  function HttpError(response) {
    this.name = "HttpError";
    this.status = response.status;
    this.message = response.url + " answered " + response.status;
  }
  HttpError.prototype = Object.create(Error.prototype);

  /* Ask for permission; copes with Safari's old callback form of requestPermission. */
  function requestPermission() {
    return new Promise(function (resolve) {
      var maybe = window.Notification.requestPermission(resolve);
      if (maybe && typeof maybe.then === "function") { maybe.then(resolve, function () { resolve(permission()); }); }
    });
  }

  // PermissionStatus objects are kept referenced: a collected one stops firing "change".
  var permissionStatuses = [];

  /* Call onChange(state) whenever the notification permission changes (Permissions API, where present). */
  function watchPermission(onChange) {
    if (!navigator.permissions || typeof navigator.permissions.query !== "function") { return; }
    navigator.permissions.query({ name: "notifications" }).then(function (status) {
      permissionStatuses.push(status);
      status.addEventListener("change", function () { onChange(permission()); });
    }, function () { /* Safari before 16 cannot query notifications; the "check again" button remains */ });
  }

  /* A URL with query parameters added (an API URL may carry ?site= already). */
  function withQuery(url, params) {
    var parsed = new URL(url, window.location.href);
    Object.keys(params).forEach(function (name) { parsed.searchParams.set(name, params[name]); });
    return parsed.href;
  }

  /* The helpers for one set of data (API URLs, worker file, default topics). */
  function create(data) {
    async function vapidKey() {
      var response = await fetch(data.api.vapidKey, { cache: "no-store", credentials: "same-origin" });
      if (!response.ok) { throw new HttpError(response); }
      return (await response.json()).publicKey.replace(/=+$/, "");
    }

    /*
     * Register the worker file at the root scope and wait until it is active (subscribing needs an active
     * worker). updateViaCache "none": update checks never take the file or its imports from the HTTP cache.
     */
    async function registration() {
      await navigator.serviceWorker.register(data.sw, { scope: data.scope || "/", updateViaCache: "none" });
      return navigator.serviceWorker.ready;
    }

    async function current() {
      if (!supported()) { return null; }
      var reg = await navigator.serviceWorker.getRegistration(data.scope || "/");
      if (!reg) { return null; }
      return { registration: reg, subscription: await reg.pushManager.getSubscription() };
    }

    function keyMatches(subscription, key) {
      var used = subscription.options && subscription.options.applicationServerKey;
      if (used) { return bytesToB64url(used) === key; }
      return storeGet(STORE.key) === key;
    }

    function localTopics() {
      var raw = storeGet(STORE.topics);
      if (!raw) { return null; }
      try {
        var topics = JSON.parse(raw);
        return Array.isArray(topics) ? topics : null;
      } catch (e) {
        return null;
      }
    }

    /* Store the subscription with its topics; ``replaces``: the endpoint of the one it takes the place of. */
    async function postSubscription(subscription, topics, lang, replaces) {
      var body = Object.assign({}, subscription.toJSON(), { topics: topics, lang: lang });
      if (replaces && replaces !== subscription.endpoint) { body.replaces = replaces; }
      // The key it is bound to: the server records it (a key rotated meanwhile is not this one).
      var used = subscription.options && subscription.options.applicationServerKey;
      if (used) { body.applicationServerKey = bytesToB64url(used); }
      var response = await sendJSON(data.api.subscriptions, "POST", body);
      if (!response.ok) { throw new HttpError(response); }
      var stored = await response.json();
      storeSet(STORE.topics, JSON.stringify(stored.topics || topics));
      return stored;
    }

    /* The topics the server has for this endpoint; the locally remembered ones when it has none. */
    async function serverTopics(endpoint) {
      var response = await fetch(withQuery(data.api.subscriptions, { endpoint: endpoint }), {
        cache: "no-store", credentials: "same-origin"
      });
      if (response.ok) { return (await response.json()).topics; }
      if (response.status === 404) { return localTopics() || data.defaultTopics || []; }
      throw new HttpError(response);
    }

    async function forgetOnServer(endpoint) {
      var response = await sendJSON(data.api.subscriptions, "DELETE", { endpoint: endpoint });
      if (!response.ok && response.status !== 404) { throw new HttpError(response); }
    }

    async function freshSubscription(reg, key) {
      return reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64urlToBytes(key) });
    }

    /* Subscribe this browser (permission must already be granted) and store it with its topics. */
    async function subscribe(topics, lang) {
      var reg = await registration();
      var key = await vapidKey();
      var subscription = await reg.pushManager.getSubscription();
      var replaces = null;
      if (subscription && !keyMatches(subscription, key)) {
        replaces = subscription.endpoint;
        await subscription.unsubscribe();
        subscription = null;
      }
      if (!subscription) { subscription = await freshSubscription(reg, key); }
      var stored = await postSubscription(subscription, topics, lang, replaces);
      storeSet(STORE.key, key);
      storeRemove(STORE.optedOut);
      return { subscription: subscription, server: stored };
    }

    /*
     * Re-post this browser's subscription on every visit (the server records when it was last seen), moving
     * it to the site's current VAPID key when the key changed. Resolves to null when not subscribed.
     */
    async function resync(lang) {
      if (!supported() || permission() !== "granted") { return null; }
      var cur = await current();
      if (!cur || !cur.subscription) { return null; }
      var subscription = cur.subscription;
      var topics = await serverTopics(subscription.endpoint);
      var key = await vapidKey();
      var replaces = null;
      if (!keyMatches(subscription, key)) {
        // Bound to a key the site no longer uses (rotated): move to the current key. The new subscription
        // takes the old one's place on the server in one step (same reader, same topics, never two).
        replaces = subscription.endpoint;
        await subscription.unsubscribe();
        subscription = await freshSubscription(cur.registration, key);
        storeSet(STORE.key, key);
      }
      var stored = await postSubscription(subscription, topics, lang, replaces);
      return { subscription: subscription, server: stored };
    }

    /* Change the topics of a stored subscription (re-posting it when the server no longer has it). */
    async function setTopics(subscription, topics, lang) {
      var response = await sendJSON(data.api.subscriptions, "PATCH", {
        endpoint: subscription.endpoint, topics: topics
      });
      if (response.status === 404) { return postSubscription(subscription, topics, lang); }
      if (!response.ok) { throw new HttpError(response); }
      var stored = await response.json();
      storeSet(STORE.topics, JSON.stringify(stored.topics));
      return stored;
    }

    /* Forget the subscription on the server and in the browser, and remember the reader opted out. */
    async function unsubscribe() {
      var cur = await current();
      if (cur && cur.subscription) {
        await forgetOnServer(cur.subscription.endpoint);
        await cur.subscription.unsubscribe();
      }
      storeSet(STORE.optedOut, "1");
    }

    /*
     * Ask the active worker which code it runs ({version}; null when it does not answer) and have the
     * browser look for an update when that is not ``version``: a deploy of notifier reaches this
     * reader's worker now rather than at the browser's next own check.
     */
    async function updateWorker(version) {
      var reg = await navigator.serviceWorker.getRegistration(data.scope || "/");
      if (!reg || !reg.active || !version) { return false; }
      var running = await new Promise(function (resolve) {
        var channel = new MessageChannel();
        var timer = window.setTimeout(function () { resolve(null); }, 3000);
        channel.port1.onmessage = function (event) {
          window.clearTimeout(timer);
          resolve(event.data && event.data.version);
        };
        reg.active.postMessage({ type: "notifier:version" }, [channel.port2]);
      });
      if (running === version) { return false; }
      await reg.update();
      return true;
    }

    return {
      data: data,
      updateWorker: updateWorker,
      isIOS: isIOS,
      isStandalone: isStandalone,
      supported: supported,
      permission: permission,
      detectBrowser: detectBrowser,
      inAppBrowser: inAppBrowser,
      inAppExit: inAppExit,
      iosBrowser: iosBrowser,
      current: current,
      subscribe: subscribe,
      resync: resync,
      setTopics: setTopics,
      unsubscribe: unsubscribe,
      postSubscription: postSubscription,
      requestPermission: requestPermission,
      watchPermission: watchPermission,
      localTopics: localTopics,
      optedOut: function () { return storeGet(STORE.optedOut) === "1"; },
      rememberTopics: function (topics) { storeSet(STORE.topics, JSON.stringify(topics)); }
    };
  }

  var pushForPage = create(readPageData());
  pushForPage.create = create;
  global.NotifierPush = pushForPage;
}(typeof NOTIFIER_SCOPE !== "undefined" ? NOTIFIER_SCOPE : window));
