// Ops dashboard: polls summary.json every 2 s and redraws tables and inline SVG charts.
// Everything is built with DOM calls and textContent (no innerHTML of server data).
(function () {
  "use strict";
  var root = document.getElementById("ops");
  if (!root) return;
  var SVG = "http://www.w3.org/2000/svg";
  var csrf = root.dataset.csrf;
  var failedBase = root.dataset.failedBase;
  var POLL_MS = 2000;

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
  function fmt(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"); }
  function ago(ts, now) {
    if (!ts) return "–";
    var s = Math.max(0, now - ts);
    if (s < 90) return s.toFixed(0) + " s ago";
    if (s < 5400) return (s / 60).toFixed(0) + " min ago";
    return (s / 3600).toFixed(1) + " h ago";
  }
  function secs(v) {
    if (v === null || v === undefined) return "–";
    if (v < 1) return (v * 1000).toFixed(0) + " ms";
    if (v < 120) return v.toFixed(1) + " s";
    return (v / 60).toFixed(1) + " min";
  }
  function fillBody(table, rows) {
    var body = table.tBodies[0];
    body.replaceChildren.apply(body, rows);
  }
  function row(cells, cls) {
    var tr = el("tr", cls ? { "class": cls } : {});
    cells.forEach(function (c) { tr.appendChild(c instanceof Node ? el("td", {}, [c]) : el("td", {}, [c === null || c === undefined ? "–" : String(c)])); });
    return tr;
  }
  function text(id, value) { document.getElementById(id).textContent = value; }

  // Bars: series of [label, value] (one colour) or [label, value, value2] (two stacked colours).
  function barChart(container, series, options) {
    var w = 720, h = 140, pad = 24;
    var max = 1;
    series.forEach(function (p) { max = Math.max(max, p[1] + (p[2] || 0)); });
    var svg = svgEl("svg", { viewBox: "0 0 " + w + " " + (h + pad), "class": "ops-svg", role: "img",
      "aria-label": options.label + ", maximum " + max });
    svg.appendChild(svgEl("line", { x1: 0, y1: h, x2: w, y2: h, "class": "ops-axis" }));
    var bw = w / Math.max(1, series.length);
    series.forEach(function (p, i) {
      var y1 = h * p[1] / max;
      var bar = svgEl("rect", { x: (i * bw).toFixed(2), y: (h - y1).toFixed(2), width: Math.max(1, bw - 1).toFixed(2),
        height: y1.toFixed(2), "class": "ops-bar" });
      var title = svgEl("title");
      title.textContent = p[0] + ": " + p[1] + (p.length > 2 ? " / " + p[2] : "");
      bar.appendChild(title);
      svg.appendChild(bar);
      if (p.length > 2 && p[2]) {
        var y2 = h * p[2] / max;
        svg.appendChild(svgEl("rect", { x: (i * bw).toFixed(2), y: (h - y1 - y2).toFixed(2),
          width: Math.max(1, bw - 1).toFixed(2), height: y2.toFixed(2), "class": "ops-bar ops-bar-2" }));
      }
    });
    var top = svgEl("text", { x: 2, y: 12, "class": "ops-tick" });
    top.textContent = String(max);
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
  function clock(ts) {
    var d = new Date(ts * 1000);
    return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2) +
      (ts % 60 ? ":" + ("0" + d.getSeconds()).slice(-2) : "");
  }

  function renderAlerts(alerts) {
    var box = document.getElementById("ops-alerts");
    box.replaceChildren.apply(box, alerts.map(function (a) {
      return el("div", { "class": "ops-alert", "data-kind": a.kind }, [
        el("strong", {}, [a.message]), el("br"), "Likely cause: " + a.cause,
      ]);
    }));
  }

  function renderThroughput(d) {
    var tp = d.throughput;
    text("tp-now", fmt(tp.now_per_second));
    text("tp-minute", fmt(tp.last_minute));
    text("tp-hour", fmt(tp.last_hour));
    text("lat-avg", d.latency.count ? secs(d.latency.sum / d.latency.count) : "–");
    barChart(document.getElementById("chart-seconds"),
      tp.seconds.map(function (p) { return [clock(p[0]), p[1]]; }), { label: "messages per second" });
    barChart(document.getElementById("chart-minutes"),
      tp.minutes.map(function (p) { return [clock(p[0]), p[1]]; }), { label: "messages per minute" });
    fillBody(document.getElementById("campaigns-table"), d.campaigns.in_flight.map(function (c) {
      var bar = el("progress", { max: "1", value: String(c.progress) });
      var cell = el("span", { "class": "ops-progress" }, [bar, " " + (c.progress * 100).toFixed(1) + "% (" + fmt(c.done) + "/" + fmt(c.total) + ")"]);
      return row([c.title + " (" + c.id + ")", c.state + (c.reason ? ": " + c.reason : ""), cell,
        fmt(c.counters.sent), fmt(c.counters.gone), fmt(c.counters.rejected), fmt(c.counters.failed),
        fmt(c.rate), secs(c.latency)]);
    }));
    fillBody(document.getElementById("recent-table"), d.campaigns.recent.map(function (c) {
      return row([c.title + " (" + c.id + ")", c.state, fmt(c.total), fmt(c.sent), secs(c.latency)]);
    }));
  }

  function renderQueues(d) {
    fillBody(document.getElementById("queues-table"), d.queues.map(function (q) {
      return row([q.name, fmt(q.depth), q.oldest_age === null ? "–" : secs(q.oldest_age), fmt(q.started),
        fmt(q.finished), fmt(q.failed), fmt(q.scheduled), fmt(q.deferred)]);
    }));
  }

  function renderWorkers(d) {
    fillBody(document.getElementById("workers-table"), d.workers.map(function (w) {
      var state = el("span", { "class": w.dead ? "ops-bad" : "ops-ok", title: w.reason || "" },
        [w.dead ? "dead: " + w.reason : w.state]);
      var tr = row([w.name, w.host, w.pid, state, w.current_job || "–", ago(w.last_heartbeat, d.now),
        fmt(w.successful), fmt(w.failed)], w.dead ? "ops-dead" : "");
      tr.dataset.worker = w.name;
      tr.dataset.state = w.state;
      return tr;
    }));
  }

  function actionForm(action, label) {
    var form = el("form", { method: "post", action: action, "class": "ops-inline ops-action" }, [
      el("input", { type: "hidden", name: "csrf_token", value: csrf }), el("button", { type: "submit" }, [label]),
    ]);
    return form;
  }

  var openTraces = {};
  function renderFailed(d) {
    text("failed-count", fmt(d.failed.count));
    var list = document.getElementById("failed-list");
    if (!d.failed.jobs.length) { list.replaceChildren(el("p", {}, ["No failed jobs."])); return; }
    list.replaceChildren.apply(list, d.failed.jobs.map(function (j) {
      var base = failedBase + encodeURIComponent(j.id);
      var details = el("details", { "class": "ops-trace" }, [el("summary", {}, ["Traceback"]), el("pre", {}, [j.traceback])]);
      if (openTraces[j.id]) details.open = true;
      details.addEventListener("toggle", function () { openTraces[j.id] = details.open; });
      var item = el("div", { "class": "ops-failed", "data-job": j.id }, [
        el("p", {}, [el("code", {}, [j.id]), " · " + j.queue + " · " + (j.campaign ? "campaign " + j.campaign + " · " : "") +
          (j.ended_at ? ago(j.ended_at, d.now) : "")]),
        el("p", { "class": "ops-bad" }, [j.exception]),
        details,
        actionForm(base + "/requeue", "Requeue"), actionForm(base + "/delete", "Delete"),
      ]);
      return item;
    }));
  }

  function renderPush(d) {
    var services = {};
    Object.keys(d.push.by_service).forEach(function (s) { services[s] = true; });
    Object.keys(d.push.by_status).forEach(function (s) { services[s] = true; });
    fillBody(document.getElementById("services-table"), Object.keys(services).sort().map(function (s) {
      var k = d.push.by_service[s] || {};
      var codes = d.push.by_status[s] || {};
      var codeText = Object.keys(codes).sort().map(function (c) { return c + ": " + fmt(codes[c]); }).join(", ");
      return row([s, fmt(k.sent || 0), fmt(k.gone || 0), fmt(k.rejected || 0), fmt(k.retry || 0),
        fmt(k.deferred || 0), fmt(k.failed || 0), codeText]);
    }));
  }

  function pairs(table, obj) {
    fillBody(table, Object.keys(obj).map(function (k) { return row([k, fmt(obj[k])]); }));
  }

  function renderSubscribers(d) {
    var s = d.subscribers;
    text("subs-total", fmt(s.total));
    text("subs-quarantined", fmt(s.quarantined));
    text("subs-stale", fmt(s.sample.stale));
    text("subs-stale-label", "not seen for " + s.sample.stale_days + " days" + (s.sample.exact ? "" : " (in the sample)"));
    text("sample-note", s.sample.exact ? "(all " + fmt(s.sample.size) + ")" : "(sample of " + fmt(s.sample.size) + " of " + fmt(s.sample.of) + ")");
    pairs(document.getElementById("topics-table"), s.by_topic);
    pairs(document.getElementById("browsers-table"), s.sample.by_browser);
    pairs(document.getElementById("langs-table"), s.sample.by_lang);
    barChart(document.getElementById("chart-daily"),
      s.daily.map(function (p) { return [p.day, p.added, p.removed]; }), { label: "subscriptions added and removed per day" });
  }

  function render(d) {
    renderAlerts(d.push.alerts);
    renderThroughput(d);
    renderQueues(d);
    renderWorkers(d);
    renderFailed(d);
    renderPush(d);
    renderSubscribers(d);
    var updated = document.getElementById("ops-updated");
    updated.textContent = "updated " + new Date(d.now * 1000).toLocaleTimeString();
    updated.dataset.now = String(d.now);
  }

  var timer = null;
  function poll() {
    clearTimeout(timer);
    fetch(root.dataset.summary, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (res) {
        if (res.status === 401) { window.location.reload(); throw new Error("logged out"); }
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.json();
      })
      .then(function (d) { document.getElementById("ops-error").hidden = true; render(d); })
      .catch(function (err) {
        var box = document.getElementById("ops-error");
        box.hidden = false;
        box.textContent = "update failed: " + err.message;
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
      .catch(function (err) { text("ops-updated", "action failed: " + err.message); });
  });

  poll();
})();
