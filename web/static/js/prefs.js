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
  var _ = window.NotifierI18n.gettext;
  var noneHint = document.getElementById("prefs-none-hint");
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
    updateHint();
  }

  /* With no topic ticked the reader still gets sends to everyone: say so before and after saving. */
  function updateHint() { noneHint.hidden = checkedTopics().length > 0; }

  function checkedTopics() {
    var boxes = form.querySelectorAll('input[name="topics"]:checked');
    var out = [];
    for (var i = 0; i < boxes.length; i++) { out.push(boxes[i].value); }
    return out;
  }

  function fail(error) {
    if (window.console) { window.console.error("notifier: preferences", error); }
    status.textContent = _("Your preferences could not be saved. Check your connection and try again.");
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
      status.textContent = (stored.topics || []).length ? _("Topics saved.") :
        _("Saved without topics: you will only get the alerts sent to every reader.");
    }, fail).then(function () { saveButton.disabled = false; });
  });

  unsubscribeButton.addEventListener("click", function () {
    unsubscribeButton.disabled = true;
    P.unsubscribe().then(function () {
      show("unsubscribed", _("You have unsubscribed. You will not receive notifications from %(site)s anymore.", { site: data.site }));
    }, fail).then(function () { unsubscribeButton.disabled = false; });
  });

  form.addEventListener("change", updateHint);
  start();
}());
