// The dashboard page: polls /api/state and /api/series at the server's refresh interval and draws them.
// Every text from the crawl is written with textContent (never as HTML); links only to http(s) URLs.
"use strict";

const $ = (id) => document.getElementById(id);
const charts = {};
const COLORS = ["#58a6ff", "#3fb950", "#d29922", "#f85149", "#bc8cff", "#39c5cf", "#ff7b72", "#e3b341", "#8b949e", "#56d364"];

function fmt(value, digits = 0) {
  if (value === null || value === undefined) return "–";
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s % 60} s`;
  return `${s} s`;
}

function localTime(iso) {
  if (!iso) return "–";
  const when = new Date(iso);
  return isNaN(when) ? "–" : when.toLocaleString();
}

function show(id, value, text) {
  const el = $(id);
  el.dataset.value = value === null || value === undefined ? "" : String(value);
  el.textContent = text !== undefined ? text : fmt(value);
}

function rows(tbody, entries, cells) {
  const body = tbody.tagName === "TBODY" ? tbody : tbody.querySelector("tbody");
  body.replaceChildren(...entries.map((entry) => {
    const tr = document.createElement("tr");
    for (const cell of cells(entry, tr)) {
      const td = document.createElement("td");
      td.textContent = cell;
      tr.appendChild(td);
    }
    return tr;
  }));
}

function alerts(state) {
  const list = [];
  if (state.error) list.push(["bad", `Last reading failed: ${state.error} — showing the one before.`]);
  const phase = state.crawl && state.crawl.phase;
  if (phase === "stalled") list.push(["bad", "Work is left but no worker is alive: start workers."]);
  if (state.counts && state.counts.dead_letters) list.push(["warn", `${fmt(state.counts.dead_letters)} requests in the dead letters.`]);
  const project = state.project || {};
  if (project.error) list.push(["warn", project.error]);
  if (project.panel && project.panel.warning) list.push(["warn", project.panel.warning]);
  // the crawl's own alerts (scrapy_sharedcrawl/alerts.py), each naming its likely cause
  for (const alert of state.alerts || []) list.push(["bad", alert.message, alert.rule]);
  $("alerts").replaceChildren(...list.map(([kind, text, rule]) => {
    const div = document.createElement("div");
    div.className = kind;
    if (rule) div.dataset.rule = rule;
    div.textContent = text;
    return div;
  }));
}

function render(state) {
  const crawl = state.crawl || {}, progress = state.progress || {}, counts = state.counts || {};
  $("spider").textContent = crawl.spider || "–";
  const phase = state.error && !state.crawl ? "unknown" : crawl.phase || "unknown";
  $("phase").textContent = phase;
  $("phase").dataset.phase = phase;
  $("crawl-id").textContent = crawl.crawl_id || "–";
  $("scope").textContent = crawl.scope || (crawl.crawl_id ? "seeded by a worker" : "–");
  $("started").textContent = localTime(crawl.started_at);
  $("finished-wrap").hidden = !crawl.finished_at || phase !== "finished";
  $("finished").textContent = localTime(crawl.finished_at);
  $("redis").textContent = crawl.redis || "–";
  $("refreshed").textContent = state.refreshed_at ? new Date(state.refreshed_at * 1000).toLocaleTimeString() : "–";

  const fraction = progress.fraction;
  $("bar-fill").style.width = fraction === null || fraction === undefined ? "0" : `${(fraction * 100).toFixed(2)}%`;
  show("fraction", fraction, fraction === null || fraction === undefined ? "–" : `${(fraction * 100).toFixed(1)} %`);
  show("done", progress.done);
  show("total", progress.total);
  show("eta", progress.eta_seconds, phase === "finished" ? "done" : duration(progress.eta_seconds));
  show("pages-per-min", counts.pages_per_min, fmt(counts.pages_per_min, 1));
  show("items-per-min", counts.items_per_min, fmt(counts.items_per_min, 1));
  show("queued", progress.queued);
  show("leased", progress.leased);
  show("seen", counts.seen, counts.seen === null || counts.seen === undefined ? "–" : (counts.seen_exact ? "" : "≈ ") + fmt(counts.seen));
  show("pages", counts.pages);
  show("items", counts.items);
  $("items-source").textContent = counts.items_source ? `(${counts.items_source})` : "";
  show("workers-live", counts.workers_live);
  show("buffered", counts.store_buffered);
  show("dead", counts.dead_letters);

  rows($("workers"), state.workers || [], (w, tr) => {
    tr.dataset.state = w.state;
    tr.dataset.pid = String(w.pid);
    tr.dataset.id = w.id;
    return [w.state, w.node, String(w.pid), w.job || "–", `${fmt(w.heartbeat_age, 1)} s ago`,
      fmt(w.pages_per_min, 1), fmt(w.pages), fmt(w.items), fmt(w.errors), fmt(w.buffered)];
  });
  const pages = counts.pages || 0;
  const outcomes = Object.entries(state.outcomes || {});
  rows($("outcomes"), outcomes.length ? outcomes : [["none yet", null]], ([name, value], tr) => {
    tr.dataset.outcome = name;
    tr.dataset.count = value === null ? "" : String(value);
    return [name, value === null ? "" : fmt(value), value === null || !pages ? "" : `${fmt((value / pages) * 100)} %`];
  });
  const unfetched = Object.entries(state.unfetched || {});
  rows($("unfetched"), unfetched.length ? unfetched : [["none", null]], ([name, value]) => [name, value === null ? "" : fmt(value)]);
  const errors = Object.entries(state.errors || {});
  rows($("errors"), errors.length ? errors : [["none", null]], ([name, value]) => [name, value === null ? "" : fmt(value)]);
  panel((state.project || {}).panel);
  const dead = Object.entries(state.dead_reasons || {});
  rows($("dead-reasons"), dead.length ? dead : [["none", null]], ([name, value]) => [name, value === null ? "" : fmt(value)]);
  alerts(state);
}

// The project's panel (CrawlReport.view): figures, tables and a list of links, drawn from data alone.
function panel(data) {
  const root = $("project");
  root.hidden = !data;
  if (!data) { root.replaceChildren(); return; }
  const make = (tag, text) => { const el = document.createElement(tag); if (text !== undefined) el.textContent = text; return el; };
  const parts = [make("h2", data.title)];
  if (data.figures.length) {
    const figures = make("div");
    figures.className = "figures small";
    for (const figure of data.figures) {
      const div = make("div"), span = make("span", fmt(figure.value)), label = make("label", figure.label);
      span.id = figure.key;
      span.dataset.value = figure.value === null || figure.value === undefined ? "" : String(figure.value);
      div.append(span, label);
      figures.appendChild(div);
    }
    parts.push(figures);
  }
  for (const shown of data.tables) {
    const table = make("table"), body = make("tbody");
    table.id = shown.key;
    table.appendChild(body);
    const entries = Object.entries(shown.rows);
    rows(table, entries.length ? entries : [["none", null]], ([name, value]) => [name, value === null ? "" : fmt(value)]);
    parts.push(make("h3", shown.title), table);
  }
  if (data.links.length) {
    const list = make("ol");
    list.id = "links";
    for (const link of data.links) {
      const li = make("li");
      if (link.url && /^https?:\/\//.test(link.url)) {
        const a = make("a", link.text);
        a.href = link.url;
        a.rel = "noopener noreferrer";
        a.target = "_blank";
        li.appendChild(a);
      } else {
        li.textContent = link.text;
      }
      if (link.note) li.appendChild(make("small", ` ${link.note}`));
      list.appendChild(li);
    }
    parts.push(make("h3", data.links_title), list);
  }
  root.replaceChildren(...parts);
}

function chart(id, series, data) {
  const el = $(id);
  const points = data[0].length;
  el.dataset.points = String(points);
  el.dataset.series = series.map((s) => s.label).join(",");
  const width = Math.max(300, el.clientWidth || 520);
  if (!charts[id] || charts[id].series.length !== series.length + 1) {
    if (charts[id]) charts[id].destroy();
    const opts = {
      width, height: 220,
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: s.color || COLORS[i % COLORS.length], width: 1.5, scale: s.scale || "y", spanGaps: false }))],
      axes: [
        { stroke: "#8b96a3", grid: { stroke: "#30363d" } },
        { stroke: "#8b96a3", grid: { stroke: "#30363d" }, size: 60 },
        ...(series.some((s) => s.scale === "y2") ? [{ scale: "y2", side: 1, stroke: "#8b96a3", grid: { show: false }, size: 60 }] : []),
      ],
      scales: { x: { time: true } },
      legend: { live: true },
    };
    charts[id] = new uPlot(opts, data, el);
  } else {
    if (Math.abs(charts[id].width - width) > 20) charts[id].setSize({ width, height: 220 });
    charts[id].setData(data);
  }
}

function drawCharts(columns) {
  if (!columns || !columns.time || typeof uPlot === "undefined") return;
  const t = columns.time;
  const outcomes = Object.keys(columns.outcomes_per_min || {});
  chart("chart-outcomes", outcomes.map((name) => ({ label: name })), [t, ...outcomes.map((name) => columns.outcomes_per_min[name])]);
  chart("chart-rates", [{ label: "pages/min" }, { label: "items/min" }], [t, columns.pages_per_min, columns.items_per_min]);
  chart("chart-queue", [{ label: "queued" }, { label: "leased", scale: "y2" }], [t, columns.queued, columns.leased]);
  const kinds = Object.keys(columns.errors_per_min || {});
  chart("chart-errors", kinds.map((k) => ({ label: k })), [t, ...kinds.map((k) => columns.errors_per_min[k])]);
  chart("chart-host", [
    { label: "requests/min" },
    { label: "rate waits/min" },
    { label: "Retry-After pauses/min", scale: "y2" },
    { label: "error pauses/min", scale: "y2" },
    { label: "paused s/min", scale: "y2" },
  ], [t, columns.requests_per_min, columns.rate_waits_per_min, columns.pauses_retry_after_per_min, columns.pauses_errors_per_min, columns.paused_s_per_min]);
}

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store", credentials: "same-origin" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

let interval = 2;
async function poll() {
  try {
    const [state, columns] = await Promise.all([getJSON("/api/state"), getJSON("/api/series")]);
    interval = Math.max(0.25, Number(state.refresh_interval) || 2);
    render(state);
    drawCharts(columns);
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  } catch (error) {
    alerts({ error: `the dashboard server did not answer (${error.message})` });
  }
  setTimeout(poll, interval * 1000);
}

window.addEventListener("DOMContentLoaded", poll);
