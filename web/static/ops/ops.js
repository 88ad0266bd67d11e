// Ops dashboard: polls summary.json every 2 s and redraws each section (tables and inline SVG charts).
// Everything is built with DOM calls and textContent (no innerHTML of server data). Words come from the
// page's catalog (NotifierI18n, bundle "ops") or, for names of services, statuses and states, from the
// server in the page's language. Times are the newsroom's (data-zone, e.g. Asia/Jakarta → WIB).
//
// One render function per <section> of the page, listed in SECTIONS: a new panel is a section in
// templates/ops/dashboard.html plus a function here.
(function () {
  "use strict";
  var root = document.getElementById("ops");
  if (!root) return;
  var I18N = window.NotifierI18n;
  var _ = I18N.gettext;
  var SVG = "http://www.w3.org/2000/svg";
  var csrf = root.dataset.csrf;
  var failedBase = root.dataset.failedBase;
  var campaignBase = root.dataset.campaignBase;
  var zone = root.dataset.zone || "Asia/Jakarta";
  var POLL_MS = 2000;
  var stateNames = {};

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    });
    return node;
  }
  function svgEl(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }
  function fmt(n) { return n === null || n === undefined ? "–" : I18N.number(n); }
  function zoneAbbr() {
    return { "Asia/Jakarta": "WIB", "Asia/Pontianak": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT" }[zone] || zone;
  }
  function clock(ts, seconds) {
    var options = { timeZone: zone, hour: "2-digit", minute: "2-digit", hour12: false };
    if (seconds) options.second = "2-digit";
    try { return new Intl.DateTimeFormat("en-GB", options).format(new Date(ts * 1000)); } catch (e) { return String(ts); }
  }
  function at(ts) { return ts ? clock(ts, true) + " " + zoneAbbr() : "–"; }
  function ago(ts, now) {
    if (!ts) return "–";
    var s = Math.max(0, Math.round(now - ts));
    if (s < 90) return I18N.ngettext("%(n)s s ago", "%(n)s s ago", s, { n: s });
    var m = Math.round(s / 60);
    if (s < 5400) return I18N.ngettext("%(n)s min ago", "%(n)s min ago", m, { n: m });
    return _("%(n)s h ago", { n: I18N.number(Math.round(s / 360) / 10) });
  }
  function secs(v) {
    if (v === null || v === undefined) return "–";
    if (v < 1) return _("%(n)s ms", { n: I18N.number(Math.round(v * 1000)) });
    if (v < 120) return _("%(n)s s", { n: I18N.number(Math.round(v * 10) / 10) });
    return _("%(n)s min", { n: I18N.number(Math.round(v / 6) / 10) });
  }
  function perSecond(v) { return _("%(n)s/s", { n: I18N.number(v || 0) }); }
  function stateName(state) { return stateNames[state] || state; }
  function fillBody(table, rows, empty) {
    var body = table.tBodies[0];
    if (!rows.length && empty) {
      var cols = table.tHead.rows[0].cells.length;
      rows = [el("tr", { "class": "ops-empty" }, [el("td", { colspan: String(cols) }, [empty])])];
    }
    body.replaceChildren.apply(body, rows);
  }
  function row(cells, cls) {
    var tr = el("tr", cls ? { "class": cls } : {});
    cells.forEach(function (c) {
      tr.appendChild(c instanceof Node ? el("td", {}, [c]) : el("td", {}, [c === null || c === undefined ? "–" : String(c)]));
    });
    return tr;
  }
  function text(id, value) { document.getElementById(id).textContent = value; }

  // Bars: series of [label, value] (one colour) or [label, value, value2] (two stacked colours).
  function barChart(container, series, label) {
    // The top band (above the tallest bar) holds the scale's label, so no bar runs under it.
    // Drawn in CSS pixels of the box (not scaled down), so the labels stay readable on a phone.
    var w = Math.max(280, Math.round(container.clientWidth || 720)), h = 140, pad = 24, band = 18, span = h - band;
    var max = 1;
    series.forEach(function (p) { max = Math.max(max, p[1] + (p[2] || 0)); });
    var svg = svgEl("svg", { viewBox: "0 0 " + w + " " + (h + pad), "class": "ops-svg", role: "img",
      "aria-label": _("%(chart)s, highest %(max)s", { chart: label, max: I18N.number(max) }) });
    svg.appendChild(svgEl("line", { x1: 0, y1: h, x2: w, y2: h, "class": "ops-axis" }));
    var bw = w / Math.max(1, series.length);
    series.forEach(function (p, i) {
      var y1 = span * p[1] / max;
      var bar = svgEl("rect", { x: (i * bw).toFixed(2), y: (h - y1).toFixed(2), width: Math.max(1, bw - 1).toFixed(2),
        height: y1.toFixed(2), "class": "ops-bar" });
      var title = svgEl("title");
      title.textContent = p[0] + ": " + I18N.number(p[1]) + (p.length > 2 ? " / " + I18N.number(p[2]) : "");
      bar.appendChild(title);
      svg.appendChild(bar);
      if (p.length > 2 && p[2]) {
        var y2 = span * p[2] / max;
        svg.appendChild(svgEl("rect", { x: (i * bw).toFixed(2), y: (h - y1 - y2).toFixed(2),
          width: Math.max(1, bw - 1).toFixed(2), height: y2.toFixed(2), "class": "ops-bar ops-bar-2" }));
      }
    });
    svg.appendChild(svgEl("line", { x1: 0, y1: band, x2: w, y2: band, "class": "ops-grid" }));
    var top = svgEl("text", { x: 2, y: band - 4, "class": "ops-tick ops-tick-max" });
    top.textContent = I18N.number(max);
    svg.appendChild(top);
    var first = svgEl("text", { x: 2, y: h + 16, "class": "ops-tick" });
    first.textContent = series.length ? series[0][0] : "";
    svg.appendChild(first);
    var last = svgEl("text", { x: w - 2, y: h + 16, "class": "ops-tick", "text-anchor": "end" });
    last.textContent = series.length ? series[series.length - 1][0] : "";
    svg.appendChild(last);
    container.replaceChildren(svg);
    container.dataset.points = String(series.length);
    container.dataset.max = String(max);
  }

  function renderAlerts(d) {
    var box = document.getElementById("ops-alerts");
    box.replaceChildren.apply(box, d.push.alerts.map(function (a) {
      var node = el("div", { "class": "ops-alert", "data-kind": a.kind }, [
        el("strong", {}, [a.message]), el("br"), a.cause,
      ]);
      if (a.service) node.dataset.service = a.service;
      if (a.until) node.dataset.until = String(a.until);
      return node;
    }));
  }

  // A campaign's title links to its page; its id on a line of its own (it is long and unbroken).
  function campaignCell(c) {
    return el("span", { "class": "ops-campaign" }, [
      el("a", { href: campaignBase + encodeURIComponent(c.id) }, [c.title]),
      el("small", { "class": "ops-id" }, [c.id])
    ]);
  }

  function renderThroughput(d) {
    var tp = d.throughput;
    text("tp-now", I18N.number(tp.rate));
    text("tp-hour", fmt(tp.last_hour));
    text("lat-avg", d.latency.count ? secs(d.latency.sum / d.latency.count) : "–");
    text("retries-waiting", fmt(d.scheduled.count));
    text("retries-label", d.scheduled.next
      ? _("retry batches scheduled, next at %(time)s", { time: at(d.scheduled.next) })
      : _("retry batches scheduled"));
    barChart(document.getElementById("chart-seconds"),
      tp.seconds.map(function (p) { return [clock(p[0], true), p[1]]; }), _("Messages per second"));
    barChart(document.getElementById("chart-minutes"),
      tp.minutes.map(function (p) { return [clock(p[0], false), p[1]]; }), _("Messages per minute"));
    fillBody(document.getElementById("campaigns-table"), d.campaigns.in_flight.map(function (c) {
      var bar = el("progress", { max: "1", value: String(c.progress),
        "aria-label": _("Progress of %(title)s", { title: c.title }) });
      var pct = I18N.number(Math.round(c.progress * 1000) / 10) + " %";
      var cell = el("span", { "class": "ops-progress" }, [bar, " " + pct + " (" + fmt(c.done) + "/" + fmt(c.total) + ")"]);
      // A sentence, wrapped like the progress cell, so the rates after it stay in view on a laptop.
      var waiting = c.retries_scheduled
        ? el("span", { "class": "ops-wrap" }, [I18N.ngettext("%(n)s batch, next at %(time)s",
          "%(n)s batches, next at %(time)s", c.retries_scheduled, { n: c.retries_scheduled, time: at(c.next_retry) })])
        : "–";
      var tr = row([campaignCell(c), stateName(c.state) + (c.reason ? ": " + c.reason : ""), cell,
        fmt(c.counters.sent), fmt(c.counters.gone), fmt(c.counters.rejected), fmt(c.counters.failed),
        waiting, perSecond(c.rate), perSecond(c.average_rate), at(c.started)]);
      tr.dataset.campaign = c.id;
      tr.dataset.rate = String(c.rate);
      return tr;
    }), _("No campaign is sending."));
    fillBody(document.getElementById("recent-table"), d.campaigns.recent.map(function (c) {
      return row([campaignCell(c), stateName(c.state), fmt(c.total), fmt(c.sent), secs(c.latency)]);
    }), _("No campaign yet."));
  }

  function renderQueues(d) {
    fillBody(document.getElementById("queues-table"), d.queues.map(function (q) {
      return row([q.name, fmt(q.depth), q.oldest_age === null ? "–" : secs(q.oldest_age), fmt(q.started),
        fmt(q.finished), fmt(q.failed), fmt(q.scheduled), at(q.next_scheduled), fmt(q.deferred)]);
    }));
  }

  function renderWorkers(d) {
    fillBody(document.getElementById("workers-table"), d.workers.map(function (w) {
      var label = stateName(w.state);
      if (w.dead) label = stateName("dead") + ": " + w.reason;
      else if (w.state === "waiting") {
        label = I18N.ngettext("waiting for %(n)s scheduled retry (next at %(time)s)",
          "waiting for %(n)s scheduled retries (next at %(time)s)", w.retries_scheduled,
          { n: w.retries_scheduled, time: at(w.next_retry) });
      }
      var state = el("span", { "class": w.dead ? "ops-bad" : "ops-ok" }, [label]);
      var tr = row([w.name, w.host, w.pid, state, w.current_job || "–", ago(w.last_heartbeat, d.now),
        fmt(w.successful), fmt(w.failed)], w.dead ? "ops-dead" : "");
      tr.dataset.worker = w.name;
      tr.dataset.state = w.state;
      return tr;
    }), _("No worker is running: start one with `notifier worker`."));
  }

  function actionForm(action, label) {
    return el("form", { method: "post", action: action, "class": "ops-inline ops-action" }, [
      el("input", { type: "hidden", name: "csrf_token", value: csrf }), el("button", { type: "submit" }, [label]),
    ]);
  }

  var openTraces = {};
  function renderFailed(d) {
    text("failed-count", fmt(d.failed.count));
    document.getElementById("requeue-all-form").hidden = !d.failed.count;
    var list = document.getElementById("failed-list");
    if (!d.failed.jobs.length) { list.replaceChildren(el("p", {}, [_("No failed jobs.")])); return; }
    list.replaceChildren.apply(list, d.failed.jobs.map(function (j) {
      var base = failedBase + encodeURIComponent(j.id);
      var details = el("details", { "class": "ops-trace" }, [el("summary", {}, [_("Traceback")]), el("pre", { tabindex: "0" }, [j.traceback])]);
      if (openTraces[j.id]) details.open = true;
      details.addEventListener("toggle", function () { openTraces[j.id] = details.open; });
      var where = [j.queue];
      if (j.campaign) where.push(_("campaign %(id)s", { id: j.campaign }));
      if (j.ended_at) where.push(at(j.ended_at));
      return el("div", { "class": "ops-failed", "data-job": j.id }, [
        el("p", {}, [el("code", {}, [j.id]), " · " + where.join(" · ")]),
        el("p", { "class": "ops-bad" }, [j.exception]),
        details,
        actionForm(base + "/requeue", _("Requeue")), actionForm(base + "/delete", _("Delete")),
      ]);
    }));
  }

  function renderPush(d) {
    fillBody(document.getElementById("services-table"), d.push.services.map(function (s) {
      var k = s.kinds;
      var answers = el("ul", { "class": "ops-codes" }, s.statuses.map(function (st) {
        var code = st.code === "0" ? "—" : st.code;
        return el("li", { "data-code": st.code }, [code + (st.label ? " " + st.label : "") + ": " + fmt(st.count)]);
      }));
      var tr = row([s.name, fmt(k.sent || 0), fmt(k.gone || 0), fmt(k.rejected || 0), fmt(k.retry || 0),
        fmt(k.deferred || 0), fmt(k.failed || 0), answers]);
      tr.dataset.service = s.id;
      return tr;
    }), _("Nothing sent yet."));
  }

  function pairs(table, obj, names) {
    names = names || {};
    fillBody(table, Object.keys(obj).map(function (k) { return row([names[k] || k, fmt(obj[k])]); }), _("None yet."));
  }

  function renderSubscribers(d) {
    var s = d.subscribers;
    text("subs-total", fmt(s.total));
    text("subs-quarantined", fmt(s.quarantined));
    var keyRows = [];
    (d.vapid || []).forEach(function (site) {
      site.keys.forEach(function (k) {
        var state = k.current ? _("current") : (k.retired ? _("retired") : _("old: still signs for its readers"));
        var tr = row([site.name, el("code", {}, [k.key_id]), state, fmt(k.readers)],
          !k.current && !k.retired && k.readers ? "ops-bad" : "");
        tr.dataset.key = k.key_id;
        tr.dataset.site = site.site;
        keyRows.push(tr);
      });
    });
    fillBody(document.getElementById("vapid-table"), keyRows, _("None yet."));
    text("subs-unreachable", fmt(s.unreachable));
    text("subs-over-budget", fmt(s.over_budget));
    fillBody(document.getElementById("by-service-table"), s.services.map(function (svc) {
      var share = svc.total ? Math.round(1000 * svc.unreachable / svc.total) / 10 : 0;
      var tr = row([svc.name, fmt(svc.total), fmt(svc.unreachable), I18N.number(share) + "%"],
        svc.total && svc.unreachable / svc.total >= 0.2 ? "ops-bad" : "");
      tr.dataset.service = svc.id;
      return tr;
    }), _("None yet."));
    text("subs-stale", fmt(s.sample.stale));
    text("subs-stale-label", s.sample.exact
      ? _("not seen for %(n)s days", { n: s.sample.stale_days })
      : _("not seen for %(n)s days (in the sample)", { n: s.sample.stale_days }));
    // Browsers and languages are counted on the same sample: both say so, or their rows would not add up
    // to the subscriptions above.
    var sampleNote = s.sample.exact
      ? _("(all %(n)s)", { n: fmt(s.sample.size) })
      : _("(sample of %(n)s of %(of)s)", { n: fmt(s.sample.size), of: fmt(s.sample.of) });
    text("sample-note", sampleNote);
    text("lang-sample-note", sampleNote);
    pairs(document.getElementById("topics-table"), s.by_topic);
    pairs(document.getElementById("browsers-table"), s.sample.by_browser, s.sample.browser_names);
    pairs(document.getElementById("langs-table"), s.sample.by_lang, s.sample.lang_names);
    barChart(document.getElementById("chart-daily"),
      s.daily.map(function (p) { return [p.day, p.added, p.removed]; }), _("Subscriptions added and removed per day"));
  }

  function renderSites(d) {
    var table = document.getElementById("sites-table");
    if (!table) { return; }
    fillBody(table, (d.sites || []).map(function (s) {
      var tr = row([s.name, s.origins.join(" "), fmt(s.subscribers), fmt(s.campaigns), fmt(s.in_flight), fmt(s.sent)]);
      tr.dataset.site = s.id;
      return tr;
    }), _("None yet."));
  }

  var SECTIONS = [renderAlerts, renderThroughput, renderQueues, renderWorkers, renderFailed, renderPush, renderSites,
    renderSubscribers];

  var lastData = null;
  window.addEventListener("resize", function () { if (lastData) { renderThroughput(lastData); renderSubscribers(lastData); } });

  function render(d) {
    lastData = d;
    stateNames = d.state_names || {};
    SECTIONS.forEach(function (section) { section(d); });
    var updated = document.getElementById("ops-updated");
    updated.textContent = _("Updated %(time)s", { time: at(d.now) });
    updated.dataset.now = String(d.now);
  }

  var timer = null;
  function poll() {
    clearTimeout(timer);
    fetch(root.dataset.summary, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (res) {
        if (res.status === 401) { window.location.reload(); throw new Error(_("logged out")); }
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.json();
      })
      .then(function (d) { document.getElementById("ops-error").hidden = true; render(d); })
      .catch(function (err) {
        var box = document.getElementById("ops-error");
        box.hidden = false;
        box.textContent = _("Update failed: %(error)s", { error: err.message });
      })
      .then(function () { timer = setTimeout(poll, POLL_MS); });
  }

  // Actions post with the CSRF header and refresh at once instead of reloading the page.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!root.contains(form) || !form.classList.contains("ops-inline")) return;
    event.preventDefault();
    fetch(form.action, { method: "POST", credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRF-Token": csrf } })
      .then(function (res) { return res.json(); })
      .then(function (body) { text("ops-updated", body.message); poll(); })
      .catch(function (err) { text("ops-updated", _("Action failed: %(error)s", { error: err.message })); });
  });

  poll();
})();
