// Campaign page: polls the campaign's JSON and keeps every figure true while it runs: state, progress,
// rate, elapsed time and time left, the sent → shown → clicked funnel, outcomes by push service and a
// chart whose bars are as long as the campaign needs (10 s for a one-minute send, minutes for longer).
(() => {
  "use strict";
  const root = document.getElementById("campaign");
  if (!root) { return; }
  const I18N = window.NotifierI18n;
  const _ = I18N.gettext;
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const zone = root.dataset.zone || "Asia/Jakarta";
  const FINAL = ["done", "cancelled", "failed"];
  let clockSkew = 0;  // server time minus this browser's time

  function svg(tag, attrs) {
    const el = document.createElementNS(SVG, tag);
    Object.entries(attrs).forEach(([k, v]) => el.setAttribute(k, String(v)));
    return el;
  }

  function zoneAbbr() {
    // The campaign's site's zone as Indonesian readers know it (WIB, WITA, WIT), else the browser's short
    // name for it (CET, GMT+8, ...).
    const known = { "Asia/Jakarta": "WIB", "Asia/Pontianak": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT" };
    if (known[zone]) { return known[zone]; }
    try {
      const parts = new Intl.DateTimeFormat("en-GB", { timeZone: zone, timeZoneName: "short" }).formatToParts(new Date());
      return (parts.find((p) => p.type === "timeZoneName") || {}).value || "";
    } catch (e) {
      return "";
    }
  }

  function dateTime(ts) {
    if (!ts) { return "—"; }
    const text = new Intl.DateTimeFormat(I18N.lang === "en" ? "en-GB" : "id-ID", {
      timeZone: zone, day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hour12: false
    }).format(new Date(ts * 1000));
    return text + (zoneAbbr() ? " " + zoneAbbr() : "");
  }

  function clock(ts, seconds) {
    const options = { timeZone: zone, hour: "2-digit", minute: "2-digit", hour12: false };
    if (seconds) { options.second = "2-digit"; }
    return new Intl.DateTimeFormat("en-GB", options).format(new Date(ts * 1000));
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) { return I18N.ngettext("%(n)s second", "%(n)s seconds", seconds, { n: seconds }); }
    const minutes = Math.floor(seconds / 60);
    const rest = seconds % 60;
    if (minutes < 60) {
      return I18N.ngettext("%(m)s min %(s)s s", "%(m)s min %(s)s s", minutes, { m: minutes, s: rest });
    }
    const hours = Math.floor(minutes / 60);
    return I18N.ngettext("%(h)s h %(m)s min", "%(h)s h %(m)s min", hours, { h: hours, m: minutes % 60 });
  }

  function drawChart(timeline, step) {
    const box = $("chart");
    box.textContent = "";
    const note = $("chart-note");
    if (!timeline.length) {
      note.textContent = _("Nothing sent yet.");
      box.setAttribute("aria-label", _("Chart of messages sent and clicked over time: nothing sent yet."));
      return;
    }
    // Drawn in CSS pixels of the box (not scaled down), so the labels stay readable on a phone.
    const width = Math.max(280, Math.round(box.clientWidth || 600)), height = 170, pad = 22;
    const first = timeline[0].t, last = timeline[timeline.length - 1].t;
    const slots = Math.max(1, (last - first) / step + 1);
    const max = Math.max(1, ...timeline.map((p) => Math.max(p.sent || 0, p.clicked || 0)));
    const chart = svg("svg", { viewBox: "0 0 " + width + " " + height, class: "nr-chart-svg", "aria-hidden": "true", focusable: "false" });
    chart.appendChild(svg("line", { x1: pad, y1: height - pad, x2: width - 4, y2: height - pad, stroke: "#6b7280" }));
    const slotWidth = (width - pad - 8) / slots;
    const barWidth = Math.max(2, slotWidth / 2 - 1);
    const series = { sent: "#0b6e4f", clicked: "#c2410c" };
    timeline.forEach((point) => {
      const slot = (point.t - first) / step;
      Object.entries(series).forEach(([name, color], i) => {
        const value = point[name] || 0;
        const h = (height - 2 * pad) * value / max;
        chart.appendChild(svg("rect", {
          x: pad + slot * slotWidth + i * (barWidth + 1), y: height - pad - h, width: barWidth, height: h,
          fill: color, "data-series": name
        }));
      });
    });
    const top = svg("text", { x: 2, y: 12, "font-size": 12, fill: "#374151" });
    top.textContent = I18N.number(max);
    chart.appendChild(top);
    const start = svg("text", { x: pad, y: height - 4, "font-size": 12, fill: "#374151" });
    start.textContent = clock(first, step < 60);
    chart.appendChild(start);
    const end = svg("text", { x: width - 4, y: height - 4, "font-size": 12, fill: "#374151", "text-anchor": "end" });
    end.textContent = clock(last, step < 60);
    chart.appendChild(end);
    box.appendChild(chart);
    const per = step < 60 ? I18N.ngettext("%(n)s second", "%(n)s seconds", step, { n: step }) :
      I18N.ngettext("%(n)s minute", "%(n)s minutes", step / 60, { n: step / 60 });
    note.textContent = _("Each bar is %(period)s; the highest bar is %(max)s messages.", { period: per, max: I18N.number(max) });
    const sent = timeline.reduce((n, p) => n + (p.sent || 0), 0);
    const clicked = timeline.reduce((n, p) => n + (p.clicked || 0), 0);
    box.setAttribute("aria-label", _("Chart: %(sent)s sent and %(clicked)s clicked between %(from)s and %(to)s.", {
      sent: I18N.number(sent), clicked: I18N.number(clicked), from: clock(first, step < 60), to: clock(last + step, step < 60)
    }));
  }

  // One row per push service or browser family: its name, then each outcome's count.
  function drawRows(tableId, counts, names) {
    const body = $(tableId).querySelector("tbody");
    body.textContent = "";
    const kinds = ["sent", "gone", "rejected", "failed", "retry", "deferred"];
    const total = (key) => kinds.reduce((n, kind) => n + (counts[key][kind] || 0), 0);
    Object.keys(counts).sort((a, b) => total(b) - total(a) || a.localeCompare(b)).forEach((key) => {
      const row = document.createElement("tr");
      row.dataset.key = key;
      const name = document.createElement("th");
      name.scope = "row";
      name.textContent = names[key] || key;
      row.append(name);
      kinds.forEach((kind) => {
        const cell = document.createElement("td");
        cell.className = "num";
        cell.dataset.kind = kind;
        cell.textContent = I18N.number(counts[key][kind] || 0);
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
  }

  function funnel(c) {
    const base = Math.max(1, c.sent);
    const pct = (n) => (Math.round(n / base * 1000) / 10).toLocaleString(I18N.lang === "en" ? "en" : "id") + "%";
    $("funnel-sent").textContent = _("%(n)s accepted by push services", { n: I18N.number(c.sent) });
    $("funnel-shown").textContent = _("%(n)s shown (%(pct)s)", { n: I18N.number(c.shown), pct: pct(c.shown) });
    $("funnel-clicked").textContent = _("%(n)s clicked (%(pct)s)", { n: I18N.number(c.clicked), pct: pct(c.clicked) });
    document.querySelectorAll("[data-bar]").forEach((bar) => {
      bar.style.width = (c.sent ? Math.max(0.5, 100 * (c[bar.dataset.bar] || 0) / base) : 0) + "%";
    });
  }

  // A phone turned sideways redraws the chart at its new width.
  let lastData = null;
  window.addEventListener("resize", () => { if (lastData) { drawChart(lastData.timeline, lastData.step || 60); } });

  function render(data) {
    const now = (Date.now() / 1000) + clockSkew;
    const final = FINAL.indexOf(data.state) !== -1;
    const c = data.counters;
    const percent = Math.round(data.progress * 1000) / 10;
    $("progress-bar").style.width = percent + "%";
    $("progress").setAttribute("aria-valuenow", String(Math.round(percent)));
    $("progress-text").textContent = percent.toLocaleString(I18N.lang === "en" ? "en" : "id") + "%";
    const done = c.sent + c.gone + c.rejected + c.failed + c.skipped;
    $("done-count").textContent = I18N.number(done);
    $("total-count").textContent = I18N.number(c.total);
    // Readers its planning left out (urgent alerts only): counted once, when the audience was fixed.
    const out = data.left_out || {};
    $("left-out").hidden = !out.shown;
    $("left-out-note").hidden = !out.shown || !((out.unreachable || 0) + (out.over_budget || 0));
    $("left-out-urgent").hidden = !out.urgent;
    $("left-out-planned").hidden = !out.planned;
    $("left-out-predicted").hidden = !!out.planned;
    $("left-out-unreachable").textContent = I18N.number(out.unreachable || 0);
    $("left-out-over-budget").textContent = I18N.number(out.over_budget || 0);
    document.querySelectorAll("[data-counter]").forEach((el) => { el.textContent = I18N.number(c[el.dataset.counter] || 0); });
    // A click rate needs receipts: none can have arrived before the first "shown".
    $("ctr").textContent = c.shown ? (Math.round(c.clicked / c.shown * 1000) / 10).toLocaleString(I18N.lang === "en" ? "en" : "id") + "%" :
      (c.sent ? _("waiting for receipts") : "—");
    const state = $("campaign-state");
    state.textContent = data.state_name;
    state.className = "nr-state nr-state-" + data.state;
    state.dataset.state = data.state;
    root.dataset.state = data.state;
    $("started").textContent = dateTime(data.started);
    $("finished").textContent = dateTime(data.finished);
    const begin = data.first_sent || data.started;
    const end = final ? (data.last_sent || data.finished || now) : now;
    const elapsed = begin ? Math.max(0, end - begin) : 0;
    $("elapsed").textContent = begin ? duration(elapsed) : "—";
    // The two rates ops shows for this campaign, computed once on the server (notifier.stats).
    const perSecond = (n) => _("%(n)s/s", { n: I18N.number(n) });
    const rate = begin && elapsed >= 1 && data.average_rate ? data.average_rate : null;
    $("rate").textContent = rate === null ? "—" : perSecond(rate);
    $("rate-now").textContent = final || !begin ? "—" : perSecond(data.rate || 0);
    const left = Math.max(0, c.total - done);
    $("left-count").textContent = I18N.number(left);
    // A push service that asked us to wait adds its wait to the estimate (the rate so far may predate it).
    const holds = data.holds || [];
    const holdLeft = holds.reduce((n, h) => Math.max(n, h.until - now), 0);
    $("eta").textContent = final ? "—" :
      (rate && left > 0 ? "≈ " + duration(Math.max(holdLeft, 0) + left / rate) : (left > 0 ? _("estimating…") : "—"));
    // Held back for a rate-limited push service: normal, not an error; say so, and until when, while it happens.
    const waiting = $("deferred-note");
    waiting.hidden = final || left === 0 || !(holds.length || c.deferred > 0);
    if (holds.length) {
      const last = holds[holds.length - 1];
      waiting.textContent = _("%(service)s asked us to wait until %(time)s (HTTP %(status)s): the %(n)s messages not sent yet go out by themselves then, nothing to do.", {
        service: last.name, time: clock(last.until, true) + (zoneAbbr() ? " " + zoneAbbr() : ""), status: last.status, n: I18N.number(left)
      });
    } else {
      waiting.textContent = _("Some messages wait because a push service asked us to slow down (HTTP 429); they go out by themselves, nothing to do.");
    }
    const note = $("live-note");
    if (final) {
      note.hidden = true;
      const cancel = $("cancel-form");
      if (cancel) { cancel.remove(); }
      document.querySelectorAll(".nr-flash").forEach((el) => el.remove());
    } else if (data.state === "sending" || data.state === "planning") {
      note.hidden = false;
      note.textContent = _("Sending. This page updates by itself.");
    }
    funnel(c);
    drawChart(data.timeline, data.step || 60);
    lastData = data;
    drawRows("services", data.services, data.service_names || {});
    drawRows("browsers", data.browsers || {}, data.browser_names || {});
  }

  let finalSeen = Boolean(root.dataset.final);
  async function poll() {
    try {
      const response = await fetch(root.dataset.jsonUrl, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.ok) {
        const data = await response.json();
        clockSkew = data.now - Date.now() / 1000;
        render(data);
        finalSeen = data.final;
      }
    } catch (e) {
      // A missed poll is retried on the next tick.
    }
    // Finished campaigns still gain shown/clicked receipts: poll them slowly instead of every second.
    window.setTimeout(poll, finalSeen ? 15000 : 1000);
  }

  const initial = JSON.parse(document.getElementById("campaign-data").textContent);
  clockSkew = initial.now - Date.now() / 1000;
  render(initial);
  window.setTimeout(poll, finalSeen ? 15000 : 1000);
})();
