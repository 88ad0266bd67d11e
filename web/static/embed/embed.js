/*
 * The notifier widget for a publisher's own pages (docs/embed.md). The publisher pastes
 *
 *   <div data-notifier-widget></div>
 *   <script src="https://push.example.com/embed.js" data-site="medcom" async></script>
 *
 * and hosts /notifier-sw.js at its origin's root. Attributes of the script: data-site (required),
 * data-target (a CSS selector of the elements to render into; default [data-notifier-widget], else a new
 * element after the script), data-lang (id or en: the first language shown; default the reader's last
 * choice, else the site's), data-worker (the worker file's path; default /notifier-sw.js).
 *
 * Each widget renders in its own shadow root, so the page's CSS cannot reach it and its CSS cannot leak
 * out; the page may set --notifier-accent (a colour) on the element. The state machine is the one of
 * notifier's /langganan page (web/static/js/optin.js):
 *
 *   checking → inapp | ios | unsupported | default | denied | subscribed
 *   default --(reader presses the button)--> working --(permission)--> subscribed | denied | default
 *   denied  --(permission flips to granted: change event, "check again", returning to the tab)--> subscribed
 *   working --(push service or network failure)--> error --(retry)--> working
 *   subscribed --(change topics or unsubscribe)--> prefs --> subscribed | default (unsubscribed)
 *
 * The browser's permission prompt is only ever requested from the reader's click. Nothing runs before the
 * page has been parsed; the script is async, so it never holds up the page's rendering.
 */
(function (scope) {
  "use strict";

  var script = document.currentScript ||
    document.querySelector('script[data-site][src*="embed.js"]');
  if (!script || !window.fetch || !window.Promise) { return; }
  var SITE = script.getAttribute("data-site") || "";
  var BASE = new URL(".", script.src).href;
  var LANG_KEY = "notifier:lang";
  var widgets = [];

  function storeGet(name) {
    try { return window.localStorage.getItem(name); } catch (e) { return null; }
  }
  function storeSet(name, value) {
    try { window.localStorage.setItem(name, value); } catch (e) { /* not remembered */ }
  }
  function warn(message, error) {
    if (window.console) { window.console.warn("notifier: " + message, error || ""); }
  }

  var CSS = [
    ":host{all:initial!important;display:block!important;contain:content!important;",
    "font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif!important;font-size:medium!important;",
    "line-height:1.5!important;color:#1b1b1b!important;text-align:start!important}",
    ":host([hidden]){display:none!important}",
    "*{box-sizing:border-box}[hidden]{display:none!important}",
    ".box{--a:var(--notifier-accent,#0b5cad);border:1px solid #d5d9de;border-left:4px solid var(--a);",
    "border-radius:8px;background:#fff;padding:1em 1.1em;margin:0;max-width:40em}",
    ".top{display:flex;gap:.5em .75em;align-items:flex-start;justify-content:space-between;flex-wrap:wrap;",
    "margin-bottom:.6em}.top h2{margin:0}.on .top{justify-content:flex-end;margin-bottom:0}",
    "h2{font-size:1.15em;line-height:1.3;margin:0 0 .4em;font-weight:700}",
    "h3{font-size:1em;margin:.2em 0 .4em;font-weight:700}",
    "p,ol,ul{margin:0 0 .7em}ol,ul{padding-left:1.4em}li{margin:.2em 0}",
    ".langs{display:flex;gap:.25em;flex:none}",
    ".langs button{font:inherit;font-size:.8em;min-width:2.75em;min-height:2.75em;padding:0 .5em;",
    "border:1px solid #b9c0c8;border-radius:6px;background:#fff;color:#1b1b1b;cursor:pointer}",
    ".langs button[aria-pressed=true]{background:#1b1b1b;border-color:#1b1b1b;color:#fff}",
    "fieldset{border:0;margin:0 0 .8em;padding:0}legend{font-weight:700;margin-bottom:.4em;padding:0}",
    ".grid{display:flex;flex-wrap:wrap;gap:.4em}",
    ".grid label{display:flex;align-items:center;gap:.45em;min-height:2.75em;padding:.3em .7em;",
    "border:1px solid #c9cfd6;border-radius:6px;cursor:pointer;background:#fafbfc}",
    ".grid input{width:1.15em;height:1.15em;margin:0;accent-color:var(--a)}",
    ".btn{display:inline-flex;align-items:center;justify-content:center;font:inherit;font-weight:700;",
    "min-height:2.75em;padding:.5em 1.1em;border-radius:6px;border:2px solid var(--a);cursor:pointer;",
    "background:var(--a);color:#fff;margin:0 .5em .5em 0;text-decoration:none}",
    ".btn.alt{background:#fff;color:var(--a)}.btn:disabled{opacity:.6;cursor:progress}",
    "button:focus-visible,select:focus-visible,input:focus-visible,summary:focus-visible,a:focus-visible{",
    "outline:3px solid #ffbf47;outline-offset:2px}",
    ".hint{font-size:.875em;color:#4a5560}",
    ".warn{border-left-color:#b45309}.ok{border-left-color:#16794a}",
    "code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;background:#eef1f4;",
    "padding:.05em .3em;border-radius:4px;overflow-wrap:anywhere}.addr code{display:inline-block}",
    "select{font:inherit;min-height:2.75em;padding:0 .4em;margin-left:.3em;max-width:100%;",
    "border:1px solid #b9c0c8;border-radius:6px;background:#fff;color:#1b1b1b}",
    "details{margin:0 0 .7em}summary{cursor:pointer;padding:.55em 0}",
    ".spin{display:inline-block;width:1em;height:1em;margin-right:.5em;vertical-align:-.15em;",
    "border:2px solid #c9cfd6;border-top-color:var(--a);border-radius:50%;animation:r 1s linear infinite}",
    "@keyframes r{to{transform:rotate(360deg)}}",
    "@media (prefers-reduced-motion:reduce){.spin{animation:none}}",
    ".sr{position:absolute!important;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);",
    "white-space:nowrap}.status{margin:0 0 .6em;font-weight:600}"
  ].join("");

  var sheet = null;
  function styleInto(root) {
    // A constructed sheet needs no inline <style> (a page's CSP may forbid those); older browsers get one.
    if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet) {
      try {
        if (!sheet) { sheet = new CSSStyleSheet(); sheet.replaceSync(CSS); }
        root.adoptedStyleSheets = [sheet];
        return;
      } catch (e) { /* fall back to a <style> element */ }
    }
    var style = document.createElement("style");
    style.textContent = CSS;
    root.appendChild(style);
  }

  /* h("p", {class: "hint"}, "text", child...): an element with attributes and children. */
  function h(tag, attrs) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === false || value === null || value === undefined) { return; }
      if (name.slice(0, 2) === "on") { el.addEventListener(name.slice(2), value); } else {
        el.setAttribute(name, value === true ? "" : value);
      }
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) { continue; }
      if (Array.isArray(child)) { child.forEach(function (c) { el.appendChild(c); }); continue; }
      el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return el;
  }

  /* A translated step as nodes: %(origin)s becomes <code>this page's origin</code>. */
  function stepNodes(text, site) {
    var parts = text.replace(/%\(site\)s/g, site).split("%(origin)s");
    var out = [];
    parts.forEach(function (part, i) {
      if (i) { out.push(h("code", null, window.location.origin)); }
      out.push(document.createTextNode(part));
    });
    return out;
  }

  function configUrl(lang) {
    var url = new URL("embed/config", BASE);
    url.searchParams.set("site", SITE);
    if (lang) { url.searchParams.set("lang", lang); }
    return url.href;
  }

  var configs = {};
  function loadConfig(lang) {
    var key = lang || "";
    if (!configs[key]) {
      configs[key] = fetch(configUrl(lang), { credentials: "omit" }).then(function (response) {
        if (!response.ok) { throw new Error(configUrl(lang) + " answered " + response.status); }
        return response.json();
      });
      configs[key].catch(function () { delete configs[key]; });
    }
    return configs[key];
  }

  function Widget(host) {
    var root = host.attachShadow({ mode: "open" });
    styleInto(root);
    var cfg = null;
    var P = null;
    var _ = function (text) { return text; };
    var el = {};
    var current = "checking";
    var busy = null;
    var lastTopics = null;
    var serverTopics = [];
    var subscription = null;
    var family = "other";

    function show(state, message) {
      current = state;
      host.setAttribute("data-state", state);
      Object.keys(el.panels).forEach(function (name) { el.panels[name].hidden = name !== state; });
      el.box.className = "box" + ({ denied: " warn", unsupported: " warn", error: " warn", inapp: " warn",
        subscribed: " ok on" }[state] || "");
      // Once subscribed, the invitation is said to screen readers only: the box shrinks to its state.
      el.heading.className = state === "subscribed" ? "sr" : "";
      var heading = el.panels[state].querySelector("h3");
      // The live region says each change: the extra message when there is one, else the panel's heading.
      el.status.textContent = message || (heading ? heading.textContent : "");
      el.status.className = message ? "status" : "sr";
      if (state !== "denied") { el.checkResult.textContent = ""; }
    }

    function checked(container) {
      var out = [];
      container.querySelectorAll("input:checked").forEach(function (box) { out.push(box.value); });
      return out;
    }

    function topicBoxes(name, chosen) {
      return h("div", { class: "grid" }, cfg.topics.map(function (topic) {
        return h("label", null,
          h("input", { type: "checkbox", name: name, value: topic.slug, checked: chosen.indexOf(topic.slug) !== -1 }),
          h("span", null, topic.name));
      }));
    }

    function topicNames(slugs) {
      var names = {};
      cfg.topics.forEach(function (topic) { names[topic.slug] = topic.name; });
      var chosen = (slugs || []).map(function (slug) { return names[slug] || slug; });
      return _("Topics: %(topics)s", { topics: chosen.length ? chosen.join(", ") :
        _("only the alerts sent to every reader") });
    }

    function showSteps(name) {
      family = cfg.browsers.indexOf(name) === -1 ? "other" : name;
      var steps = cfg.steps[family] || cfg.steps.other;
      var site = cfg.site.name;
      var block = h("div", null,
        h("h4", null, _("Steps for %(browser)s", { browser: cfg.browserNames[family] })),
        h("ol", null, steps.main.map(function (step) { return h("li", null, stepNodes(step, site)); })),
        steps.other.length ? h("details", null, h("summary", null, _("Other ways")),
          h("ul", null, steps.other.map(function (step) { return h("li", null, stepNodes(step, site)); }))) : null);
      el.steps.replaceChildren(block);
      el.browser.value = family;
    }

    /* The in-app browser's way out, as /langganan offers it (P.inAppExit): open in Chrome (Android, an
       intent: link) or Safari (iOS, with the app's own steps), or copy the address. */
    function inAppPanel() {
      var href = window.location.href;
      var exit = P.inAppExit(P.inAppBrowser(navigator.userAgent), href);
      var ios = exit.browser === "safari";
      var copied = h("p", { role: "status", "aria-live": "polite" });
      return h("div", null, h("h3", null, _("Open this page in your browser")),
        h("p", null, _("You are reading inside another app. Its built-in browser cannot show notifications; your phone’s browser can.")),
        h("p", null, h("a", { class: "btn", href: exit.href, "data-exit": exit.browser },
          ios ? _("Open in Safari") : _("Open in Chrome"))),
        ios ? h("ol", null, h("li", null, _("Tap the ⋯ or share button of the app (usually at the top or bottom right).")),
          h("li", null, _("Choose “Open in Safari” (or “Open in browser”)."))) : null,
        h("p", { class: "hint" }, _("Or copy the address and paste it into your browser:"), " ",
          h("code", null, href), " ",
          h("button", { type: "button", class: "btn alt", onclick: function () {
            if (!navigator.clipboard || !navigator.clipboard.writeText) { return; }  // the address is shown
            navigator.clipboard.writeText(href).then(function () {
              copied.textContent = _("Link copied. Paste it into your browser’s address bar.");
            }, function () { /* the address is shown */ });
          } }, _("Copy link"))),
        copied);
    }

    /* Build the panels in the configuration's language (again when the reader switches language). */
    function build() {
      var site = cfg.site.name;
      var chosen = P.localTopics() || cfg.defaultTopics;
      el.status = h("p", { class: "sr", role: "status", "aria-live": "polite", "aria-atomic": "true" });
      el.checkResult = h("p", { role: "status", "aria-live": "polite" });
      el.form = h("form", { onsubmit: onSubmit },
        h("fieldset", null, h("legend", null, _("Topics you want to follow")), topicBoxes("topics", chosen)),
        h("button", { type: "submit", class: "btn" }, _("Turn on notifications")),
        h("p", { class: "hint" }, _("After you press the button, your browser asks for permission. Choose “Allow”.")));
      el.prefsForm = h("form", { onsubmit: onSave },
        h("fieldset", null, h("legend", null, _("Topics you follow")), topicBoxes("follow", serverTopics)),
        h("p", { class: "hint" }, _("With no topic you still get the alerts %(site)s sends to every reader (the biggest breaking news). To get nothing at all, unsubscribe.", { site: site })),
        h("button", { type: "submit", class: "btn" }, _("Save topics")),
        h("button", { type: "button", class: "btn alt", onclick: onUnsubscribe }, _("Unsubscribe")));
      el.topicsLine = h("span");
      el.steps = h("div");
      el.browser = h("select", { id: "browser", onchange: function (event) { showSteps(event.target.value); } },
        cfg.browsers.map(function (name) { return h("option", { value: name }, cfg.browserNames[name]); }));
      el.iosSteps = h("ol");
      el.panels = {
        checking: h("div", null, h("p", { class: "hint" }, _("Checking notification support in your browser…"))),
        default: h("div", null,
          h("p", null, _("Get a notification when important news breaks, right in your browser. Free, no sign-up, and you can turn it off at any time.")),
          el.form),
        working: h("div", null, h("p", null, h("span", { class: "spin", "aria-hidden": "true" }),
          _("Turning on notifications…"))),
        subscribed: h("div", null, h("h3", null, _("Notifications are on")),
          h("p", null, _("You will receive the latest news from %(site)s.", { site: site })),
          h("p", null, el.topicsLine),
          h("button", { type: "button", class: "btn alt", onclick: onManage }, _("Change topics or unsubscribe"))),
        prefs: h("div", null, h("h3", null, _("Notification preferences")), el.prefsForm),
        ios: h("div", null, h("h3", null, _("Add %(site)s to your Home Screen", { site: site })),
          h("p", null, _("On iPhone and iPad, notifications can only be turned on for sites added to the Home Screen (iOS 16.4 or later).")),
          el.iosSteps),
        inapp: inAppPanel(),
        unsupported: h("div", null, h("h3", null, _("This browser does not support notifications yet")),
          h("p", null, _("Your browser does not support web notifications. Try opening %(site)s in a recent Chrome, Firefox, Edge, Samsung Internet or Safari.", { site: site })),
          h("p", { class: "hint" }, _("If you are in incognito or a private window, open this page in a normal window."))),
        denied: h("div", null, h("h3", null, _("Notifications are blocked for this site")),
          h("p", null, _("You (or your browser) blocked notifications from %(site)s before. The browser does not let us ask again, so the permission has to be changed in your browser’s settings.", { site: site })),
          h("p", { class: "addr" }, _("The site address to look for:"), " ", h("code", null, window.location.origin)),
          el.steps,
          h("p", null, h("label", { for: "browser" }, _("Using another browser?")), el.browser),
          h("p", { class: "hint" }, _("This page watches the notification permission. As soon as you choose “Allow”, notifications turn on without pressing anything.")),
          h("button", { type: "button", class: "btn", onclick: function () { evaluate(true, true); } }, _("Check again")),
          el.checkResult),
        error: h("div", null, h("h3", null, _("Notifications could not be turned on")),
          h("p", null, _("Something went wrong while contacting the notification service. Check your internet connection and try again.")),
          h("button", { type: "button", class: "btn", onclick: function () {
            subscribeNow(lastTopics || topicsForAutomaticSubscribe(), false);
          } }, _("Try again")))
      };
      var langs = h("div", { class: "langs", role: "group", "aria-label": _("Language") },
        cfg.langs.map(function (lang) {
          // Shown as "EN", said as "EN English" (an accessible name must contain the visible text).
          return h("button", { type: "button", lang: lang.code, "aria-pressed": String(lang.code === cfg.lang),
            onclick: function () { switchLang(lang.code); } }, lang.code.toUpperCase(),
            h("span", { class: "sr" }, " " + lang.name));
        }));
      el.heading = h("h2", { id: "heading" }, _("Get the latest news from %(site)s", { site: site }));
      el.box = h("section", { class: "box", lang: cfg.lang, "aria-labelledby": "heading" },
        h("div", { class: "top" }, el.heading, langs),
        el.status,
        Object.keys(el.panels).map(function (name) { return el.panels[name]; }));
      Object.keys(el.panels).forEach(function (name) { el.panels[name].setAttribute("data-panel", name); });
      var old = root.querySelector("section");
      if (old) { root.replaceChild(el.box, old); } else { root.appendChild(el.box); }
    }

    function use(config) {
      cfg = config;
      var catalog = scope.NotifierI18n.create(config.catalog || { lang: config.lang, messages: {} });
      _ = catalog.gettext;
      P = scope.NotifierPush.create({
        api: config.api,
        sw: script.getAttribute("data-worker") || config.worker.file,
        defaultTopics: config.defaultTopics
      });
    }

    function switchLang(lang) {
      if (!cfg || lang === cfg.lang) { return; }
      storeSet(LANG_KEY, lang);
      loadConfig(lang).then(function (config) {
        var state = current;
        use(config);
        build();
        if (state === "denied") { showSteps(family); }
        if (state === "subscribed") { el.topicsLine.textContent = topicNames(serverTopics); }
        if (state === "ios") { showIOS(); } else { show(state); }
      }, function (error) { warn("the widget's texts could not be loaded", error); });
    }

    function showDenied(message) {
      if (current !== "denied") { showSteps(P.detectBrowser(navigator.userAgent, "other")); }
      show("denied", message);
    }

    function showSubscribed(topics, message) {
      serverTopics = topics || [];
      el.topicsLine.textContent = topicNames(serverTopics);
      show("subscribed", message);
    }

    function showIOS() {
      var variant = P.iosBrowser(navigator.userAgent);
      var first = {
        safari: _("Tap the Share button (the square with an arrow pointing up) in Safari’s toolbar."),
        chrome: _("Tap the Share button (the square with an arrow pointing up) at the right of Chrome’s address bar."),
        other: _("Open your browser’s menu and choose “Share”, or open this page in Safari.")
      }[variant];
      el.iosSteps.replaceChildren(h("li", null, first), h("li", null, _("Choose “Add to Home Screen”, then tap “Add”.")),
        h("li", null, _("Open %(site)s from the new Home Screen icon, then press “Turn on notifications”.", { site: cfg.site.name })));
      show("ios");
    }

    function changed() {
      widgets.forEach(function (other) { if (other !== api) { other.refresh(); } });
    }

    /* Subscribe with permission already granted; `live` says the reader granted it outside this page. */
    function subscribeNow(topics, live) {
      if (busy) { return busy; }
      lastTopics = topics;
      show("working", _("Turning on notifications…"));
      busy = P.subscribe(topics, cfg.lang).then(function (result) {
        subscription = result.subscription;
        showSubscribed(result.server.topics, live ?
          _("Notifications are now allowed. We turned them on for you; there is nothing else to press.") : "");
        changed();
      }, function (error) {
        warn("subscribing failed", error);
        if (P.permission() === "denied") { showDenied(); } else { show("error"); }
      }).then(function () { busy = null; });
      return busy;
    }

    function topicsForAutomaticSubscribe() {
      return P.localTopics() || checked(el.form);
    }

    /* React to the permission as it is now (change event, "check again", the tab shown again). */
    function evaluate(live, fromButton) {
      if (busy || current === "subscribed" || current === "prefs") { return; }
      var perm = P.permission();
      if (perm === "granted") {
        subscribeNow(topicsForAutomaticSubscribe(), live && current === "denied");
      } else if (perm === "denied") {
        var still = _("Notifications are still blocked. Follow the steps above, then press “Check again”.");
        if (fromButton) {
          showDenied("");
          el.checkResult.textContent = "";
          window.setTimeout(function () { el.checkResult.textContent = still; }, 50);
        } else {
          showDenied(live ? still : "");
        }
      } else if (current !== "default" && current !== "working") {
        show("default");
      }
    }

    function onSubmit(event) {
      event.preventDefault();
      var topics = checked(el.form);
      P.rememberTopics(topics);
      if (P.permission() === "granted") { subscribeNow(topics, false); return; }
      show("working", _("Please answer your browser’s permission request."));
      P.requestPermission().then(function (result) {
        if (result === "granted") {
          subscribeNow(topics, false);
        } else if (result === "denied") {
          showDenied();
        } else if (!busy && current !== "subscribed") {
          show("default", _("The permission request was closed without an answer. Press the button again whenever you are ready."));
        }
      });
    }

    function onManage() {
      el.prefsForm.querySelectorAll("input").forEach(function (box) {
        box.checked = serverTopics.indexOf(box.value) !== -1;
      });
      show("prefs");
      var first = el.prefsForm.querySelector("input");
      if (first) { first.focus(); }
    }

    function onSave(event) {
      event.preventDefault();
      var topics = checked(el.prefsForm);
      P.setTopics(subscription, topics, cfg.lang).then(function (stored) {
        showSubscribed(stored.topics, stored.topics && stored.topics.length ? _("Topics saved.") :
          _("Saved without topics: you will only get the alerts sent to every reader."));
        changed();
      }, function (error) {
        warn("saving topics failed", error);
        el.status.className = "status";
        el.status.textContent = _("Your preferences could not be saved. Check your connection and try again.");
      });
    }

    function onUnsubscribe() {
      P.unsubscribe().then(function () {
        subscription = null;
        serverTopics = [];
        show("default", _("You have unsubscribed. You will not receive notifications from %(site)s anymore.", { site: cfg.site.name }));
        changed();
      }, function (error) {
        warn("unsubscribing failed", error);
        el.status.className = "status";
        el.status.textContent = _("Your preferences could not be saved. Check your connection and try again.");
      });
    }

    async function start() {
      var app = P.inAppBrowser(navigator.userAgent);
      if (app) { show("inapp"); return; }
      if (P.isIOS() && !P.isStandalone()) { showIOS(); return; }
      if (!P.supported()) { show("unsupported"); return; }
      P.watchPermission(function () { evaluate(true); });
      document.addEventListener("visibilitychange", function () {
        if (document.visibilityState === "visible" && current === "denied") { evaluate(false); }
      });
      await refresh();
    }

    /* Show the browser's state as it is now: on load, and when another widget on the page changed it. */
    async function refresh() {
      var perm = P.permission();
      if (perm === "granted") {
        var synced = null;
        try {
          synced = await P.resync(cfg.lang);
        } catch (error) {
          warn("re-posting the subscription failed", error);
        }
        if (synced) {
          subscription = synced.subscription;
          showSubscribed(synced.server.topics, "");
          P.updateWorker(cfg.worker.version).catch(function (error) { warn("the worker update check failed", error); });
          return;
        }
        if (!P.optedOut()) { subscribeNow(topicsForAutomaticSubscribe(), false); return; }
        show("default");
        return;
      }
      if (perm === "denied") { showDenied(); return; }
      show("default");
    }

    var api = {
      refresh: function () { if (cfg && !busy && current !== "prefs") { refresh(); } },
      start: function (config) {
        use(config);
        build();
        show("checking");
        return start();
      }
    };
    return api;
  }

  function targets() {
    var selector = script.getAttribute("data-target") || "[data-notifier-widget]";
    var found = [];
    try { found = Array.prototype.slice.call(document.querySelectorAll(selector)); } catch (e) {
      warn("data-target is not a CSS selector: " + selector, e);
    }
    found = found.filter(function (host) { return !host.shadowRoot; });
    if (!found.length && !document.querySelector("[data-notifier-widget]")) {
      var host = document.createElement("div");
      host.setAttribute("data-notifier-widget", "");
      script.parentNode.insertBefore(host, script.nextSibling);
      found = [host];
    }
    return found;
  }

  function boot() {
    if (!SITE) { warn("the embed script needs data-site=\"<site id>\""); return; }
    var hosts = targets();
    if (!hosts.length || !hosts[0].attachShadow) { return; }
    var wanted = script.getAttribute("data-lang") || storeGet(LANG_KEY) || "";
    loadConfig(wanted).then(function (config) {
      hosts.forEach(function (host) {
        var widget = new Widget(host);
        widgets.push(widget);
        widget.start(config).catch(function (error) { warn("the widget stopped", error); });
      });
    }, function (error) {
      // The page's origin is not one of the site's (CORS refuses it), or notifier is unreachable.
      warn("site " + SITE + " is not available on " + window.location.origin + " (docs/embed.md)", error);
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", boot); } else { boot(); }
}(NOTIFIER_SCOPE));
