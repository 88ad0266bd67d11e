/*
 * The opt-in widget (#optin): a state machine driven by the browser's real state.
 *
 *   checking → unsupported | ios | default | denied | subscribed
 *   default --(reader presses the button)--> working --(permission)--> subscribed | denied | default
 *   denied  --(permission flips to granted: change event, "check again", returning to the tab)--> subscribed
 *   working --(push service or network failure)--> error --(retry)--> working
 *
 * The native permission prompt is only ever requested from the reader's click on the soft prompt.
 */
(function () {
  "use strict";

  var P = window.NotifierPush;
  var root = document.getElementById("optin");
  if (!P || !root) { return; }

  var data = P.data;
  var I18N = window.NotifierI18n;
  var _ = I18N.gettext;
  var compact = root.classList.contains("optin-compact");
  var status = document.getElementById("optin-status");
  var checkResult = document.getElementById("check-result");
  var form = document.getElementById("optin-form");
  var panels = root.querySelectorAll("[data-panel]");
  var busy = null;
  var lastTopics = null;

  function show(state, message) {
    root.setAttribute("data-state", state);
    for (var i = 0; i < panels.length; i++) {
      panels[i].hidden = panels[i].getAttribute("data-panel") !== state;
    }
    var panel = root.querySelector('[data-panel="' + state + '"]');
    var heading = panel && panel.querySelector("h3");
    // The live region announces each change: the extra message when there is one, else the panel's heading.
    status.textContent = message || (heading ? heading.textContent : "");
    status.classList.toggle("visually-hidden", !message);
    if (state !== "denied") { checkResult.textContent = ""; }
  }

  function state() { return root.getAttribute("data-state"); }

  function chosenTopics() {
    var boxes = form.querySelectorAll('input[name="topics"]:checked');
    var out = [];
    for (var i = 0; i < boxes.length; i++) { out.push(boxes[i].value); }
    return out;
  }

  function fillOrigin() {
    var codes = root.querySelectorAll(".js-origin");
    for (var i = 0; i < codes.length; i++) { codes[i].textContent = window.location.origin; }
  }

  function showSteps(family) {
    var blocks = root.querySelectorAll(".browser-steps");
    for (var i = 0; i < blocks.length; i++) {
      blocks[i].hidden = blocks[i].getAttribute("data-browser") !== family;
    }
    var select = document.getElementById("browser-select");
    if (select) { select.value = family; }
  }

  function showDenied(message) {
    fillOrigin();
    if (state() !== "denied") { showSteps(P.detectBrowser(navigator.userAgent, data.browser)); }
    show("denied", message);
  }

  /* Subscribe with permission already granted; `live` says the reader granted it outside this page. */
  function subscribeNow(topics, live) {
    if (busy) { return busy; }
    lastTopics = topics;
    show("working", _("Turning on notifications…"));
    busy = P.subscribe(topics, data.lang).then(function (result) {
      showSubscribed(result.server.topics, live ?
        _("Notifications are now allowed. We turned them on for you; there is nothing else to press.") : "");
    }, function (error) {
      if (window.console) { window.console.error("notifier: subscribing failed", error); }
      if (P.permission() === "denied") { showDenied(); } else { show("error"); }
    }).then(function () { busy = null; });
    return busy;
  }

  /* The subscribed panel; on an article it is one line: "on · topics · change". */
  function showSubscribed(topics, message) {
    var names = {};
    data.topics.forEach(function (t) { names[t.slug] = t.name; });
    var chosen = (topics || []).map(function (slug) { return names[slug] || slug; });
    document.getElementById("optin-topics").textContent = chosen.length ? chosen.join(", ") :
      _("only the alerts sent to every reader");
    root.classList.toggle("optin-on", compact);
    show("subscribed", message);
  }

  function topicsForAutomaticSubscribe() {
    return P.localTopics() || chosenTopics();
  }

  /* React to the permission as it is now (page load, change event, "check again", tab shown again). */
  function evaluate(live, fromButton) {
    if (busy || state() === "subscribed") { return; }
    var perm = P.permission();
    if (perm === "granted") {
      // Only a grant made outside the page (settings, site info) gets the "turned on for you" note.
      subscribeNow(topicsForAutomaticSubscribe(), live && state() === "denied");
    } else if (perm === "denied") {
      var still = _("Notifications are still blocked. Follow the steps above, then press “Check again”.");
      if (fromButton) {
        // Said right under the button the reader just pressed, not at the top of a long panel.
        showDenied("");
        checkResult.textContent = "";
        window.setTimeout(function () { checkResult.textContent = still; }, 50);
      } else {
        showDenied(live ? still : "");
      }
    } else if (state() !== "default" && state() !== "working") {
      show("default");
    }
  }

  function showInApp(app) {
    var open = document.getElementById("inapp-open");
    var href = window.location.href;
    var codes = root.querySelectorAll(".js-href");
    for (var i = 0; i < codes.length; i++) { codes[i].textContent = href; }
    var exit = P.inAppExit(app, href);  // shared with the embed: the same way out on both
    open.href = exit.href;
    if (exit.browser === "chrome") {
      open.textContent = _("Open in Chrome");
    } else {
      open.textContent = _("Open in Safari");
      root.querySelector('[data-inapp="ios"]').hidden = false;
    }
    show("inapp");
  }

  function showIOS() {
    var variant = P.iosBrowser(navigator.userAgent);
    var lists = root.querySelectorAll("[data-ios]");
    for (var i = 0; i < lists.length; i++) { lists[i].hidden = lists[i].getAttribute("data-ios") !== variant; }
    show("ios");
  }

  async function start() {
    var app = P.inAppBrowser(navigator.userAgent);
    if (app) { showInApp(app); return; }
    if (P.isIOS() && !P.isStandalone()) { showIOS(); return; }
    if (!P.supported()) { show("unsupported"); return; }
    P.watchPermission(function () { evaluate(true); });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible" && state() === "denied") { evaluate(false); }
    });
    var perm = P.permission();
    if (perm === "granted") {
      var synced = null;
      try {
        synced = await P.resync(data.lang);
      } catch (error) {
        if (window.console) { window.console.error("notifier: re-posting the subscription failed", error); }
      }
      if (synced) { showSubscribed(synced.server.topics, ""); return; }
      // Granted but not subscribed: subscribe, unless the reader unsubscribed on the preferences page.
      if (!P.optedOut()) { subscribeNow(topicsForAutomaticSubscribe(), false); return; }
      show("default");
      return;
    }
    if (perm === "denied") { showDenied(); return; }
    show("default");
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var topics = chosenTopics();
    P.rememberTopics(topics);
    if (P.permission() === "granted") { subscribeNow(topics, false); return; }
    show("working", _("Please answer your browser’s permission request."));
    P.requestPermission().then(function (result) {
      if (result === "granted") {
        subscribeNow(topics, false);
      } else if (result === "denied") {
        showDenied();
      } else if (!busy && state() !== "subscribed") {
        show("default", _("The permission request was closed without an answer. Press the button again whenever you are ready."));
      }
    });
  });

  document.getElementById("check-again").addEventListener("click", function () { evaluate(true, true); });
  document.getElementById("inapp-copy").addEventListener("click", function () {
    var done = function () { status.textContent = _("Link copied. Paste it into your browser’s address bar."); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(window.location.href).then(done, function () { /* the address is shown */ });
    }
  });
  document.getElementById("optin-retry").addEventListener("click", function () {
    subscribeNow(lastTopics || topicsForAutomaticSubscribe(), false);
  });
  document.getElementById("browser-select").addEventListener("change", function (event) {
    showSteps(event.target.value);
  });

  start();
}());
