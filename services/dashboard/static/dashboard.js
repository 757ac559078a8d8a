// The dashboard's live parts. Run data is untrusted (program text, model output, run names): it only ever
// reaches the page as text (textContent, attribute values), never as markup.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#2f7fc1", "#e4572e", "#3aa76d"];

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

const fmt = {
  num: (v, digits = 2) => (v === null || v === undefined ? "—" : Number(v).toFixed(digits)),
  signed: (v) => (v === null || v === undefined ? "—" : (v >= 0 ? "+" : "") + Number(v).toFixed(3)),
  pct: (v) => (v === null || v === undefined ? "—" : (100 * v).toFixed(1) + "%"),
  int: (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString("en")),
  when: (t) => new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC",
  duration: (s) => (s < 60 ? s.toFixed(1) + " s" : s < 3600 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`
    : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`),
};

function listen(url, onState) {
  const live = document.getElementById("live");
  const events = new EventSource(url);
  events.addEventListener("state", (e) => {
    live.textContent = "live";
    live.className = "ok";
    onState(JSON.parse(e.data));
  });
  events.addEventListener("problem", (e) => {
    live.textContent = "source unavailable: " + JSON.parse(e.data).error;
    live.className = "bad";
  });
  events.onerror = () => { live.textContent = "reconnecting…"; live.className = "bad"; };
}

const runUrl = (runId) => "/runs/" + encodeURIComponent(runId);
const individualUrl = (runId, id) => `${runUrl(runId)}/individuals/${id}`;

// -- the run list -----------------------------------------------------------------------------------------

function showRuns(runs) {
  const body = document.querySelector("#runs tbody");
  body.replaceChildren(...runs.map((r) => el("tr", { "data-run": r.run_id },
    el("td", {}, el("a", { href: runUrl(r.run_id) }, r.name), " ", el("code", {}, r.run_id)),
    el("td", { class: "status" }, r.status), el("td", {}, r.operator),
    el("td", { class: "num" }, fmt.int(r.evaluations)), el("td", { class: "num filled" }, fmt.int(r.filled)),
    el("td", { class: "num" }, fmt.num(r.qd_score, 1)), el("td", { class: "num" }, fmt.signed(r.max_fitness)),
    el("td", {}, fmt.when(r.updated_at)))));
  document.getElementById("no-runs").hidden = runs.length > 0;
}

// -- one run ----------------------------------------------------------------------------------------------

const run = { points: [], state: null, best: "" };

function onRunState(state) {
  run.points = state.reset ? state.points : run.points.concat(state.points);
  run.state = state;
  showFacts(state.run);
  showControls(state.run);
  showMap(state.archive, state.run.run_id);
  showCurves(run.points);
  showOperators(state.operators);
  showWalkers(state.best, state.run.run_id);
}

function showFacts(r) {
  document.getElementById("run-status").textContent = r.status;
  const facts = {
    operator: r.operator + (r.model ? ` (${r.model})` : ""), terrain: r.terrain,
    evaluations: fmt.int(r.evaluations) + (r.budget ? " / " + fmt.int(r.budget) : ""), batches: fmt.int(r.batches),
    "filled cells": r.filled === undefined ? "—" : `${fmt.int(r.filled)} (${fmt.pct(r.coverage)})`,
    "QD score": fmt.num(r.qd_score, 1), "max fitness": fmt.signed(r.max_fitness),
    "evaluations/s": fmt.num(r.evaluations_per_s), elapsed: r.elapsed_s === undefined ? "—" : fmt.duration(r.elapsed_s),
    updated: fmt.when(r.updated_at),
  };
  document.getElementById("facts").replaceChildren(...Object.entries(facts).map(([k, v]) =>
    el("div", { "data-fact": k }, el("dt", {}, k), el("dd", {}, v))));
}

function showControls(r) {
  const box = document.getElementById("controls");
  box.hidden = !r.controllable;
  const allowed = { pause: ["RUNNING", "CREATED"], resume: ["PAUSED", "STOPPED", "CREATED"], stop: ["RUNNING", "PAUSED"] };
  for (const button of box.querySelectorAll("button")) button.disabled = !allowed[button.dataset.action].includes(r.status);
}

async function control(action) {
  const result = document.getElementById("control-result");
  result.textContent = action + "…";
  const reply = await fetch(`/api/runs/${encodeURIComponent(document.body.dataset.run)}/${action}`,
    { method: "POST", headers: { "X-ELM-Dashboard": "1" } });
  const body = await reply.json();
  result.textContent = reply.ok ? `${action}: ${body.status}` : `${action} failed: ${body.error}`;
}

// A colour from low (dark blue) to high (yellow), as in the report's maps.
function colour(t) {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2), f = x - i;
  const c = stops[i].map((v, k) => Math.round(v + f * (stops[i + 1][k] - v)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

function showMap(archive, runId) {
  const elites = archive.elites.map(([cell, id, fitness, ...d]) => ({ cell, id, fitness, d }));
  const select = document.getElementById("mass-slice");
  const grid = archive.kind === "grid" && archive.dims.length >= 2;
  const slices = grid && archive.dims.length === 3 ? archive.dims[2] : 0;
  if (select.options.length !== slices + 1) {
    select.replaceChildren(el("option", { value: "best" }, "best over all mass bins"));
    const [lo, hi] = archive.ranges[2] || [0, 0];
    for (let m = 0; m < slices; m++) {
      const a = lo + (m * (hi - lo)) / slices, b = lo + ((m + 1) * (hi - lo)) / slices;
      select.append(el("option", { value: m }, `mass bin ${m} (${a.toFixed(1)}–${b.toFixed(1)})`));
    }
  }
  const lo = Math.min(...elites.map((e) => e.fitness)), hi = Math.max(...elites.map((e) => e.fitness));
  const scale = (f) => (hi > lo ? (f - lo) / (hi - lo) : 1);
  document.getElementById("map-summary").textContent = elites.length
    ? `${elites.length} filled cells; fitness ${fmt.signed(lo)} to ${fmt.signed(hi)}` : "no elites yet";
  const view = document.getElementById("map-view");
  view.replaceChildren(grid ? gridMap(elites, archive, select.value, scale, runId) : scatterMap(elites, archive, scale, runId));
  view.dataset.filled = String(elites.length);
  document.getElementById("map-legend").replaceChildren(legend(lo, hi));
}

function gridMap(elites, archive, slice, scale, runId) {
  const [rows, cols] = archive.dims, depth = archive.dims[2] || 1;
  const px = Math.max(10, Math.min(34, 420 / Math.max(rows, cols))), pad = 40;
  const svg = el("svg:svg", { viewBox: `0 0 ${cols * px + pad + 10} ${rows * px + pad + 10}`, class: "map",
    width: cols * px + pad + 10, role: "img", "aria-label": "archive map, height by width" });
  const best = new Map();
  for (const e of elites) {
    const h = Math.floor(e.cell / (cols * depth)), w = Math.floor(e.cell / depth) % cols, m = e.cell % depth;
    if (slice !== "best" && m !== Number(slice)) continue;
    const key = h * cols + w;
    if (!best.has(key) || best.get(key).fitness < e.fitness) best.set(key, { ...e, h, w, m });
  }
  for (let h = 0; h < rows; h++) for (let w = 0; w < cols; w++)
    svg.append(el("svg:rect", { x: pad + w * px, y: (rows - 1 - h) * px + 5, width: px - 1, height: px - 1, class: "empty" }));
  for (const e of best.values()) {
    const rect = el("svg:rect", { x: pad + e.w * px, y: (rows - 1 - e.h) * px + 5, width: px - 1, height: px - 1,
      fill: colour(scale(e.fitness)), class: "cell" },
    el("svg:title", {}, `cell ${e.cell} (height bin ${e.h}, width bin ${e.w}, mass bin ${e.m}): individual ${e.id}, fitness ${fmt.signed(e.fitness)}`));
    svg.append(el("svg:a", { href: individualUrl(runId, e.id), class: "elite", "data-cell": e.cell, "data-individual": e.id }, rect));
  }
  const [hr, wr] = archive.ranges;
  svg.append(el("svg:text", { x: pad, y: rows * px + 22, class: "axis" }, `width ${wr[0]}–${wr[1]} →`));
  svg.append(el("svg:text", { x: 12, y: rows * px, class: "axis", transform: `rotate(-90 12 ${rows * px})` }, `height ${hr[0]}–${hr[1]} →`));
  return svg;
}

function scatterMap(elites, archive, scale, runId) {
  const size = 420, pad = 40, [hr, wr] = archive.ranges;
  const svg = el("svg:svg", { viewBox: `0 0 ${size + pad} ${size + pad}`, class: "map", width: size + pad });
  svg.append(el("svg:rect", { x: pad, y: 0, width: size, height: size, class: "empty" }));
  for (const e of elites) {
    const x = pad + ((e.d[1] - wr[0]) / (wr[1] - wr[0])) * size, y = size - ((e.d[0] - hr[0]) / (hr[1] - hr[0])) * size;
    svg.append(el("svg:a", { href: individualUrl(runId, e.id), class: "elite", "data-cell": e.cell, "data-individual": e.id },
      el("svg:circle", { cx: x, cy: y, r: 5, fill: colour(scale(e.fitness)), class: "cell" },
        el("svg:title", {}, `individual ${e.id}, fitness ${fmt.signed(e.fitness)}`))));
  }
  return svg;
}

function legend(lo, hi) {
  const svg = el("svg:svg", { viewBox: "0 0 260 30", width: 260, class: "legend" });
  for (let i = 0; i < 50; i++) svg.append(el("svg:rect", { x: 5 + i * 4, y: 2, width: 4, height: 12, fill: colour(i / 49) }));
  svg.append(el("svg:text", { x: 5, y: 27, class: "axis" }, `fitness ${fmt.signed(lo)}`));
  svg.append(el("svg:text", { x: 205, y: 27, class: "axis", "text-anchor": "end" }, fmt.signed(hi)));
  return svg;
}

function lineChart(id, title, xs, series, yIncludeZero) {
  const w = 340, h = 190, left = 48, bottom = 28;
  const ys = series.flatMap((s) => s.ys.filter((y) => y !== null));
  let lo = Math.min(...ys, yIncludeZero ? 0 : Infinity), hi = Math.max(...ys);
  if (!ys.length) { lo = 0; hi = 1; }
  if (hi === lo) hi = lo + 1;
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  const px = (x) => left + ((x - x0) / (x1 - x0)) * (w - left - 10), py = (y) => h - bottom - ((y - lo) / (hi - lo)) * (h - bottom - 10);
  const svg = el("svg:svg", { viewBox: `0 0 ${w} ${h}`, width: w, class: "chart", role: "img", "aria-label": title });
  svg.append(el("svg:line", { x1: left, y1: h - bottom, x2: w - 10, y2: h - bottom, class: "frame" }));
  svg.append(el("svg:line", { x1: left, y1: 10, x2: left, y2: h - bottom, class: "frame" }));
  series.forEach((s, k) => {
    const pts = xs.map((x, i) => (s.ys[i] === null ? null : `${px(x).toFixed(1)},${py(s.ys[i]).toFixed(1)}`)).filter(Boolean);
    svg.append(el("svg:polyline", { points: pts.join(" "), fill: "none", stroke: COLOURS[k], "stroke-width": 1.8 }));
    if (series.length > 1) svg.append(el("svg:text", { x: left + 6 + k * 80, y: 20, fill: COLOURS[k], class: "axis" }, s.name));
  });
  svg.append(el("svg:text", { x: left - 4, y: 16, class: "axis", "text-anchor": "end" }, fmt.num(hi, hi < 10 ? 2 : 0)));
  svg.append(el("svg:text", { x: left - 4, y: h - bottom, class: "axis", "text-anchor": "end" }, fmt.num(lo, hi < 10 ? 2 : 0)));
  svg.append(el("svg:text", { x: w - 10, y: h - 6, class: "axis", "text-anchor": "end" }, `${fmt.int(x1)} ${id === "curve-fractions" ? "batches" : "evaluations"}`));
  return el("figure", { id }, svg, el("figcaption", {}, title));
}

function runningMean(values, window) {
  return values.map((_, i) => { const part = values.slice(Math.max(0, i - window + 1), i + 1); return part.reduce((a, b) => a + b, 0) / part.length; });
}

function showCurves(points) {
  const charts = document.getElementById("charts");
  if (!points.length) { charts.replaceChildren(el("p", { class: "note" }, "No batch committed yet.")); return; }
  const evals = points.map((p) => p.evaluations), batches = points.map((p) => p.batch);
  charts.replaceChildren(
    lineChart("curve-coverage", "coverage (%)", evals, [{ name: "coverage", ys: points.map((p) => 100 * p.coverage) }], true),
    lineChart("curve-qd", "QD score", evals, [{ name: "QD score", ys: points.map((p) => p.qd_score) }], true),
    lineChart("curve-max-fitness", "max fitness (m)", evals, [{ name: "max fitness", ys: points.map((p) => p.max_fitness) }], false),
    lineChart("curve-fractions", "applied / ran / inserted per batch (mean of 10)", batches,
      ["applied", "ran", "inserted"].map((n) => ({ name: n, ys: runningMean(points.map((p) => p[n]), 10) })), true));
  charts.dataset.points = String(points.length);
}

function showOperators(operators) {
  const share = (n, of) => (of ? (100 * n / of).toFixed(1) + "%" : "—");
  document.querySelector("#operator-table tbody").replaceChildren(...operators.map((o) => el("tr", { "data-operator": o.operator },
    el("td", {}, o.operator), el("td", { class: "num" }, fmt.int(o.mutations)), el("td", { class: "num" }, share(o.applied, o.mutations)),
    el("td", { class: "num" }, share(o.ran, o.mutations)), el("td", { class: "num" }, share(o.inserted, o.mutations)),
    el("td", { class: "num" }, share(o.duplicates, o.mutations)),
    el("td", { class: "num" }, o.mutations ? (o.generated_tokens / o.mutations).toFixed(0) : "—"))));
}

function showWalkers(best, runId) {
  const key = best.map((b) => b.individual_id).join(",");
  if (key === run.best) return; // keep the animations playing while the top walkers stay the same
  run.best = key;
  document.getElementById("walker-cards").replaceChildren(...best.map((b, rank) => el("article", { class: "card" },
    el("h3", {}, el("a", { href: individualUrl(runId, b.individual_id) }, `#${rank + 1} · individual ${b.individual_id}`)),
    el("img", { src: `/api/runs/${encodeURIComponent(runId)}/individuals/${b.individual_id}/walker.gif`, width: 320, height: 180,
      alt: `individual ${b.individual_id} walking`, loading: "lazy" }),
    el("p", {}, `fitness ${fmt.signed(b.fitness)} · cell ${b.cell}`))));
}

// -- start ------------------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "index") listen("/api/events", showRuns);
  if (page === "run") {
    const runId = document.body.dataset.run;
    listen(`/api/runs/${encodeURIComponent(runId)}/events`, onRunState);
    document.getElementById("mass-slice").addEventListener("change", () => run.state && showMap(run.state.archive, runId));
    for (const button of document.querySelectorAll("#controls button")) button.addEventListener("click", () => control(button.dataset.action));
  }
});
