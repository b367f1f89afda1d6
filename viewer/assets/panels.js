// panels.js — what the report shows beside the timeline: in-flight
// activations over time (one chart per trace, one line per rank, following
// the timeline's zoom), the metrics table of each trace with the schedule's
// analytic values beside the measured ones, and, given several traces, the
// comparison table. Values come from the JSON (viewer/html.c, computed by
// exporters/metrics.c); the activation curves from model.js.

const CHART_H = 150;

function ActChart(root, T, yMax, timeline) {
  this.T = T;
  this.yMax = Math.max(1, yMax);
  this.timeline = timeline;
  const box = add(root, 'div', 'act');
  const head = add(box, 'div', 'act-head');
  add(head, 'span', 'act-title', T.title);
  const m = T.metrics;
  add(head, 'span', 'muted', ' peak ' + Math.max(0, ...T.ranks.map((R) => R.act.peak)) +
    (m.theory_peak !== null ? ' (theory ' + m.theory_peak + ')' : '') + ' chunk activations');
  const row = add(box, 'div', 'act-row');
  const leg = add(row, 'div', 'act-legend');
  leg.style.width = GUTTER + 'px';
  T.ranks.forEach((R, i) => {
    const item = add(leg, 'div', 'act-item');
    item.dataset.rank = String(R.rank);
    const sw = add(item, 'span', 'swatch');
    sw.style.background = RANK_COLORS[i % RANK_COLORS.length];
    add(item, 'span', '', 'r' + R.rank + ' peak ' + R.act.peak);
  });
  this.canvas = add(row, 'canvas', 'act-canvas');
  this.ctx = this.canvas.getContext('2d');
  this.canvas.addEventListener('mousemove', (ev) => this.hoverAt(ev));
  this.canvas.addEventListener('mouseleave', () => { timeline.tip.hidden = true; });
}

ActChart.prototype.draw = function () {
  const W = this.timeline.W, H = CHART_H, dpr = window.devicePixelRatio || 1;
  if (this.canvas.width !== Math.round(W * dpr)) {
    this.canvas.width = Math.round(W * dpr);
    this.canvas.height = Math.round(H * dpr);
    this.canvas.style.width = W + 'px';
    this.canvas.style.height = H + 'px';
  }
  const ctx = this.ctx, v = this.timeline.view, nsPerPx = (v.t1 - v.t0) / W;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, W, H);
  const top = 8, bottom = H - 16;
  const yOf = (c) => bottom - (c / this.yMax) * (bottom - top);
  ctx.font = '10px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'left';
  const ystep = niceStep(this.yMax / 4);
  for (let c = 0; c <= this.yMax; c += ystep) {
    ctx.fillStyle = COLOR.grid;
    ctx.fillRect(0, Math.round(yOf(c)), W, 1);
    ctx.fillStyle = COLOR.muted;
    ctx.fillText(String(c), 2, yOf(c) - 6);
  }
  const tstep = niceStep(nsPerPx * 90);
  ctx.fillStyle = COLOR.muted;
  for (let t = Math.ceil(v.t0 / tstep) * tstep; t <= v.t1; t += tstep) {
    const x = Math.round((t - v.t0) / nsPerPx);
    ctx.fillRect(x, bottom, 1, 4);
    ctx.fillText(tickLabel(t, tstep), x + 3, H - 6);
  }
  this.T.ranks.forEach((R, i) => {
    const a = R.act;
    if (!a.time.length) return;
    ctx.strokeStyle = RANK_COLORS[i % RANK_COLORS.length];
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let j = Math.max(0, upperBound(a.time, v.t0) - 1);
    const end = Math.min(a.time.length, upperBound(a.time, v.t1) + 1);
    let x = Math.max(0, (a.time[j] - v.t0) / nsPerPx), y = yOf(j < a.time.length && a.time[j] <= v.t0 ? a.count[j] : 0);
    ctx.moveTo(x, yOf(0));
    ctx.lineTo(x, y);
    // steps; many points in one pixel become its min..max
    let px = Math.floor(x), lo = y, hi = y;
    for (j = j + 1; j < end; j++) {
      const nx = (a.time[j] - v.t0) / nsPerPx, ny = yOf(a.count[j]);
      if (Math.floor(nx) === px) { lo = Math.min(lo, ny); hi = Math.max(hi, ny); y = ny; continue; }
      if (lo !== hi) { ctx.lineTo(px, lo); ctx.lineTo(px, hi); }
      ctx.lineTo(nx, y);
      ctx.lineTo(nx, ny);
      px = Math.floor(nx);
      lo = hi = y = ny;
    }
    ctx.lineTo(Math.min(W, (this.T.span - v.t0) / nsPerPx), y);
    ctx.stroke();
  });
};

// The count of each rank at time t.
function actAt(a, t) {
  const j = upperBound(a.time, t) - 1;
  return j < 0 ? 0 : a.count[j];
}

ActChart.prototype.hoverAt = function (ev) {
  const r = this.canvas.getBoundingClientRect();
  const t = this.timeline.timeAt(ev.clientX - r.left);
  const lines = [['', 'in-flight activations at ' + fmtNs(t, this.T.span), 'tip-title']];
  this.T.ranks.forEach((R) => lines.push(['r' + R.rank, String(actAt(R.act, t)) + ' (peak ' + R.act.peak + ')']));
  this.timeline.showTip(ev, lines);
};

// ------------------------------------------------------------- tables

function cellNs(tr, ns, scale, cls) {
  return add(tr, 'td', 'num' + (cls ? ' ' + cls : ''), ns === null || ns === undefined ? '–' : fmtNs(ns, scale));
}

// " (F=1ms B=2ms I=1ms W=1ms FB=3ms)" from a simulated run's meta, else "".
function costText(meta) {
  const parts = [];
  for (const k of ['F', 'B', 'I', 'W', 'FB']) {
    const v = meta['cost.' + k + '_ns'];
    if (v === undefined) return '';
    const ns = +v;
    parts.push(k + '=' + (ns >= 1e6 ? ns / 1e6 + 'ms' : ns >= 1e3 ? ns / 1e3 + 'us' : ns + 'ns'));
  }
  return ' (' + parts.join(' ') + ')';
}

function metricsTable(root, T) {
  const box = add(root, 'div', 'metrics');
  add(box, 'h3', '', T.title);
  add(box, 'div', 'path', T.path);
  const m = T.metrics, sc = T.span;
  const cards = add(box, 'div', 'cards');
  const card = (k, v, sub, cls) => {
    const c = add(cards, 'div', 'card' + (cls ? ' ' + cls : ''));
    add(c, 'div', 'card-k', k);
    add(c, 'div', 'card-v', v);
    if (sub) add(c, 'div', 'card-sub', sub);
  };
  card('makespan', fmtNs(T.span));
  card('bubble ratio', fmtPct(m.bubble_ratio), m.theory_bubble_ratio !== null ? 'theory ' +
    fmtPct(m.theory_bubble_ratio) + (T.meta['theory.bubble_formula'] ? ' · ' + T.meta['theory.bubble_formula'] : '') :
    'no formula for this run', 'card-bubble');
  card('overlap', fmtPct(m.overlap_ratio), m.overlap_ratio === null ? 'no communication time' :
    'communication hidden under compute');
  card('exposed communication', fmtNs(m.exposed, sc), 'summed over ranks', m.exposed > 0 ? 'card-exposed' : '');
  card('peak activations', String(Math.max(0, ...T.ranks.map((R) => R.m.peak))),
    m.theory_peak !== null ? 'theory ' + m.theory_peak : '');
  const table = add(box, 'table', 'mtable');
  const hr = add(add(table, 'thead'), 'tr');
  for (const h of ['rank', 'busy', 'bubble', 'theory', 'span bubble', 'comm', 'exposed', 'overlap', 'peak act.',
    'theory']) add(hr, 'th', '', h);
  const tb = add(table, 'tbody');
  for (const R of T.ranks) {
    const r = R.m, tr = add(tb, 'tr');
    tr.dataset.rank = String(R.rank);
    add(tr, 'td', '', 'r' + R.rank).title = R.label;
    cellNs(tr, r.busy, sc);
    const off = r.theory_bubble !== null && Math.abs(r.bubble - r.theory_bubble) > 0.01 * Math.max(1, T.span);
    cellNs(tr, r.bubble, sc, off ? 'off' : 'bubble');
    cellNs(tr, r.theory_bubble, sc, 'theory');
    cellNs(tr, r.span_bubble, sc);
    cellNs(tr, r.comm, sc);
    cellNs(tr, r.exposed, sc, r.exposed > 0 ? 'exposed' : '');
    add(tr, 'td', 'num', r.comm > 0 ? fmtPct(r.overlap / r.comm) : 'n/a');
    add(tr, 'td', 'num', String(r.peak));
    add(tr, 'td', 'num theory', r.theory_peak === null ? '–' : String(r.theory_peak));
  }
  const tf = add(add(table, 'tfoot'), 'tr');
  add(tf, 'td', '', 'total');
  cellNs(tf, m.busy, sc);
  cellNs(tf, m.bubble, sc);
  const th = T.ranks.every((R) => R.m.theory_bubble !== null) ? T.ranks.reduce((s, R) => s + R.m.theory_bubble, 0) : null;
  cellNs(tf, th, sc, 'theory');
  cellNs(tf, T.ranks.reduce((s, R) => s + R.m.span_bubble, 0), sc);
  cellNs(tf, m.comm, sc);
  cellNs(tf, m.exposed, sc);
  add(tf, 'td', 'num', fmtPct(m.overlap_ratio));
  add(tf, 'td', 'num', '');
  add(tf, 'td', 'num', '');
  const note = add(box, 'p', 'note');
  note.textContent = 'bubble: the window (' + fmtNs(T.span) + ') minus the rank\'s busy compute time; theory: the ' +
    'schedule\'s formula under the run\'s costs' + costText(T.meta) +
    '; exposed: communication time with no compute to hide behind. A bubble that differs from its theory by more ' +
    'than 1% of the window is marked.';
}

function compareTable(root, traces) {
  const box = add(root, 'div', 'compare');
  const table = add(box, 'table', 'mtable ctable');
  const hr = add(add(table, 'thead'), 'tr');
  const cols = ['trace', 'schedule', 'ranks', 'microbatches', 'comm', 'makespan', 'bubble ratio', 'theory',
    'overlap', 'exposed comm', 'peak act.'];
  for (const h of cols) add(hr, 'th', '', h);
  const tb = add(table, 'tbody');
  const best = Math.min(...traces.map((T) => T.span));
  const bestBubble = Math.min(...traces.map((T) => T.metrics.bubble_ratio));
  for (const T of traces) {
    const m = T.metrics, tr = add(tb, 'tr');
    tr.dataset.trace = String(T.index);
    add(tr, 'td', 'path', T.path);
    add(tr, 'td', '', T.meta.schedule || '?');
    add(tr, 'td', 'num', String(T.ranks.length));
    add(tr, 'td', 'num', T.meta.microbatches || '?');
    add(tr, 'td', '', T.meta.comm_mode || '?');
    add(tr, 'td', 'num' + (T.span === best ? ' best' : ''), fmtNs(T.span) +
      (T.span === best ? '' : '  (+' + fmtPct(T.span / best - 1) + ')'));
    add(tr, 'td', 'num' + (m.bubble_ratio === bestBubble ? ' best' : ''), fmtPct(m.bubble_ratio));
    add(tr, 'td', 'num theory', fmtPct(m.theory_bubble_ratio));
    add(tr, 'td', 'num', fmtPct(m.overlap_ratio));
    add(tr, 'td', 'num', fmtNs(m.exposed, T.span));
    add(tr, 'td', 'num', String(Math.max(0, ...T.ranks.map((R) => R.m.peak))) +
      (m.theory_peak !== null ? ' / ' + m.theory_peak : ''));
  }
}
