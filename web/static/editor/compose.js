// Compose page: live preview, character counters, payload budget, audience size, prefill.
// The payload budget mirrors notifier.campaigns.payload_size (the server re-checks at submit).
(() => {
  "use strict";
  const form = document.getElementById("compose-form");
  if (!form) { return; }
  const config = JSON.parse(document.getElementById("compose-config").textContent);
  const $ = (id) => document.getElementById(id);
  const fields = { title: $("f-title"), body: $("f-body"), url: $("f-url"), image: $("f-image") };
  const encoder = new TextEncoder();

  // Same shape as campaign_payload_prefix + message_payload: a 24-character tag (the story id),
  // a 20-character campaign id, a 16-character subscription id, a 22-character receipt token, a
  // 10-digit timestamp. JSON.stringify escapes like Python's json.dumps(ensure_ascii=False).
  function payloadSize(title, body, url, image) {
    const data = { title: title, body: body, url: url };
    if (image) { data.image = image; }
    data.tag = "x".repeat(24);
    data.renotify = true;
    data.cid = "c".repeat(20);
    const prefix = JSON.stringify(data).slice(0, -1) + ",";
    const full = prefix + '"sid":"' + "s".repeat(16) + '","rt":"' + "r".repeat(22) + '","ts":' + "1".padEnd(11, "0") + "}";
    return encoder.encode(full).length;
  }

  function shorten(text, limit) {
    const chars = Array.from(text);
    return chars.length > limit ? chars.slice(0, limit - 1).join("") + "…" : text;
  }

  function normTitle(value) { return value.split(/\s+/).filter(Boolean).join(" "); }

  function counter(el, length, shown, max) {
    el.textContent = length + " / " + shown + (length > shown ? " (terpotong di ponsel)" : "");
    el.classList.toggle("nr-over", length > shown);
    if (max && length > max) { el.textContent += " — maks " + max; }
  }

  function siteName(url) {
    try { return new URL(url).host; } catch (e) { return config.siteName; }
  }

  function update() {
    const title = normTitle(fields.title.value);
    const body = fields.body.value.trim();
    const url = fields.url.value.trim();
    const image = fields.image.value.trim();
    counter($("title-counter"), Array.from(title).length, config.titleShown, config.titleMax);
    counter($("body-counter"), Array.from(body).length, config.bodyShown, 0);
    const left = config.maxPlaintext - payloadSize(title, body, url, image);
    const budget = $("budget-left");
    budget.textContent = String(left);
    budget.parentElement.classList.toggle("nr-over", left < 0);
    document.querySelectorAll("[data-preview]").forEach((el) => {
      const kind = el.dataset.preview;
      if (kind === "title") { el.textContent = title || "Judul notifikasi"; }
      else if (kind === "body") { el.textContent = body || "Isi notifikasi"; }
      else if (kind === "title-short") { el.textContent = shorten(title || "Judul notifikasi", config.titleShown); }
      else if (kind === "body-short") { el.textContent = shorten(body || "Isi notifikasi", config.bodyShown); }
      else if (kind === "site") { el.textContent = config.siteName + " · " + siteName(url); }
      else if (kind === "image") {
        let ok = false;
        try { ok = ["http:", "https:"].includes(new URL(image).protocol); } catch (e) { ok = false; }
        if (ok) { el.src = image; } else { el.removeAttribute("src"); }
        el.hidden = !ok;
      }
    });
  }

  function chosenTopics() {
    return Array.from(form.querySelectorAll('input[name="topics"]:checked')).map((el) => el.value);
  }

  let audienceRequest = 0;
  async function updateAudience() {
    const topics = chosenTopics();
    const everyone = topics.length === 0;
    $("confirm-everyone-label").hidden = !everyone;
    $("f-confirm-everyone").required = false;
    $("audience-label").textContent = everyone ? "pelanggan (SEMUA)" : "pelanggan (" + topics.join(", ") + ")";
    const params = new URLSearchParams();
    topics.forEach((t) => params.append("topic", t));
    const mine = ++audienceRequest;
    try {
      const response = await fetch(config.audienceUrl + "?" + params.toString(), { headers: { Accept: "application/json" } });
      const data = await response.json();
      if (mine !== audienceRequest) { return; }
      $("audience-size").textContent = response.ok ? String(data.size) : "?";
      form.dataset.audience = response.ok ? String(data.size) : "";
    } catch (e) {
      if (mine === audienceRequest) { $("audience-size").textContent = "?"; }
    }
  }

  const prefillButton = $("prefill-button");
  if (prefillButton) {
    prefillButton.addEventListener("click", async () => {
      const status = $("prefill-status");
      status.textContent = "Mengambil…";
      try {
        const response = await fetch(config.prefillUrl + "?url=" + encodeURIComponent(fields.url.value.trim()),
          { headers: { Accept: "application/json" } });
        const data = await response.json();
        if (!response.ok) { status.textContent = data.message || "Gagal"; return; }
        if (data.title) { fields.title.value = data.title; }
        if (data.body) { fields.body.value = data.body; }
        if (data.image) { fields.image.value = data.image; }
        status.textContent = "Terisi dari artikel.";
        update();
      } catch (e) {
        status.textContent = "Gagal mengambil artikel.";
      }
    });
  }

  // Sending to everyone needs the explicit confirmation (the server checks it again).
  form.addEventListener("submit", (event) => {
    const action = event.submitter ? event.submitter.value : "send";
    if (action === "send" && chosenTopics().length === 0 && !$("f-confirm-everyone").checked) {
      event.preventDefault();
      $("confirm-everyone-label").classList.add("nr-confirm-needed");
      $("f-confirm-everyone").focus();
    }
  });

  Object.values(fields).forEach((el) => el.addEventListener("input", update));
  form.querySelectorAll('input[name="topics"]').forEach((el) => el.addEventListener("change", updateAudience));
  $("f-send-at").addEventListener("input", () => { $("f-when-later").checked = true; });
  update();
  updateAudience();
})();
