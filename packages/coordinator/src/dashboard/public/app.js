// The dashboard page: one Server-Sent Events stream (/api/events) feeds the charts (uPlot), the figures and
// the worker cards; kernel and feature-map images are plain <img> elements pointed at the coordinator's PNGs.
'use strict';

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};

const state = {
  run: null,
  steps: [], // {step, loss, top1_error, images_per_s, ms, lr}; step = steps done
  evals: [], // {step, loss, top1_error, top5_error, images}
  norms: [], // {step, layers: [{layer, weight, update, bias}]}: every --norms-every steps
  last: null,
  ended: null,
  // why both workers are shown as stopped: the run ended, or the coordinator is gone (no steps without it); null while running
  workersStopped: null,
  workers: [null, null], // each worker's last status that answered, shown (as stopped) once the run ends
  kernelStep: [null, null],
  image: null, // chosen test image index
  mapsWaiting: false, // no test images yet: a run folder's come with its first checkpoint
  mapsLoading: null, // the test images being asked for
};

// ---- formatting
const bytes = (n) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
const pct = (x) => `${(100 * x).toFixed(1)}%`;
const num = (x, d = 3) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : Number(x).toFixed(d));

// ---- charts
const charts = {};
/** Each chart's series (after x) and y label; the series marked `smoothed` are drawn from the one before them. */
const chartDefs = {};

/** The chart controls, kept in this browser for the next visit. */
const prefs = {
  smoothing: 0.6,
  logLoss: false,
};
try {
  const saved = JSON.parse(localStorage.getItem('alexnet-mp.charts') || '{}');
  if (typeof saved.smoothing === 'number' && saved.smoothing >= 0 && saved.smoothing < 1) prefs.smoothing = saved.smoothing;
  if (typeof saved.logLoss === 'boolean') prefs.logLoss = saved.logLoss;
} catch {
  /* no storage (a private window): the defaults */
}
const savePrefs = () => {
  try {
    localStorage.setItem('alexnet-mp.charts', JSON.stringify(prefs));
  } catch {
    /* not kept */
  }
};

function chartSize(div) {
  const w = Math.max(280, div.clientWidth || 400);
  return { width: w, height: 220 };
}

/** `yValues`: the y axis's tick labels (uPlot's `values`), when its own would not do (powers of ten below 0.01). */
function makeChart(id, series, yLabel, yScale = () => ({}), yValues = undefined) {
  chartDefs[id] = { series, yLabel, yScale, yValues };
  buildChart(id);
}

function buildChart(id) {
  const { series, yLabel, yScale, yValues } = chartDefs[id];
  const div = document.getElementById(id);
  const old = charts[id];
  if (old) old.destroy();
  const opts = {
    ...chartSize(div),
    scales: { x: { time: false }, y: yScale() },
    axes: [{ label: 'step' }, yValues ? { label: yLabel, values: yValues } : { label: yLabel }],
    series: [{ label: 'step' }, ...series],
    legend: { live: true },
  };
  const data = old ? old.data : [[], ...series.map(() => [])];
  charts[id] = new uPlot(opts, data, div);
}

/** A per-step series: the raw values faint, and their smoothed curve (both in the legend). */
const perStep = (label, colour, value) => [
  { label, stroke: colour + '55', width: 1, value },
  { label: `${label} (smoothed)`, stroke: colour, width: 2, value, smoothed: true },
];

function initCharts() {
  const asPct = (u, v) => (v == null ? '-' : pct(v));
  makeChart('loss-chart', [
    ...perStep('training', '#1f77b4'),
    { label: 'held-out', stroke: '#d62728', width: 2, spanGaps: true, points: { show: true, size: 6 } },
  ], 'loss', () => (prefs.logLoss ? { distr: 3 } : {}));
  makeChart('error-chart', [
    ...perStep('training top-1', '#1f77b4', asPct),
    { label: 'held-out top-1', stroke: '#d62728', width: 2, spanGaps: true, points: { show: true, size: 6 }, value: asPct },
    { label: 'held-out top-5', stroke: '#ff7f0e', width: 2, spanGaps: true, points: { show: true, size: 6 }, value: asPct },
  ], 'error', () => ({}));
  makeChart('rate-chart', perStep('images/s', '#2ca02c'), 'images/s', () => ({}));
  window.addEventListener('resize', () => {
    for (const [id, c] of Object.entries(charts)) c.setSize(chartSize(document.getElementById(id)));
  });
  initChartControls();
}

function initChartControls() {
  const slider = $('#smoothing');
  const shown = $('#smoothing-value');
  const log = $('#log-loss');
  slider.value = String(prefs.smoothing);
  shown.textContent = prefs.smoothing.toFixed(2);
  log.checked = prefs.logLoss;
  slider.addEventListener('input', () => {
    prefs.smoothing = Math.min(0.99, Math.max(0, Number(slider.value)));
    shown.textContent = prefs.smoothing.toFixed(2);
    savePrefs();
    redraw();
  });
  log.addEventListener('change', () => {
    prefs.logLoss = log.checked;
    savePrefs();
    buildChart('loss-chart');
    redraw();
  });
}

/** Step points and evaluation points merged on one x axis (steps done); gaps are null. */
function chartData() {
  const xs = [], loss = [], evalLoss = [], err = [], e1 = [], e5 = [], rate = [];
  let i = 0, j = 0;
  const S = state.steps, E = state.evals;
  while (i < S.length || j < E.length) {
    const sx = i < S.length ? S[i].step : Infinity;
    const ex = j < E.length ? E[j].step : Infinity;
    const x = Math.min(sx, ex);
    const s = sx === x ? S[i++] : null;
    const e = ex === x ? E[j++] : null;
    xs.push(x);
    loss.push(s ? s.loss : null);
    err.push(s ? s.top1_error : null);
    rate.push(s ? s.images_per_s : null);
    evalLoss.push(e ? e.loss : null);
    e1.push(e ? e.top1_error : null);
    e5.push(e ? e.top5_error : null);
  }
  return { xs, loss, evalLoss, err, e1, e5, rate };
}

/** A chart's data from its measured series: each smoothed series follows the one before it. */
function withSmoothed(id, xs, measured) {
  const out = [xs];
  let k = 0;
  for (const def of chartDefs[id].series) out.push(def.smoothed ? smoothSeries(out[out.length - 1], prefs.smoothing) : measured[k++]);
  return out;
}

// ---- the layers' update/weight ratios: a chart made when the first reading comes (its series are the layers)
const LAYER_COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

function drawNorms() {
  const N = state.norms;
  if (N.length === 0) return;
  const layers = N[0].layers.map((l) => l.layer);
  if (!charts['norms-chart']) {
    $('#norms-figure').hidden = false;
    const sci = (u, v) => (v == null ? '-' : v.toExponential(2));
    makeChart('norms-chart', layers.map((name, i) => ({ label: name, stroke: LAYER_COLOURS[i % LAYER_COLOURS.length], width: 2, points: { show: N.length < 50, size: 4 }, value: sci })), '|Δw| / |w|', () => ({ distr: 3 }), (u, ticks) => ticks.map((v) => (v == null ? '' : v.toExponential(0))));
  }
  const xs = N.map((p) => p.step);
  const ys = layers.map((name) =>
    N.map((p) => {
      const l = p.layers.find((q) => q.layer === name);
      // (a ratio of 0 has no place on the log scale)
      return l && l.ratio ? l.ratio : null;
    }),
  );
  charts['norms-chart'].setData([xs, ...ys]);
  document.getElementById('norms-chart').dataset.points = String(ys.reduce((a, y) => a + y.filter((v) => v != null).length, 0));
}

let redrawPending = false;
function redraw() {
  if (redrawPending) return;
  redrawPending = true;
  requestAnimationFrame(() => {
    redrawPending = false;
    const d = chartData();
    // a log scale has no place for a loss of 0 (float32 can reach it on tiny data): left out there
    const onScale = (ys) => (prefs.logLoss ? ys.map((v) => (v != null && v <= 0 ? null : v)) : ys);
    const measured = { 'loss-chart': [onScale(d.loss), onScale(d.evalLoss)], 'error-chart': [d.err, d.e1, d.e5], 'rate-chart': [d.rate] };
    for (const [id, ys] of Object.entries(measured)) {
      charts[id].setData(withSmoothed(id, d.xs, ys));
      // the measured points each chart holds (the smoothed curves not counted), for people and for the end-to-end test
      document.getElementById(id).dataset.points = String(ys.reduce((a, y) => a + y.filter((v) => v != null).length, 0));
    }
    drawNorms();
    figures();
  });
}

function figures() {
  const S = state.steps;
  const last = S[S.length - 1];
  const total = state.run && state.run.steps;
  $('#fig-step').textContent = last ? (total ? `${last.step} / ${total}` : String(last.step)) : '-';
  const tail = S.slice(-10);
  const sorted = tail.map((s) => s.images_per_s).sort((a, b) => a - b);
  $('#fig-rate').textContent = sorted.length ? sorted[Math.floor(sorted.length / 2)].toFixed(1) : '-';
  $('#fig-loss').textContent = tail.length ? num(tail.reduce((a, s) => a + s.loss, 0) / tail.length) : '-';
  const ev = state.evals[state.evals.length - 1];
  $('#fig-eval').textContent = ev ? `${pct(ev.top1_error)} (step ${ev.step})` : '-';
  $('#fig-lr').textContent = last ? String(last.lr) : '-';
  // a step cut into micro-batches (--micro-batches) sends the same bytes in N parts
  const micro = state.last && state.last.micro_batches > 1 ? ` in ${state.last.micro_batches} micro-batches` : '';
  if (state.last) $('#fig-bytes').textContent = bytes(state.last.workers.reduce((a, w) => a + w.sent_bytes, 0)) + micro;
}

// ---- run header and events list
function showRun(run) {
  state.run = run;
  if (!run) return;
  const parts = [run.run_id, `preset ${run.preset}`, `batch ${run.batch}`, run.data];
  if (run.eval) parts.push(`evaluation: ${run.eval.data}${run.eval.every ? `, every ${run.eval.every} steps` : ''}`);
  $('#run-title').textContent = parts.filter(Boolean).join(' · ');
  setState(state.ended ? state.ended : 'running');
  for (const w of run.workers || []) {
    const card = document.getElementById(`worker-${w.tower}`);
    if (card) $('.addr', card).textContent = `${w.address} · ${w.host} · pid ${w.pid}`;
  }
}

function setState(s) {
  const b = $('#run-state');
  b.textContent = s;
  b.className = `badge ${s.split(' ')[0]}`;
}

function note(e) {
  const li = el('li');
  const what = { ...e };
  delete what.event;
  li.textContent = `${e.event}: ${JSON.stringify(what)}`;
  $('#notes').prepend(li);
  if (['done', 'failed', 'stopped'].includes(e.event)) {
    state.ended = e.event === 'done' ? 'finished' : e.event === 'failed' ? `failed (worker ${e.tower})` : `stopped (${e.reason})`;
    setState(state.ended);
    workersStopped(e.event === 'done' ? 'run finished' : e.event === 'failed' ? 'run failed' : `run stopped: ${e.reason}`);
  }
}

/** Both workers shown as stopped (`why`), or as their last status says again (null: the coordinator is back and the run goes on). */
function workersStopped(why) {
  state.workersStopped = why;
  for (const tower of [0, 1]) {
    const card = document.getElementById(`worker-${tower}`);
    if (!card) continue;
    if (state.workers[tower]) workerCard(state.workers[tower]);
    else {
      card.classList.toggle('stopped', Boolean(why));
      if (why) $('dl.status', card).replaceChildren(el('dt', {}, 'state'), el('dd', { 'data-key': 'state' }, `stopped (${why})`));
    }
  }
}

// ---- workers
function initWorkers() {
  const template = document.getElementById('worker-card');
  for (const tower of [0, 1]) {
    const card = template.content.firstElementChild.cloneNode(true);
    card.id = `worker-${tower}`;
    card.dataset.tower = String(tower);
    $('.tower', card).textContent = String(tower);
    $('.kernels img', card).id = `kernels-${tower}`;
    $('#workers').append(card);
  }
}

function workerCard(w) {
  const card = document.getElementById(`worker-${w.tower}`);
  if (!card) return;
  if (!w.unreachable) state.workers[w.tower] = w;
  // once the run has ended (or the coordinator is gone) a worker is stopped, whatever it last said (STEPPING) or
  // whether it still answers: its last answer is shown with the state "stopped"
  const stopped = state.workersStopped;
  if (stopped && w.unreachable && state.workers[w.tower]) w = state.workers[w.tower];
  card.classList.toggle('unreachable', Boolean(w.unreachable) && !stopped);
  card.classList.toggle('stopped', Boolean(stopped));
  const timing = w.last_step_timing;
  const rows = w.unreachable
    ? [stopped ? ['state', `stopped (${stopped})`] : ['status', `no answer: ${w.unreachable}`]]
    : [
        ['state', stopped ? `stopped (${stopped})` : w.state],
        ['device', String(w.device)],
        ['adapter', w.adapter],
        ['gpu.js mode', w.backend],
        ['steps done', String(w.steps_done)],
        ['evaluations', String(w.evaluations_done)],
        ['step time', timing ? `${num(timing.total_ms, 1)} ms (compute ${num(timing.compute_ms, 1)}, exchange waited ${num(timing.exchange_ms, 1)}, hidden ${num(timing.exchange_hidden_ms ?? 0, 1)}, update ${num(timing.update_ms, 1)})` : '-'],
        ['uptime', `${num(w.uptime_s, 0)} s`],
        ['memory', w.rss_mib == null ? '-' : `${num(w.rss_mib, 0)} MiB resident`],
      ];
  if (w.last_error) rows.push(['last error', w.last_error]);
  const dl = $('dl.status', card);
  dl.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', { 'data-key': k }, v ?? '-')]));
  const total = new Map((w.run_traffic || []).map((t) => [t.point, t]));
  const body = $('table.traffic tbody', card);
  body.replaceChildren(
    ...(w.last_step_traffic || []).map((t) => {
      const r = total.get(t.point) || {};
      const cell = (k) => {
        const td = el('td', {}, bytes(t[k]));
        td.append(el('small', {}, bytes(r[k] || 0)));
        return td;
      };
      const tr = el('tr', { 'data-point': t.point });
      tr.append(el('td', {}, t.point), cell('forward_sent_bytes'), cell('forward_received_bytes'), cell('backward_sent_bytes'), cell('backward_received_bytes'));
      return tr;
    }),
  );
}

// ---- kernels and feature maps
function fitPixels(img) {
  // small images (tiny preset: 3x3 kernels) are scaled up by a whole factor, pixels kept sharp
  const scale = Math.max(1, Math.min(12, Math.floor(Math.min(440, img.parentElement.clientWidth || 440) / img.naturalWidth)));
  img.style.width = `${img.naturalWidth * scale}px`;
}

function refreshKernels(tower, step, colour) {
  if (state.kernelStep[tower] === step) return;
  state.kernelStep[tower] = step;
  const img = document.getElementById(`kernels-${tower}`);
  img.onload = () => {
    fitPixels(img);
    img.alt = `tower ${tower}'s conv1 kernels after step ${step}`;
    const score = colour === null || colour === undefined ? '' : `, colour share ${colour.toFixed(2)} (0 grey, 1 pure colour, ~0.67 random)`;
    $('.kernels-step', img.closest('.worker')).textContent = `after step ${step}${score}`;
  };
  img.src = `/api/kernels/${tower}.png?step=${step}`;
  if (state.image !== null && tower === 1) showMaps();
}

/** initMaps, one at a time (the page's first load and a kernels event may ask at once). */
function loadMaps() {
  state.mapsLoading ??= initMaps()
    .catch((e) => ($('#maps-note').textContent = `test images: ${e.message}`))
    .finally(() => (state.mapsLoading = null));
  return state.mapsLoading;
}

async function initMaps() {
  const r = await fetch('/api/test-images');
  const { images, layers } = await r.json();
  const sel = $('#map-layer');
  sel.replaceChildren(...layers.map((l) => el('option', { value: l }, l)));
  sel.onchange = () => state.image !== null && showMaps();
  // no layers yet: a run folder before its first checkpoint (the next kernels event asks again)
  state.mapsWaiting = layers.length === 0;
  if (images.length === 0) {
    $('#maps-note').textContent = layers.length === 0 ? 'no test images yet: they come with the first checkpoint' : 'no test images in this run';
    return;
  }
  const box = $('#test-images');
  box.replaceChildren(
    ...images.map((t) => {
      const b = el('button', { type: 'button', 'data-index': String(t.index), title: `test image ${t.index}, class ${t.label}` });
      const img = el('img', { src: `/api/test-images/${t.index}.png`, alt: `test image ${t.index}` });
      img.className = 'pixels thumb';
      b.append(img);
      b.onclick = () => {
        state.image = t.index;
        for (const o of box.children) o.classList.toggle('chosen', o === b);
        showMaps();
      };
      return b;
    }),
  );
}

function showMaps() {
  const layer = $('#map-layer').value;
  const i = state.image;
  $('#maps-note').textContent = `test image ${i}, ${layer}: loading`;
  let loaded = 0;
  for (const tower of [0, 1]) {
    const img = document.getElementById(`maps-${tower}`);
    img.onload = () => {
      fitPixels(img);
      if (++loaded === 2) $('#maps-note').textContent = `test image ${i}, ${layer}, weights after step ${state.kernelStep[1] ?? '?'}: one tile per channel`;
    };
    img.onerror = () => ($('#maps-note').textContent = `test image ${i}, ${layer}: the workers did not answer`);
    img.alt = `worker ${tower}'s ${layer} feature maps of test image ${i}`;
    img.src = `/api/activations/${tower}.png?image=${i}&layer=${encodeURIComponent(layer)}&t=${Date.now()}`;
  }
}

// ---- the stream
function connect() {
  const es = new EventSource('/api/events');
  es.addEventListener('open', () => {
    setState(state.ended || (state.run ? 'running' : 'waiting'));
    if (!state.ended && state.workersStopped) workersStopped(null);
  });
  es.addEventListener('error', () => {
    setState(state.ended ? `${state.ended}; coordinator gone` : 'disconnected');
    // nothing steps without the coordinator
    if (!state.workersStopped) workersStopped('coordinator gone');
  });
  es.addEventListener('snapshot', (m) => {
    const s = JSON.parse(m.data);
    state.steps = s.steps;
    state.evals = s.evals;
    state.norms = s.norms || [];
    state.last = s.last;
    $('#notes').replaceChildren();
    for (const n of s.notes) note(n);
    showRun(s.run);
    redraw();
  });
  es.addEventListener('run', (m) => showRun(JSON.parse(m.data).run));
  es.addEventListener('step', (m) => {
    const e = JSON.parse(m.data);
    state.steps.push(e.point);
    state.last = e.last;
    redraw();
  });
  es.addEventListener('eval', (m) => {
    const point = JSON.parse(m.data).point;
    // one point per step: an evaluation done again replaces the first
    state.evals = [...state.evals.filter((p) => p.step !== point.step), point];
    redraw();
  });
  es.addEventListener('norms', (m) => {
    state.norms.push(JSON.parse(m.data).point);
    redraw();
  });
  // the run went back to a checkpoint (a resumed session, a restart after a lost worker): the points past it are done again
  es.addEventListener('rewind', (m) => {
    const to = JSON.parse(m.data).to;
    const kept = (p) => p.step <= to;
    state.steps = state.steps.filter(kept);
    state.evals = state.evals.filter(kept);
    state.norms = state.norms.filter(kept);
    redraw();
  });
  es.addEventListener('note', (m) => note(JSON.parse(m.data).event));
  es.addEventListener('status', (m) => {
    for (const w of JSON.parse(m.data).workers) workerCard(w);
  });
  es.addEventListener('kernels', (m) => {
    const e = JSON.parse(m.data);
    refreshKernels(e.tower, e.step, e.colour);
    // a run folder's first checkpoint: its test images and layers are there now too
    if (state.mapsWaiting) loadMaps();
  });
}

window.addEventListener('DOMContentLoaded', () => {
  initCharts();
  initWorkers();
  connect();
  loadMaps();
});
