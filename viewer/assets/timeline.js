// timeline.js — the timeline: every trace's ranks and their lanes on one
// canvas, time across on one scale, with zoom (Ctrl+wheel, W/S, double-click,
// drag on the ruler), pan (drag, Shift+wheel, A/D) and hover details. Row
// labels are DOM (one .rank-row per rank); everything else is drawn.
//
// Level of detail: a lane draws each interval at least MIN_PX wide as a
// rectangle; narrower ones are summed per pixel column and drawn as one
// column whose opacity says how busy it is. A lane with more than
// DIRECT_LIMIT intervals in view draws from a pyramid of pre-summed buckets
// plus its longest intervals, so a million events cost a few thousand
// rectangles per frame.

const ROW = {ruler: 30, trace: 30, ops: 28, comms: 12, lane: 18, gap: 8};
const GUTTER = 168;
const MIN_PX = 1.5;
const DIRECT_LIMIT = 40000;
const MIP_BUCKETS = 1 << 16;

function Timeline(root, traces, onView) {
  this.traces = traces;
  this.onView = onView;
  this.maxSpan = Math.max(1, ...traces.map((T) => T.span));
  this.view = {t0: 0, t1: this.maxSpan};
  this.hover = null;
  this.stats = {ms: 0, rects: 0, columns: 0};
  this.build(root);
  this.fit();
}

Timeline.prototype.build = function (root) {
  const bar = add(root, 'div', 'tl-toolbar');
  const btn = (text, title, fn) => {
    const b = add(bar, 'button', 'tl-btn', text);
    b.type = 'button';
    b.title = title;
    b.addEventListener('click', fn);
    return b;
  };
  btn('−', 'zoom out (S)', () => this.zoomAt(this.center(), 2));
  btn('+', 'zoom in (W)', () => this.zoomAt(this.center(), 0.5));
  btn('Fit', 'show the whole run (F or 0)', () => this.fit());
  this.rangeText = add(bar, 'span', 'tl-range');
  add(bar, 'span', 'tl-hint', 'Ctrl+wheel or W/S zoom · drag, Shift+wheel or A/D pan · drag the ruler to zoom to a range');
  this.legend(add(root, 'div', 'legend'));

  this.scroll = add(root, 'div', 'tl-scroll');
  this.scroll.tabIndex = 0;
  this.inner = add(this.scroll, 'div', 'tl-inner');
  this.gutter = add(this.inner, 'div', 'tl-gutter');
  this.gutter.style.width = GUTTER + 'px';
  this.canvas = add(this.inner, 'canvas', 'tl-canvas');
  this.canvas.style.marginLeft = GUTTER + 'px';
  this.tip = add(document.body, 'div', 'tip');
  this.tip.hidden = true;
  this.layout();

  this.ctx = this.canvas.getContext('2d');
  this.hatch = makeHatch(this.ctx);
  new ResizeObserver(() => this.resize()).observe(this.scroll);
  this.scroll.addEventListener('scroll', () => { this.redraw(); this.placeGutterHead(); });
  this.bindInput();
  this.resize();
};

Timeline.prototype.legend = function (box) {
  const sw = (color, text, cls) => {
    const item = add(box, 'span', 'legend-item');
    const s = add(item, 'span', 'swatch' + (cls ? ' ' + cls : ''));
    if (color) s.style.background = color;
    add(item, 'span', '', text);
  };
  sw(opColor(KIND.F, 0), 'F forward');
  sw(opColor(KIND.B, 0), 'B backward');
  sw(opColor(KIND.I, 0), 'I backward, inputs');
  sw(opColor(KIND.W, 0), 'W weight grads');
  sw(null, 'F&B overlapped pair', 'swatch-pair');
  sw(opColor(KIND.F, 1), 'lighter: odd chunk (DualPipe: reverse direction)');
  sw(null, 'bubble (idle compute)', 'swatch-bubble');
  sw(COLOR.send, 'send');
  sw(COLOR.recv, 'receive');
  sw(COLOR.exposed, 'exposed communication');
};

// Rows in content coordinates (below the ruler), and their DOM labels.
Timeline.prototype.layout = function () {
  const rows = [];
  let y = 0;
  this.gutter.textContent = '';
  this.gutterHead = add(this.gutter, 'div', 'tl-gutter-head', 'rank');
  this.gutterHead.style.height = ROW.ruler + 'px';
  for (const T of this.traces) {
    rows.push({type: 'trace', T, y, h: ROW.trace});
    const head = add(this.gutter, 'div', 'trace-row', T.title);
    head.style.top = ROW.ruler + y + 'px';
    head.style.height = ROW.trace + 'px';
    head.title = T.path;
    y += ROW.trace;
    for (const R of T.ranks) {
      const lanes = R.lanes.length ? R.lanes : [null];
      lanes.forEach((lane, li) => {
        const kind = lane ? lane.kind : 'ops';
        const h = kind === 'ops' ? ROW.ops : kind === 'comms' ? ROW.comms : ROW.lane;
        rows.push({type: 'lane', T, R, lane, y, h, first: li === 0});
        let lab;
        if (li === 0) {
          lab = add(this.gutter, 'div', 'rank-row');
          lab.dataset.trace = String(T.index);
          lab.dataset.rank = String(R.rank);
          add(lab, 'span', 'rank-name', 'r' + R.rank);
          const sub = lane && lane.kind !== 'ops' ? lane.label : 'bubble ' + fmtNs(R.m.bubble, T.span);
          add(lab, 'span', 'rank-sub', sub);
          lab.title = R.label;
        } else {
          lab = add(this.gutter, 'div', 'lane-row', lane.label);
          lab.title = lane.label + ' (stream ' + lane.stream + ')';
        }
        lab.style.top = ROW.ruler + y + 'px';
        lab.style.height = h + 'px';
        y += h + 1;
      });
      y += ROW.gap;
    }
  }
  this.rows = rows;
  this.rowEnds = Float64Array.from(rows, (r) => r.y + r.h);
  this.total = y;
  this.inner.style.height = ROW.ruler + y + 'px';
  this.gutter.style.height = ROW.ruler + y + 'px';
};

Timeline.prototype.placeGutterHead = function () {
  this.gutterHead.style.top = this.scroll.scrollTop + 'px';
};

Timeline.prototype.resize = function () {
  const W = Math.max(100, this.scroll.clientWidth - GUTTER);
  const H = Math.min(ROW.ruler + this.total, Math.max(240, Math.round(window.innerHeight * 0.72)));
  this.scroll.style.height = H + 'px';
  const dpr = window.devicePixelRatio || 1;
  this.W = W;
  this.H = H;
  this.canvas.width = Math.round(W * dpr);
  this.canvas.height = Math.round(H * dpr);
  this.canvas.style.width = W + 'px';
  this.canvas.style.height = H + 'px';
  this.dpr = dpr;
  this.col = {busy: new Float32Array(W + 2), idx: new Int32Array(W + 2).fill(-1), len: new Float32Array(W + 2)};
  this.redraw();
};

// ---------------------------------------------------------------- view

Timeline.prototype.center = function () { return (this.view.t0 + this.view.t1) / 2; };

Timeline.prototype.setView = function (t0, t1) {
  const min = 50, pad = this.maxSpan * 0.05;
  if (t1 - t0 < min) { const c = (t0 + t1) / 2; t0 = c - min / 2; t1 = c + min / 2; }
  const w = Math.min(t1 - t0, this.maxSpan + 2 * pad);
  t0 = Math.max(-pad, Math.min(t0, this.maxSpan + pad - w));
  this.view = {t0, t1: t0 + w};
  this.rangeText.textContent = fmtNs(t0, w) + ' – ' + fmtNs(t0 + w, w) + '  (' + fmtNs(w, w) + ' of ' +
    fmtNs(this.maxSpan) + ')';
  this.redraw();
  if (this.onView) this.onView(this.view);
};

Timeline.prototype.fit = function () {
  this.setView(-this.maxSpan * 0.005, this.maxSpan * 1.005);
};

Timeline.prototype.zoomAt = function (t, factor) {
  const v = this.view;
  this.setView(t - (t - v.t0) * factor, t + (v.t1 - t) * factor);
};

Timeline.prototype.timeAt = function (x) {
  return this.view.t0 + (x / this.W) * (this.view.t1 - this.view.t0);
};

Timeline.prototype.xOf = function (t) {
  return ((t - this.view.t0) / (this.view.t1 - this.view.t0)) * this.W;
};

Timeline.prototype.redraw = function () {
  if (this.pending) return;
  this.pending = true;
  requestAnimationFrame(() => { this.pending = false; this.draw(); });
};

// -------------------------------------------------------------- input

Timeline.prototype.bindInput = function () {
  const c = this.canvas;
  let drag = null;
  const local = (ev) => {
    const r = c.getBoundingClientRect();
    return {x: ev.clientX - r.left, y: ev.clientY - r.top};
  };
  c.addEventListener('wheel', (ev) => {
    const p = local(ev);
    // the plain wheel scrolls the page as everywhere else; Ctrl+wheel (a trackpad's pinch) zooms
    if (ev.ctrlKey || ev.metaKey) {
      ev.preventDefault();
      this.zoomAt(this.timeAt(p.x), Math.pow(1.0018, ev.deltaY));
    } else if (ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) {
      ev.preventDefault();
      const d = (ev.shiftKey ? ev.deltaY : ev.deltaX) / this.W * (this.view.t1 - this.view.t0);
      this.setView(this.view.t0 + d, this.view.t1 + d);
    }
  }, {passive: false});
  c.addEventListener('mousedown', (ev) => {
    const p = local(ev);
    drag = {x: p.x, ruler: p.y < ROW.ruler, view: this.view, moved: false};
    c.classList.add(drag.ruler ? 'selecting' : 'panning');
    ev.preventDefault();
    this.scroll.focus({preventScroll: true});
  });
  window.addEventListener('mousemove', (ev) => {
    const p = local(ev);
    if (drag) {
      drag.moved = drag.moved || Math.abs(p.x - drag.x) > 3;
      if (drag.ruler) {
        drag.to = p.x;
        this.redraw();
      } else {
        const d = (drag.x - p.x) / this.W * (drag.view.t1 - drag.view.t0);
        this.setView(drag.view.t0 + d, drag.view.t1 + d);
      }
      return;
    }
    if (ev.target === c) this.hoverAt(p, ev);
    else if (this.hover) this.clearHover();
  });
  window.addEventListener('mouseup', () => {
    if (drag && drag.ruler && drag.moved && drag.to !== undefined) {
      const a = this.timeAt(Math.min(drag.x, drag.to)), b = this.timeAt(Math.max(drag.x, drag.to));
      drag = null;
      this.setView(a, b);
    }
    drag = null;
    c.classList.remove('selecting', 'panning');
    this.redraw();
  });
  c.addEventListener('mouseleave', () => { if (!drag) this.clearHover(); });
  c.addEventListener('dblclick', (ev) => this.zoomAt(this.timeAt(local(ev).x), 0.5));
  // keys act on the timeline wherever the page has focus (it has no text fields)
  window.addEventListener('keydown', (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || /^(INPUT|TEXTAREA|SELECT)$/.test(ev.target.tagName)) return;
    const v = this.view, w = v.t1 - v.t0;
    const at = this.hover ? this.hover.t : this.center();
    switch (ev.key.toLowerCase()) {
      case 'w': this.zoomAt(at, 0.7); break;
      case 's': this.zoomAt(at, 1 / 0.7); break;
      case 'a': this.setView(v.t0 - w * 0.15, v.t1 - w * 0.15); break;
      case 'd': this.setView(v.t0 + w * 0.15, v.t1 + w * 0.15); break;
      case 'f': case '0': this.fit(); break;
      default: return;
    }
    ev.preventDefault();
  });
  this.dragState = () => drag;
};

// ------------------------------------------------------------- hover

// The row under content y, by binary search.
Timeline.prototype.rowAt = function (y) {
  const rows = this.rows;
  let lo = 0, hi = rows.length - 1;
  while (lo <= hi) {
    const m = (lo + hi) >> 1, r = rows[m];
    if (y < r.y) hi = m - 1;
    else if (y >= r.y + r.h) lo = m + 1;
    else return r;
  }
  return null;
};

// The interval of lane under time t, or the nearest within tol ns; -1 if none.
function eventAt(lane, t, tol) {
  const hi = upperBound(lane.st, t + tol);
  const lo = lowerBound(lane.st, t - lane.maxDur - tol, 0, hi);
  let best = -1, bestD = Infinity;
  for (let i = hi - 1, steps = 0; i >= lo && steps < 20000; i--, steps++) {
    const d = t < lane.st[i] ? lane.st[i] - t : t > lane.en[i] ? t - lane.en[i] : 0;
    if (d < bestD || (d === 0 && bestD === 0 && lane.en[i] - lane.st[i] < lane.en[best] - lane.st[best])) {
      best = i;
      bestD = d;
    }
  }
  return bestD <= tol ? best : -1;
}

Timeline.prototype.hoverAt = function (p, ev) {
  if (p.y < ROW.ruler) { this.clearHover(); return; }
  const row = this.rowAt(p.y - ROW.ruler + this.scroll.scrollTop);
  const t = this.timeAt(p.x);
  if (!row || row.type !== 'lane' || !row.lane) { this.clearHover(); return; }
  const nsPerPx = (this.view.t1 - this.view.t0) / this.W;
  const i = eventAt(row.lane, t, 3 * nsPerPx);
  if (i < 0) {
    this.hover = {row, i: -1, t};
    this.showTip(ev, idleLines(row, t));
    this.redraw();
    return;
  }
  this.hover = {row, i, t};
  const lines = eventLines(row.lane, i, row.T, this.traces.length > 1);
  // what a pixel column hides when zoomed out
  const a = lowerBound(row.lane.st, t - nsPerPx), b = upperBound(row.lane.st, t + nsPerPx);
  if (b - a > 1) lines.push(['', (b - a) + ' events within ±1 pixel: zoom in to separate them', 'muted']);
  this.showTip(ev, lines);
  this.redraw();
};

Timeline.prototype.clearHover = function () {
  this.tip.hidden = true;
  if (this.hover) { this.hover = null; this.redraw(); }
};

// What the tooltip says of interval i: [label, value, class] lines.
function eventLines(lane, i, T, many) {
  const k = lane.k[i], name = T.names[lane.nm[i]], R = lane.rank;
  const dur = lane.en[i] - lane.st[i], sc = Math.max(T.span, 1000);
  const lines = [['', name, 'tip-title'], ['', KIND_WHAT[k] || KIND_NAME[k], 'muted']];
  if (k >= KIND.F && k <= KIND.W) {
    const o = T.opInfo(lane.nm[i]);
    lines.push(['op', 'chunk ' + o.chunk + ' · microbatch ' + o.mb]);
  } else if (k === KIND.FB) {
    const o = T.opInfo(lane.nm[i]);
    lines.push(['forward', 'chunk ' + o.chunk + ' · microbatch ' + o.mb]);
    lines.push(['backward', 'chunk ' + o.chunk2 + ' · microbatch ' + o.mb2]);
  }
  lines.push(['rank', 'r' + R.rank + ' · ' + lane.label + ' (stream ' + lane.stream + ')']);
  lines.push(['start', fmtNs(lane.st[i], sc)]);
  lines.push(['end', fmtNs(lane.en[i], sc)]);
  lines.push(['duration', fmtDur(dur)]);
  if (lane.posted) {
    lines.push(['posted', fmtNs(lane.posted[i], sc) + ' (' + fmtDur(lane.st[i] - lane.posted[i]) +
      ' before the transfer)']);
    lines.push(['size', fmtBytes(lane.bytes[i])]);
  }
  if (many) lines.push(['trace', T.path]);
  return lines;
}

function idleLines(row, t) {
  const lines = [['', 'r' + row.R.rank + ' · ' + row.lane.label, 'tip-title']];
  if (row.lane.kind === 'ops' && t >= 0 && t <= row.T.span) lines.push(['', 'idle: bubble', 'muted']);
  else lines.push(['', 'nothing here', 'muted']);
  lines.push(['time', fmtNs(t, row.T.span)]);
  return lines;
}

Timeline.prototype.showTip = function (ev, lines) {
  const tip = this.tip;
  tip.textContent = '';
  for (const [k, v, cls] of lines) {
    const line = add(tip, 'div', 'tip-line' + (cls ? ' ' + cls : ''));
    if (k) add(line, 'span', 'tip-key', k);
    add(line, 'span', 'tip-val', v);
  }
  tip.hidden = false;
  const w = tip.offsetWidth, h = tip.offsetHeight;
  let x = ev.clientX + 14, y = ev.clientY + 14;
  if (x + w > window.innerWidth - 4) x = ev.clientX - w - 14;
  if (y + h > window.innerHeight - 4) y = ev.clientY - h - 14;
  tip.style.left = Math.max(4, x) + 'px';
  tip.style.top = Math.max(4, y) + 'px';
};
