// Campaign page: poll the JSON view every second while the campaign runs; progress bar,
// counters, a per-minute chart of sends and clicks (inline SVG) and outcomes by push service.
(() => {
  "use strict";
  const root = document.getElementById("campaign");
  if (!root) { return; }
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  function svg(tag, attrs) {
    const el = document.createElementNS(SVG, tag);
    Object.entries(attrs).forEach(([k, v]) => el.setAttribute(k, String(v)));
    return el;
  }

  function drawChart(timeline) {
    const box = $("chart");
    box.textContent = "";
    if (!timeline.length) { box.textContent = "Belum ada data."; return; }
    const width = 600, height = 160, pad = 24;
    const first = timeline[0].t, last = timeline[timeline.length - 1].t;
    const minutes = Math.max(1, (last - first) / 60 + 1);
    const series = { sent: "#0b6e4f", clicked: "#c2410c" };
    const max = Math.max(1, ...timeline.map((p) => Math.max(p.sent || 0, p.clicked || 0)));
    const chart = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", class: "nr-chart-svg" });
    chart.appendChild(svg("line", { x1: pad, y1: height - pad, x2: width - 4, y2: height - pad, stroke: "#999" }));
    const barWidth = Math.max(2, (width - pad - 8) / minutes / 2 - 1);
    timeline.forEach((point) => {
      const slot = (point.t - first) / 60;
      Object.entries(series).forEach(([name, color], i) => {
        const value = point[name] || 0;
        const h = (height - 2 * pad) * value / max;
        const x = pad + slot * ((width - pad - 8) / minutes) + i * (barWidth + 1);
        const rect = svg("rect", { x: x, y: height - pad - h, width: barWidth, height: h, fill: color, "data-series": name });
        const title = svg("title", {});
        title.textContent = new Date(point.t * 1000).toLocaleTimeString() + " " + name + ": " + value;
        rect.appendChild(title);
        chart.appendChild(rect);
      });
    });
    const label = svg("text", { x: 2, y: 12, "font-size": 11, fill: "#555" });
    label.textContent = "maks " + max + "/menit";
    chart.appendChild(label);
    Object.entries(series).forEach(([name, color], i) => {
      const key = svg("text", { x: width - 140 + i * 70, y: 12, "font-size": 11, fill: color });
      key.textContent = "■ " + name;
      chart.appendChild(key);
    });
    box.appendChild(chart);
  }

  function drawServices(services) {
    const body = $("services").querySelector("tbody");
    body.textContent = "";
    Object.keys(services).sort().forEach((service) => {
      const row = document.createElement("tr");
      const name = document.createElement("td");
      name.textContent = service;
      const kinds = document.createElement("td");
      kinds.textContent = Object.entries(services[service]).map(([k, n]) => k + " " + n).join(" · ");
      row.append(name, kinds);
      body.appendChild(row);
    });
  }

  function render(data) {
    const percent = Math.round(data.progress * 1000) / 10;
    $("progress-bar").style.width = percent + "%";
    $("progress").setAttribute("aria-valuenow", String(Math.round(percent)));
    $("progress-text").textContent = percent + "%";
    const c = data.counters;
    $("done-count").textContent = String(c.sent + c.gone + c.rejected + c.failed + c.skipped);
    $("total-count").textContent = String(c.total);
    document.querySelectorAll("[data-counter]").forEach((el) => { el.textContent = String(c[el.dataset.counter] || 0); });
    $("ctr").textContent = data.ctr === null ? "—" : (data.ctr * 100).toFixed(1) + "%";
    const state = $("campaign-state");
    state.textContent = data.state;
    state.className = "nr-state nr-state-" + data.state;
    root.dataset.state = data.state;
    drawChart(data.timeline);
    drawServices(data.services);
  }

  async function poll() {
    try {
      const response = await fetch(root.dataset.jsonUrl, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.ok) {
        const data = await response.json();
        render(data);
        if (data.final) { root.dataset.final = "1"; return; }
      }
    } catch (e) {
      // A missed poll is retried on the next tick.
    }
    window.setTimeout(poll, 1000);
  }

  render(JSON.parse(document.getElementById("campaign-data").textContent));
  // Finished campaigns still gain shown/clicked receipts: poll them slowly instead of every second.
  if (root.dataset.final) { window.setInterval(() => { poll(); }, 30000); } else { window.setTimeout(poll, 1000); }
})();
