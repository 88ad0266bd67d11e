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
  var strings = data.strings;
  var status = document.getElementById("optin-status");
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
    show("working", strings["state.working"]);
    busy = P.subscribe(topics, data.lang).then(function () {
      show("subscribed", live ? strings["state.subscribed_live"] : "");
    }, function (error) {
      if (window.console) { window.console.error("notifier: subscribing failed", error); }
      if (P.permission() === "denied") { showDenied(); } else { show("error"); }
    }).then(function () { busy = null; });
    return busy;
  }

  function topicsForAutomaticSubscribe() {
    return P.localTopics() || chosenTopics();
  }

  /* React to the permission as it is now (page load, change event, "check again", tab shown again). */
  function evaluate(live) {
    if (busy || state() === "subscribed") { return; }
    var perm = P.permission();
    if (perm === "granted") {
      // Only a grant made outside the page (settings, site info) gets the "turned on for you" note.
      subscribeNow(topicsForAutomaticSubscribe(), live && state() === "denied");
    } else if (perm === "denied") {
      showDenied(live ? strings["denied.still_blocked"] : "");
    } else if (state() !== "default" && state() !== "working") {
      show("default");
    }
  }

  async function start() {
    if (P.isIOS() && !P.isStandalone()) { show("ios"); return; }
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
      if (synced) { show("subscribed"); return; }
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
    show("working", strings["state.waiting_prompt"]);
    P.requestPermission().then(function (result) {
      if (result === "granted") {
        subscribeNow(topics, false);
      } else if (result === "denied") {
        showDenied();
      } else if (!busy && state() !== "subscribed") {
        show("default", strings["state.dismissed"]);
      }
    });
  });

  document.getElementById("check-again").addEventListener("click", function () { evaluate(true); });
  document.getElementById("optin-retry").addEventListener("click", function () {
    subscribeNow(lastTopics || topicsForAutomaticSubscribe(), false);
  });
  document.getElementById("browser-select").addEventListener("change", function (event) {
    showSteps(event.target.value);
  });

  start();
}());
