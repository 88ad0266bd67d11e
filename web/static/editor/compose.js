// Compose page: device previews, character counters, payload budget, audience and send button, prefill.
// The payload budget mirrors notifier.campaigns.payload_size (the server re-checks at submit).
(() => {
  "use strict";
  const form = document.getElementById("compose-form");
  if (!form) { return; }
  const I18N = window.NotifierI18n;
  const _ = I18N.gettext;
  const config = JSON.parse(document.getElementById("compose-config").textContent);
  const $ = (id) => document.getElementById(id);
  const fields = { title: $("f-title"), body: $("f-body"), url: $("f-url"), image: $("f-image") };
  const encoder = new TextEncoder();

  // Same shape as campaign_payload_prefix + message_payload (a Declarative Web Push message): a
  // 24-character tag (the story id), a 20-character campaign id, a 16-character subscription id, a
  // 22-character receipt token, a 14-digit timestamp in milliseconds. JSON.stringify escapes like
  // Python's json.dumps(ensure_ascii=False).
  function payloadSize(title, body, url, image) {
    const note = { title: title, body: body, navigate: url };
    if (image) { note.image = image; }
    note.tag = "x".repeat(24);
    note.renotify = true;
    note.data = { cid: "c".repeat(20) };
    const prefix = JSON.stringify({ web_push: 8030, mutable: true, notification: note }).slice(0, -3) + ",";
    const full = prefix + '"sid":"' + "s".repeat(16) + '","rt":"' + "r".repeat(22) + '"},"timestamp":' +
      "1".padEnd(14, "0") + "}}";
    return encoder.encode(full).length;
  }

  function shorten(text, limit) {
    const chars = Array.from(text);
    return limit && chars.length > limit ? chars.slice(0, limit - 1).join("").trimEnd() + "…" : text;
  }

  function normTitle(value) { return value.split(/\s+/).filter(Boolean).join(" "); }

  function counter(el, length, shown, max) {
    let text = I18N.number(length) + " / " + I18N.number(shown);
    if (length > shown) { text += " · " + _("cut on phones"); }
    if (max && length > max) { text += " · " + _("over the maximum of %(max)s", { max: I18N.number(max) }); }
    el.textContent = text;
    el.classList.toggle("nr-over", length > shown);
  }

  function host(url) {
    try { return new URL(url).host; } catch (e) { return config.siteHost || config.siteName; }
  }

  function validImage(url) {
    try { return ["http:", "https:"].includes(new URL(url).protocol); } catch (e) { return false; }
  }

  // The image is loaded once per address; a failure warns that readers will not see it either.
  let probed = "";
  let imageOk = false;
  function probeImage(url) {
    if (url === probed) { return; }
    probed = url;
    imageOk = false;
    $("image-warning").hidden = true;
    if (!validImage(url)) { return; }
    const probe = new Image();
    probe.onload = () => { if (probed === url) { imageOk = true; update(); } };
    probe.onerror = () => { if (probed === url) { $("image-warning").hidden = false; update(); } };
    probe.src = url;
  }

  function update() {
    const title = normTitle(fields.title.value);
    const body = fields.body.value.trim();
    const url = fields.url.value.trim();
    const image = fields.image.value.trim();
    counter($("title-counter"), Array.from(title).length, config.titleShown, config.titleMax);
    counter($("body-counter"), Array.from(body).length, config.bodyShown, 0);
    const left = config.maxPlaintext - payloadSize(title, body, url, image);
    $("budget-left").textContent = I18N.number(left);
    $("budget").classList.toggle("nr-over", left < 0);
    probeImage(image);
    document.querySelectorAll("[data-p]").forEach((el) => {
      const kind = el.dataset.p;
      const limit = Number(el.dataset.limit || 0);
      if (kind === "title") { el.textContent = shorten(title || _("Notification title"), limit); }
      else if (kind === "body") { el.textContent = shorten(body || _("Notification text"), limit); }
      else if (kind === "host") { el.textContent = host(url); }
      else if (kind === "site") { el.textContent = config.siteName; }
      else if (kind === "image") {
        const show = validImage(image) && imageOk;
        if (show) { el.src = image; } else { el.removeAttribute("src"); }
        el.hidden = !show;
      }
    });
  }

  function chosenTopics() {
    return Array.from(form.querySelectorAll('input[name="topics"]:checked')).map((el) => el.value);
  }

  function later() { return $("f-when-later").checked; }

  // The send button names what it does and to how many readers ("Kirim ke 2.007 pelanggan").
  function sendLabel(size, everyone) {
    const values = { count: I18N.number(size) };
    if (later()) {
      return everyone ?
        I18N.ngettext("Schedule for all %(count)s subscriber", "Schedule for all %(count)s subscribers", size, values) :
        I18N.ngettext("Schedule for %(count)s subscriber", "Schedule for %(count)s subscribers", size, values);
    }
    return everyone ?
      I18N.ngettext("Send to all %(count)s subscriber", "Send to all %(count)s subscribers", size, values) :
      I18N.ngettext("Send to %(count)s subscriber", "Send to %(count)s subscribers", size, values);
  }

  // The audience figures from audience.json (or the page): ``size`` everyone the topics reach (what an
  // urgent alert reaches), ``reached`` the rest (any other campaign leaves out the unreachable readers and
  // those over their budget). null: they could not be counted.
  let audience = config.audience ? Object.assign({ size: config.audience.total }, config.audience) : null;

  function showAudience() {
    const topics = chosenTopics();
    const everyone = topics.length === 0;
    const urgent = $("f-breaking").checked;
    const line = $("audience-line");
    const size = audience === null ? null : (urgent ? audience.size : audience.reached);
    line.dataset.size = size === null ? "" : String(size);
    if (size === null) {
      line.textContent = _("The audience could not be counted (connection?). The server counts again when you send.");
    } else if (everyone) {
      line.textContent = I18N.ngettext("Goes to ALL %(count)s subscriber (no topic chosen).",
        "Goes to ALL %(count)s subscribers (no topic chosen).", size, { count: I18N.number(size) });
    } else {
      line.textContent = I18N.ngettext("Goes to %(count)s subscriber.", "Goes to %(count)s subscribers.", size,
        { count: I18N.number(size) }) + " " + topics.map((t) => config.topicNames[t] || t).join(", ");
    }
    const onlyUrgent = audience === null ? 0 : audience.unreachable + audience.over_budget;
    const leftOut = $("audience-left-out");
    leftOut.hidden = !onlyUrgent;
    if (onlyUrgent) {
      const n = { count: I18N.number(onlyUrgent) };
      $("left-out-normal").textContent = I18N.ngettext("%(count)s more subscriber gets urgent alerts only",
        "%(count)s more subscribers get urgent alerts only", onlyUrgent, n);
      $("left-out-urgent").textContent = I18N.ngettext(
        "This urgent alert also reaches %(count)s subscriber who gets urgent alerts only",
        "This urgent alert also reaches %(count)s subscribers who get urgent alerts only", onlyUrgent, n);
      $("left-out-normal").hidden = urgent;
      $("left-out-urgent").hidden = !urgent;
      $("left-out-unreachable").textContent = I18N.ngettext(
        "%(count)s unreachable (their browser showed none of the last %(pushes)s pushes)",
        "%(count)s unreachable (their browsers showed none of the last %(pushes)s pushes)", audience.unreachable,
        { count: I18N.number(audience.unreachable), pushes: config.unreachableAfter });
      $("left-out-budget").textContent = I18N.ngettext(
        "%(count)s over their budget (no click in %(pushes)s pushes)",
        "%(count)s over their budget (no click in %(pushes)s pushes)", audience.over_budget,
        { count: I18N.number(audience.over_budget), pushes: config.readerBudget });
    }
    line.classList.toggle("nr-everyone", everyone);
    $("urgent-everyone").hidden = !(everyone && urgent);
    if (size !== null) { $("send-button").textContent = sendLabel(size, everyone); }
  }

  let audienceRequest = 0;
  async function updateAudience() {
    const params = new URLSearchParams();
    if (config.site) { params.set("site", config.site); }
    chosenTopics().forEach((t) => params.append("topic", t));
    const mine = ++audienceRequest;
    try {
      const response = await fetch(config.audienceUrl + "?" + params.toString(), { headers: { Accept: "application/json" } });
      const data = await response.json();
      if (mine !== audienceRequest) { return; }
      audience = response.ok ? data : null;
    } catch (e) {
      if (mine !== audienceRequest) { return; }
      audience = null;
    }
    showAudience();
  }

  const prefillButton = $("prefill-button");
  if (prefillButton) {
    prefillButton.addEventListener("click", async () => {
      const status = $("prefill-status");
      status.classList.remove("nr-error");
      status.textContent = _("Reading the article…");
      prefillButton.disabled = true;
      try {
        const query = new URLSearchParams({ url: fields.url.value.trim(), site: config.site || "" });
        const response = await fetch(config.prefillUrl + "?" + query.toString(),
          { headers: { Accept: "application/json" } });
        const data = await response.json();
        if (!response.ok) {
          status.textContent = data.message || _("The article could not be read.");
          status.classList.add("nr-error");
          return;
        }
        if (data.title) { fields.title.value = data.title; }
        if (data.body) { fields.body.value = data.body; }
        if (data.image) { fields.image.value = data.image; }
        status.textContent = _("Filled from the article: check the text before sending.");
        update();
      } catch (e) {
        status.textContent = _("The article could not be read (connection?). Try again.");
        status.classList.add("nr-error");
      } finally {
        prefillButton.disabled = false;
      }
    });
  }

  // Preview device picker (all devices show without JavaScript).
  const devices = document.querySelectorAll('input[name="preview_device"]');
  function showDevice() {
    const chosen = (Array.from(devices).find((d) => d.checked) || {}).value || "android";
    document.querySelectorAll(".nr-dev").forEach((el) => { el.hidden = el.dataset.device !== chosen; });
  }
  devices.forEach((el) => el.addEventListener("change", showDevice));
  document.querySelector(".nr-preview").classList.add("nr-preview-js");

  Object.values(fields).forEach((el) => el.addEventListener("input", update));
  form.querySelectorAll('input[name="topics"]').forEach((el) => el.addEventListener("change", updateAudience));
  $("f-breaking").addEventListener("change", showAudience);
  form.querySelectorAll('input[name="when"]').forEach((el) => el.addEventListener("change", updateAudience));
  $("f-send-at").addEventListener("input", () => { $("f-when-later").checked = true; updateAudience(); });
  const summary = $("compose-error");
  const review = $("review");
  if (review) { $("confirm-everyone-button").focus(); } else if (summary && summary.focus) { summary.focus(); }
  showDevice();
  update();
  updateAudience();
})();
