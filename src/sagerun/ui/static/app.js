// sagerun ui: three pages over the JSON of /api (runs, a run, compare), routed by the URL's hash.
"use strict";

const main = document.getElementById("main");
const LIVE_MS = 1500; // a run still logging is read again this often
let timer = null;
// plotly.js (4.8 MB) takes most of a second to compile, holding the page's one thread: it is
// fetched once a page is on screen, and the charts are drawn when it is in.
let plotlyLoading = null;
function plotly() {
  plotlyLoading ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/static/plotly.min.js";
    script.onload = resolve;
    script.onerror = () => reject(new Error("plotly.js could not be loaded from this server"));
    document.head.append(script);
  });
  return plotlyLoading;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "onclick" || key === "oninput" || key === "onchange") node[key] = value;
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat()) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

async function api(path) {
  const response = await fetch(path);
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

const runPath = (ref) => ref.split("/").map(encodeURIComponent).join("/");
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "-");
const seconds = (s) => (s === null || s === undefined ? "-" : s < 60 ? `${s.toFixed(1)}s` : `${(s / 60).toFixed(1)}m`);
const show = (value) => (typeof value === "number" ? Number(value.toPrecision(6)).toString() : String(value));

function fail(error) {
  main.replaceChildren(el("p", { class: "error" }, error.message), el("p", {}, el("a", { href: "#/" }, "All runs")));
}

// -- the runs page -------------------------------------------------------------------------------

const COLUMNS = [
  ["experiment", "Experiment"], ["run", "Run"], ["status", "Status"], ["start_time", "Started"],
  ["duration", "Duration"], ["metric_count", "Metrics"], ["point_count", "Points"],
];
const listing = { sort: "start_time", asc: false, selected: new Set() };

async function runsPage() {
  const runs = await api("/api/runs");
  document.title = "sagerun: runs";
  if (!runs.length) {
    main.replaceChildren(el("h1", {}, "Runs"), el("p", { class: "muted" }, "No runs in this store yet: `sagerun demo` logs one."));
    return;
  }
  const experiments = [...new Set(runs.map((r) => r.experiment))].sort();
  const statuses = [...new Set(runs.map((r) => r.status || "-"))].sort();
  const pick = (id, label, values) => el("label", {}, `${label} `, el("select", { id, onchange: draw },
    el("option", { value: "" }, "all"), values.map((v) => el("option", { value: v }, v))));
  const tagFilter = el("input", { id: "tag-filter", placeholder: "tag key=value", oninput: draw });
  const compare = el("button", { id: "compare", onclick: () => {
    location.hash = `#/compare/${[...listing.selected].map(encodeURIComponent).join(",")}`;
  } }, "Compare selected");
  const body = el("tbody");
  const head = el("tr", {}, el("th", {}, ""), COLUMNS.map(([key, label]) => el("th", { "data-key": key, onclick: () => {
    listing.asc = listing.sort === key ? !listing.asc : true;
    listing.sort = key;
    draw();
  } }, label)), el("th", {}, "Tags"));
  main.replaceChildren(el("h1", {}, "Runs"),
    el("div", { class: "filters" }, pick("experiment-filter", "Experiment", experiments), pick("status-filter", "Status", statuses),
      tagFilter, compare, el("span", { id: "count", class: "muted" })),
    el("table", { id: "runs" }, el("thead", {}, head), body));

  function draw() {
    const experiment = document.getElementById("experiment-filter").value;
    const status = document.getElementById("status-filter").value;
    const [tagKey, tagValue] = tagFilter.value.split("=").map((s) => s.trim());
    const shown = runs.filter((r) => (!experiment || r.experiment === experiment)
      && (!status || (r.status || "-") === status)
      && (!tagKey || (tagKey in r.tags && (tagValue === undefined || r.tags[tagKey] === tagValue))));
    const key = listing.sort;
    shown.sort((a, b) => {
      const x = a[key] ?? "", y = b[key] ?? "";
      return (x < y ? -1 : x > y ? 1 : 0) * (listing.asc ? 1 : -1);
    });
    for (const th of head.querySelectorAll("th[data-key]")) {
      th.className = th.dataset.key === key ? `sorted${listing.asc ? " asc" : ""}` : "";
    }
    body.replaceChildren(...shown.map((r) => el("tr", { class: r.parent ? "child" : "", "data-ref": r.ref },
      el("td", {}, el("input", { type: "checkbox", checked: listing.selected.has(r.ref), onchange: (event) => {
        event.target.checked ? listing.selected.add(r.ref) : listing.selected.delete(r.ref);
        compare.disabled = listing.selected.size < 2;
      } })),
      el("td", {}, r.experiment), el("td", { class: "name" }, el("a", { href: `#/run/${runPath(r.ref)}` }, r.run)),
      el("td", {}, r.status || "-"), el("td", {}, when(r.start_time)), el("td", {}, seconds(r.duration)),
      el("td", {}, r.metric_count ?? "-"), el("td", {}, (r.point_count ?? "-").toLocaleString()),
      el("td", {}, Object.entries(r.tags).map(([k, v]) => el("span", { class: "tag" }, `${k}=${v}`))))));
    document.getElementById("count").textContent = `${shown.length} of ${runs.length} runs`;
    compare.disabled = listing.selected.size < 2;
  }
  draw();
}

// -- charts -------------------------------------------------------------------------------------

const view = { x: "step", smoothing: 0 };

function smooth(values, weight) {
  // An exponential moving average, debiased at the start (TensorBoard's smoothing).
  if (!weight) return values;
  let last = 0, out = [];
  values.forEach((v, i) => { last = last * weight + (1 - weight) * v; out.push(last / (1 - weight ** (i + 1))); });
  return out;
}

function trace(series, name) {
  // A point logged without a step (-1) is drawn at its place in the series.
  const x = view.x === "time" ? series.timestamps.map((t) => new Date(t * 1000)) : series.steps.map((s, i) => (s < 0 ? i : s));
  return { x, y: smooth(series.values, view.smoothing), name, mode: "lines", type: "scatter",
    hovertemplate: `%{y}<extra>${name}</extra>` };
}

function draw(div, metric, traces, total) {
  if (!window.Plotly) return; // drawn once plotly.js is in
  div.dataset.series = traces.length;
  div.dataset.points = traces.reduce((sum, t) => sum + t.x.length, 0);
  div.dataset.total = total;
  Plotly.react(div, traces, {
    title: { text: metric, font: { size: 14 } }, margin: { l: 50, r: 20, t: 36, b: 36 },
    xaxis: { title: { text: view.x === "time" ? "time" : "step" } }, showlegend: traces.length > 1,
  }, { responsive: true, displaylogo: false });
}

function controls(redraw) {
  return el("div", { class: "filters" },
    el("label", {}, "x-axis ", el("select", { id: "x-axis", onchange: (e) => { view.x = e.target.value; redraw(); } },
      el("option", { value: "step", selected: view.x === "step" }, "step"),
      el("option", { value: "time", selected: view.x === "time" }, "time"))),
    el("label", {}, "smoothing ", el("input", { id: "smoothing", type: "range", min: 0, max: 0.99, step: 0.01,
      value: view.smoothing, oninput: (e) => { view.smoothing = Number(e.target.value); redraw(); } })));
}

// -- a run ----------------------------------------------------------------------------------------

function keyValues(id, title, values) {
  const entries = Object.entries(values);
  return [el("h2", {}, title), entries.length
    ? el("table", { id }, el("tbody", {}, entries.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, show(v))))))
    : el("p", { class: "muted" }, `no ${title.toLowerCase()}`)];
}

function artifactRow(a, preview) {
  const value = a.url
    ? [el("a", { href: `${a.url}?download`, download: "" }, a.value.split("/").pop()),
       (a.media_type || "").startsWith("image/") ? el("img", { class: "artifact", src: a.url, alt: a.name }) : ""]
    : [a.value];
  const kind = a.kind.startsWith("Table") || a.kind.startsWith("input Table")
    ? [a.kind, " ", el("button", { class: "preview", "data-table": a.name, onclick: () => preview(a.name, 0) }, "preview")]
    : [a.kind];
  return el("tr", {}, el("td", {}, a.name), el("td", {}, kind), el("td", {}, value), el("td", {}, a.media_type || "-"));
}

const PAGE_ROWS = 50;

async function tablePage(panel, ref, name, offset) {
  const page = await api(`/api/runs/${runPath(ref)}/tables/${encodeURIComponent(name)}?offset=${offset}&limit=${PAGE_ROWS}`);
  const last = Math.min(offset + page.rows.length, page.row_count);
  const go = (to) => tablePage(panel, ref, name, to);
  panel.replaceChildren(el("h2", {}, `Table ${name}`),
    el("div", { class: "filters" },
      el("button", { id: "table-previous", disabled: offset === 0, onclick: () => go(Math.max(0, offset - PAGE_ROWS)) }, "previous"),
      el("span", { id: "table-range" }, `rows ${page.row_count ? offset + 1 : 0}–${last} of ${page.row_count.toLocaleString()}`),
      el("button", { id: "table-next", disabled: last >= page.row_count, onclick: () => go(offset + PAGE_ROWS) }, "next")),
    el("table", { id: "table-preview", "data-offset": offset },
      el("thead", {}, el("tr", {}, page.columns.map((c) => el("th", {}, c)))),
      el("tbody", {}, page.rows.map((row) => el("tr", {}, row.map((v) => el("td", {}, v === null ? "" : show(v))))))));
}

// The chart documents of log_confusion_matrix, log_roc_curve and log_precision_recall.
function drawDocument(div, doc) {
  const layout = { title: { text: doc.title || doc.type, font: { size: 14 } }, margin: { l: 60, r: 20, t: 36, b: 48 } };
  let traces;
  if (doc.type === "ConfusionMatrix") {
    const labels = (doc.labels || doc.confusionMatrix.map((_, i) => i)).map(String);
    traces = [{ type: "heatmap", z: doc.confusionMatrix, x: labels, y: labels, colorscale: "Blues", reversescale: true,
      text: doc.confusionMatrix.map((row) => row.map(String)), texttemplate: "%{text}",
      hovertemplate: "true %{y}, predicted %{x}: %{z}<extra></extra>" }];
    Object.assign(layout, { xaxis: { title: { text: "Predicted label" }, type: "category" },
      yaxis: { title: { text: "True label" }, type: "category", autorange: "reversed" } });
  } else if (doc.type === "ROCCurve") {
    traces = [{ x: doc.falsePositiveRate, y: doc.truePositiveRate, mode: "lines", name: `AUC ${show(doc.areaUnderCurve)}` },
      { x: [0, 1], y: [0, 1], mode: "lines", line: { dash: "dash", color: "grey" }, name: "chance" }];
    Object.assign(layout, { xaxis: { title: { text: "False positive rate" } }, yaxis: { title: { text: "True positive rate" } } });
  } else {
    traces = [{ x: doc.recall, y: doc.precision, mode: "lines", name: `AP ${show(doc.averagePrecisionScore)}` }];
    Object.assign(layout, { xaxis: { title: { text: "Recall" } }, yaxis: { title: { text: "Precision" } } });
  }
  div.dataset.kind = doc.type;
  Plotly.react(div, traces, layout, { responsive: true, displaylogo: false });
}

async function runPage(ref) {
  const run = await api(`/api/runs/${runPath(ref)}`);
  document.title = `sagerun: ${run.ref}`;
  const charts = el("div", { class: "charts" });
  const divs = new Map(run.metrics.map((m) => [m.name, el("div", { class: "chart", "data-metric": m.name })]));
  charts.append(...divs.values());
  const series = new Map();
  const redraw = () => { for (const [name, s] of series) draw(divs.get(name), name, [trace(s, run.run)], s.total); };
  const links = [];
  if (run.parent_ref) links.push(el("p", {}, "child of ", el("a", { href: `#/run/${runPath(run.parent_ref)}` }, run.parent_ref)));
  if (run.children.length) {
    links.push(el("p", { id: "children" }, "children: ", run.children.map((c) => el("a", { href: `#/run/${runPath(c)}` }, `${c} `))));
  }
  const artifacts = [...run.artifacts.input.map((a) => ({ ...a, kind: `input ${a.kind}` })), ...run.artifacts.output];
  const CHARTS = ["ConfusionMatrix", "ROCCurve", "PrecisionRecallCurve"];
  const documents = run.artifacts.output.filter((a) => CHARTS.includes(a.kind));
  const documentDivs = documents.map((a) => el("div", { class: "chart", "data-chart": a.name }));
  const panel = el("div", { id: "table-panel" });
  const preview = (name, offset) => tablePage(panel, ref, name, offset).catch((error) => {
    panel.replaceChildren(el("p", { class: "error" }, error.message));
  });
  main.replaceChildren(
    el("h1", {}, run.ref, " ", el("span", { id: "status", class: "muted" }, run.status || "-")),
    el("p", { class: "muted" }, `started ${when(run.start_time)}, duration ${seconds(run.duration)}`),
    ...links,
    Object.keys(run.tags).length ? el("p", { id: "tags" }, Object.entries(run.tags).map(([k, v]) => el("span", { class: "tag" }, `${k}=${v}`))) : "",
    ...keyValues("parameters", "Parameters", run.parameters),
    el("h2", {}, "Metrics"), run.metrics.length ? controls(redraw) : el("p", { class: "muted" }, "no metrics"), charts,
    el("h2", {}, "Artifacts"), artifacts.length
      ? el("table", { id: "artifacts" }, el("thead", {}, el("tr", {}, ["Name", "Kind", "Value", "Media type"].map((h) => el("th", {}, h)))),
        el("tbody", {}, artifacts.map((a) => artifactRow(a, preview))))
      : el("p", { class: "muted" }, "no artifacts"),
    panel,
    documents.length ? el("h2", {}, "Charts") : "", documents.length ? el("div", { class: "charts" }, documentDivs) : "",
    run.models.length ? el("p", {}, "registered: ", run.models.map((m) => `${m.id} (${m.approval_status}) `)) : "");

  async function load() {
    await Promise.all(run.metrics.map(async (m) => {
      series.set(m.name, await api(`/api/runs/${runPath(ref)}/metrics/${encodeURIComponent(m.name)}`));
    }));
    redraw();
  }
  document.body.dataset.shown = location.hash;
  await new Promise(requestAnimationFrame); // on screen before plotly.js holds the thread
  const drawn = documents.map((a) => api(`/api/runs/${runPath(ref)}/charts/${encodeURIComponent(a.name)}`));
  await Promise.all([load(), plotly()]);
  redraw();
  await Promise.all(drawn.map(async (doc, i) => drawDocument(documentDivs[i], await doc)));
  if (run.status === "InProgress") {
    timer = setInterval(async () => {
      const now = await api(`/api/runs/${runPath(ref)}`);
      document.getElementById("status").textContent = now.status || "-";
      for (const m of now.metrics) {
        if (!divs.has(m.name)) { divs.set(m.name, el("div", { class: "chart", "data-metric": m.name })); charts.append(divs.get(m.name)); }
      }
      run.metrics = now.metrics;
      await load();
      if (now.status !== "InProgress") clearInterval(timer);
    }, LIVE_MS);
  }
}

// -- compare ------------------------------------------------------------------------------------

async function comparePage(refs) {
  const runs = await Promise.all(refs.map((ref) => api(`/api/runs/${runPath(ref)}`)));
  document.title = "sagerun: compare";
  const names = [...new Set(runs.flatMap((r) => r.metrics.map((m) => m.name)))].sort();
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.parameters)))].sort();
  const rows = keys.map((k) => {
    const values = runs.map((r) => (k in r.parameters ? show(r.parameters[k]) : "-"));
    return el("tr", { class: new Set(values).size > 1 ? "differs" : "", "data-parameter": k }, el("th", {}, k),
      values.map((v) => el("td", { class: "value" }, v)));
  });
  const charts = el("div", { class: "charts" });
  const divs = new Map(names.map((n) => [n, el("div", { class: "chart", "data-metric": n })]));
  charts.append(...divs.values());
  const loaded = new Map();
  const redraw = () => {
    for (const name of names) {
      const traces = runs.filter((r) => loaded.has(`${r.ref}\n${name}`)).map((r) => trace(loaded.get(`${r.ref}\n${name}`), r.ref));
      draw(divs.get(name), name, traces, traces.length);
    }
  };
  main.replaceChildren(el("h1", {}, `Compare ${runs.length} runs`),
    el("h2", {}, "Parameters"),
    el("table", { id: "compare-parameters" }, el("thead", {}, el("tr", {}, el("th", {}, ""), runs.map((r) => el("th", {}, r.ref)))),
      el("tbody", {}, rows)),
    el("h2", {}, "Metrics"), controls(redraw), charts);
  await Promise.all([plotly(), ...runs.flatMap((r) => r.metrics.map(async (m) => {
    loaded.set(`${r.ref}\n${m.name}`, await api(`/api/runs/${runPath(r.ref)}/metrics/${encodeURIComponent(m.name)}`));
  }))]);
  redraw();
}

// -- routing ------------------------------------------------------------------------------------

async function route() {
  clearInterval(timer);
  const hash = decodeURIComponent(location.hash.slice(1) || "/");
  try {
    if (hash.startsWith("/run/")) await runPage(hash.slice("/run/".length));
    else if (hash.startsWith("/compare/")) await comparePage(hash.slice("/compare/".length).split(","));
    else await runsPage();
    document.body.dataset.ready = hash;
  } catch (error) {
    fail(error);
    document.body.dataset.ready = hash;
  }
}

window.addEventListener("hashchange", route);
route();
