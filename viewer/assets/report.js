// report.js — the page: reads the embedded JSON, lays out the header, the
// comparison (with several traces), the timeline, the activation charts and
// the metrics, and offers window.ptReport for scripts (the browser tests use
// it to find a cell and to read what the page computed). Runs last.

function boot() {
  const data = JSON.parse(document.getElementById('pt-data').textContent);
  const traces = loadTraces(data);
  const app = document.getElementById('app');
  const many = traces.length > 1;
  document.title = (many ? 'pipetrace · ' + traces.map((T) => T.meta.schedule || T.path).join(' vs ')
    : 'pipetrace · ' + traces[0].title);

  const header = add(app, 'header', 'top');
  const h1 = add(header, 'h1', '');
  add(h1, 'span', 'brand', 'pipetrace');
  add(h1, 'span', 'h1-title', many ? traces.length + ' runs on one time scale' : traces[0].title);
  const paths = add(header, 'div', 'path');
  paths.textContent = traces.map((T) => T.path).join(' · ');

  if (many) {
    const sec = section(app, 'Comparison', 'compare');
    compareTable(sec, traces);
  }

  const tsec = section(app, 'Timeline', 'timeline');
  add(tsec, 'p', 'note', 'One row per rank: the compute stream with each op labelled by its name or microbatch, ' +
    'the message lane under it, then each GPU stream or thread the trace recorded. Hover for details.');
  const charts = [];
  const timeline = new Timeline(tsec, traces, () => charts.forEach((c) => c.redraw()));

  const asec = section(app, 'In-flight activations', 'activations');
  add(asec, 'p', 'note', 'Chunk activations held per rank: +1 when a forward starts, −1 when its backward ends. ' +
    'Follows the timeline\'s zoom.');
  const yMax = Math.max(1, ...traces.map((T) => Math.max(0, ...T.ranks.map((R) => R.act.peak))));
  for (const T of traces) {
    const c = new ActChart(asec, T, yMax, timeline);
    c.redraw = function () {
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => { this.pending = false; this.draw(); });
    };
    charts.push(c);
  }
  charts.forEach((c) => c.redraw());
  new ResizeObserver(() => charts.forEach((c) => c.redraw())).observe(timeline.scroll);

  const msec = section(app, 'Metrics', 'metrics');
  for (const T of traces) metricsTable(msec, T);

  const foot = add(app, 'footer', '');
  foot.textContent = 'Written by ' + data.tool + ' (pipetrace view --html). This file is self-contained: it ' +
    'loads nothing from the network. docs/viewer.md and docs/metrics.md explain every figure.';

  window.ptReport = {
    traces: traces.length,
    ranks: (ti) => traces[ti].ranks.map((R) => R.rank),
    view: () => ({t0: timeline.view.t0, t1: timeline.view.t1}),
    setView: (t0, t1) => timeline.setView(t0, t1),
    fit: () => timeline.fit(),
    peak: (ti, rank) => traces[ti].ranks.find((R) => R.rank === rank).act.peak,
    frame: () => { timeline.draw(); return Object.assign({}, timeline.stats); },
    // Where the first compute op named `name` of (trace, rank) is drawn, in
    // client coordinates, scrolling its row into view; null when absent.
    locate: (ti, rank, name) => {
      const row = timeline.rows.find((r) => r.type === 'lane' && r.T.index === ti && r.R.rank === rank &&
        r.lane && r.lane.kind === 'ops');
      if (!row) return null;
      const T = traces[ti], lane = row.lane;
      let i = -1;
      for (let j = 0; j < lane.n; j++) if (T.names[lane.nm[j]] === name) { i = j; break; }
      if (i < 0) return null;
      const sc = timeline.scroll;
      if (row.y < sc.scrollTop || row.y + row.h > sc.scrollTop + timeline.H - ROW.ruler) {
        sc.scrollTop = Math.max(0, row.y - 40);
      }
      const box = timeline.canvas.getBoundingClientRect();
      const x = (timeline.xOf(lane.st[i]) + timeline.xOf(lane.en[i])) / 2;
      return {x: box.left + x, y: box.top + ROW.ruler + row.y - sc.scrollTop + row.h / 2};
    },
  };
  document.body.dataset.ready = '1';
}

function section(app, title, id) {
  const s = add(app, 'section', 'sec');
  s.id = id;
  add(s, 'h2', '', title);
  return s;
}

try {
  boot();
} catch (e) {
  const box = document.getElementById('app');
  box.textContent = '';
  add(box, 'p', 'fatal', 'This report could not be drawn: ' + (e && e.message ? e.message : String(e)));
  throw e;
}
