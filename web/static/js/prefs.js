/*
 * The preferences page (#prefs): shows this browser's topics from the server, saves changes (PATCH) and
 * unsubscribes (DELETE, then PushSubscription.unsubscribe()). Loading it re-posts the subscription too.
 */
(function () {
  "use strict";

  var P = window.NotifierPush;
  var root = document.getElementById("prefs");
  if (!P || !root) { return; }

  var data = P.data;
  var strings = data.strings;
  var status = document.getElementById("prefs-status");
  var form = document.getElementById("prefs-form");
  var saveButton = document.getElementById("prefs-save");
  var unsubscribeButton = document.getElementById("prefs-unsubscribe");
  var panels = root.querySelectorAll("[data-panel]");
  var subscription = null;

  function show(state, message) {
    root.setAttribute("data-state", state);
    for (var i = 0; i < panels.length; i++) {
      panels[i].hidden = panels[i].getAttribute("data-panel") !== state;
    }
    status.textContent = message || "";
  }

  function setChecked(topics) {
    var boxes = form.querySelectorAll('input[name="topics"]');
    for (var i = 0; i < boxes.length; i++) { boxes[i].checked = topics.indexOf(boxes[i].value) !== -1; }
  }

  function checkedTopics() {
    var boxes = form.querySelectorAll('input[name="topics"]:checked');
    var out = [];
    for (var i = 0; i < boxes.length; i++) { out.push(boxes[i].value); }
    return out;
  }

  function fail(error) {
    if (window.console) { window.console.error("notifier: preferences", error); }
    status.textContent = strings["prefs.error"];
  }

  async function start() {
    var synced = null;
    try {
      synced = await P.resync(data.lang);
    } catch (error) {
      fail(error);
      return;
    }
    if (!synced) { show("not-subscribed"); return; }
    subscription = synced.subscription;
    setChecked(synced.server.topics || []);
    show("subscribed");
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    saveButton.disabled = true;
    P.setTopics(subscription, checkedTopics(), data.lang).then(function (stored) {
      setChecked(stored.topics || []);
      status.textContent = strings["prefs.saved"];
    }, fail).then(function () { saveButton.disabled = false; });
  });

  unsubscribeButton.addEventListener("click", function () {
    unsubscribeButton.disabled = true;
    P.unsubscribe().then(function () {
      show("unsubscribed", strings["prefs.unsubscribed"]);
    }, fail).then(function () { unsubscribeButton.disabled = false; });
  });

  start();
}());
