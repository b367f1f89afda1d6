// draw.js — how the timeline paints a frame: the ruler, each trace's header
// band, and each lane with level of detail (see timeline.js): intervals wide
// enough drawn one by one with their labels, the rest summed per pixel
// column, or taken from a lane's pyramid of buckets when too many are in
// view. Bubbles show as hatching behind the compute lane, exposed
// communication in red on the message lane and under the compute lane.

function makeHatch(ctx) {
  const c = document.createElement('canvas');
  c.width = c.height = 8;
  const g = c.getContext('2d');
  g.fillStyle = '#fbeeee';
  g.fillRect(0, 0, 8, 8);
  g.strokeStyle = COLOR.bubble;
  g.lineWidth = 1.2;
  g.beginPath();
  g.moveTo(-2, 10); g.lineTo(10, -2);
  g.moveTo(-2, 2); g.lineTo(2, -2);
  g.moveTo(6, 10); g.lineTo(10, 6);
  g.stroke();
  return ctx.createPattern(c, 'repeat');
}

// Summed columns, batched by colour and opacity (eight steps) so a frame
// sets the fill style a few dozen times, not once per column.
function ColumnBatch() { this.groups = new Map(); this.count = 0; }

ColumnBatch.prototype.add = function (color, busy, x, y, w, h) {
  const level = Math.min(7, Math.floor(busy * 8));
  const key = color + '|' + level;
  let g = this.groups.get(key);
  if (!g) { g = {color, alpha: 0.35 + 0.65 * (level + 1) / 8, r: []}; this.groups.set(key, g); }
  const n = g.r.length;
  if (n && g.r[n - 3] === y && Math.abs(g.r[n - 4] + g.r[n - 2] - x) < 0.01) { // extends the last one
    g.r[n - 2] = x + w - g.r[n - 4];
  } else {
    g.r.push(x, y, w, h);
  }
  this.count++;
};

ColumnBatch.prototype.flush = function (ctx) {
  for (const g of this.groups.values()) {
    ctx.globalAlpha = g.alpha;
    ctx.fillStyle = g.color;
    ctx.beginPath();
    for (let i = 0; i < g.r.length; i += 4) ctx.rect(g.r[i], g.r[i + 1], g.r[i + 2], g.r[i + 3]);
    ctx.fill();
  }
  ctx.globalAlpha = 1;
  this.groups.clear();
  const n = this.count;
  this.count = 0;
  return n;
};

Timeline.prototype.draw = function () {
  const t0 = performance.now();
  const ctx = this.ctx, W = this.W, H = this.H;
  ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
  ctx.clearRect(0, 0, W, H);
  ctx.font = '11px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
  ctx.textBaseline = 'middle';
  this.stats.rects = 0;
  this.stats.columns = 0;
  const top = this.scroll.scrollTop;
  this.batch = this.batch || new ColumnBatch();
  const step = niceStep(((this.view.t1 - this.view.t0) / W) * 90);
  // grid lines behind everything
  ctx.fillStyle = COLOR.grid;
  for (let t = Math.ceil(this.view.t0 / step) * step; t <= this.view.t1; t += step) {
    ctx.fillRect(Math.round(this.xOf(t)), ROW.ruler, 1, H - ROW.ruler);
  }
  const y0 = top, y1 = top + H - ROW.ruler;
  let i = upperBound(this.rowEnds, y0);
  for (; i < this.rows.length && this.rows[i].y < y1; i++) {
    const row = this.rows[i], y = ROW.ruler + row.y - top;
    if (row.type === 'trace') this.drawTraceRow(row, y);
    else if (row.lane) this.drawLane(row, y);
  }
  this.drawEnds(top);
  this.drawRuler(step);
  this.stats.ms = performance.now() - t0;
};

Timeline.prototype.drawRuler = function (step) {
  const ctx = this.ctx, W = this.W;
  ctx.fillStyle = '#f6f8fa';
  ctx.fillRect(0, 0, W, ROW.ruler);
  ctx.fillStyle = '#d0d7de';
  ctx.fillRect(0, ROW.ruler - 1, W, 1);
  ctx.fillStyle = COLOR.axis;
  ctx.textAlign = 'left';
  for (let t = Math.ceil(this.view.t0 / step) * step; t <= this.view.t1; t += step) {
    const x = Math.round(this.xOf(t));
    ctx.fillRect(x, ROW.ruler - 8, 1, 7);
    ctx.fillText(tickLabel(t, step), x + 3, ROW.ruler / 2 - 1);
  }
  const drag = this.dragState && this.dragState();
  if (drag && drag.ruler && drag.to !== undefined) {
    ctx.fillStyle = 'rgba(9, 105, 218, 0.15)';
    const a = Math.min(drag.x, drag.to), b = Math.max(drag.x, drag.to);
    ctx.fillRect(a, 0, b - a, this.H);
  }
};

Timeline.prototype.drawTraceRow = function (row, y) {
  const ctx = this.ctx, T = row.T;
  ctx.fillStyle = '#f0f3f6';
  ctx.fillRect(0, y, this.W, row.h);
  const x0 = Math.max(0, this.xOf(0)), x1 = Math.min(this.W, this.xOf(T.span));
  ctx.fillStyle = '#dde4ec';
  if (x1 > x0) ctx.fillRect(x0, y + row.h - 5, x1 - x0, 3);
  ctx.fillStyle = COLOR.text;
  ctx.textAlign = 'left';
  const m = T.metrics;
  let text = 'makespan ' + fmtNs(T.span) + ' · bubble ' + fmtPct(m.bubble_ratio);
  if (m.theory_bubble_ratio !== null) text += ' (theory ' + fmtPct(m.theory_bubble_ratio) + ')';
  if (m.overlap_ratio !== null) text += ' · overlap ' + fmtPct(m.overlap_ratio);
  ctx.fillText(text, 8, y + row.h / 2 - 1);
};

// A dashed line where each trace's window ends, through its rows.
Timeline.prototype.drawEnds = function (top) {
  const ctx = this.ctx;
  ctx.save();
  ctx.setLineDash([4, 3]);
  ctx.strokeStyle = '#8c959f';
  for (const T of this.traces) {
    const rows = this.rows.filter((r) => r.T === T);
    const a = ROW.ruler + rows[0].y - top, b = ROW.ruler + rows[rows.length - 1].y + rows[rows.length - 1].h - top;
    for (const t of [0, T.span]) {
      const x = Math.round(this.xOf(t)) + 0.5;
      if (x < 0 || x > this.W) continue;
      ctx.beginPath();
      ctx.moveTo(x, Math.max(a, ROW.ruler));
      ctx.lineTo(x, b);
      ctx.stroke();
    }
  }
  ctx.restore();
};

function laneColor(lane, i) {
  const T = lane.rank.trace, k = lane.k[i], n = lane.nm[i];
  if (k >= KIND.F && k <= KIND.FB) return opColor(k === KIND.FB ? KIND.F : k, T.opInfo(n).chunk);
  if (k === KIND.SEND) return COLOR.send;
  if (k === KIND.RECV) return COLOR.recv;
  let c = T.colors[n];
  if (c) return c;
  switch (k) {
    case KIND.KERNEL: c = 'hsl(' + hashHue(T.names[n]) + ', 52%, 58%)'; break;
    case KIND.MEMCPY: c = COLOR.memcpy; break;
    case KIND.MEMSET: c = COLOR.memset; break;
    case KIND.SYNC: c = COLOR.sync; break;
    case KIND.RUNTIME: c = COLOR.runtime; break;
    default: c = COLOR.range;
  }
  T.colors[n] = c;
  return c;
}

Timeline.prototype.drawLane = function (row, y) {
  const ctx = this.ctx, lane = row.lane, T = row.T, h = row.h;
  const isOps = lane.kind === 'ops';
  ctx.fillStyle = isOps ? '#ffffff' : '#fafbfc';
  ctx.fillRect(0, y, this.W, h);
  if (isOps) { // bubbles: the trace's window behind the ops shows where they are not
    const x0 = Math.max(0, this.xOf(0)), x1 = Math.min(this.W, this.xOf(T.span));
    if (x1 > x0) {
      ctx.fillStyle = this.hatch;
      ctx.fillRect(x0, y + 2, x1 - x0, h - 4);
    }
  }
  const pad = isOps ? 2 : lane.kind === 'comms' ? 1 : 2;
  this.drawIntervals(lane, y + pad, h - 2 * pad);
  this.stats.columns += this.batch.flush(ctx);
  if (row.first) this.drawExposed(row.R, y + h - 3, 3);
  if (lane.kind === 'comms') this.drawExposed(row.R, y + pad, h - 2 * pad);
  if (this.hover && this.hover.row === row && this.hover.i >= 0) {
    const i = this.hover.i;
    const x0 = this.xOf(lane.st[i]), x1 = Math.max(x0 + 2, this.xOf(lane.en[i]));
    ctx.strokeStyle = '#0969da';
    ctx.lineWidth = 2;
    ctx.strokeRect(x0 - 1, y + 1, x1 - x0 + 2, h - 2);
    ctx.lineWidth = 1;
  }
};

Timeline.prototype.drawExposed = function (R, y, h) {
  const ex = R.exposed, ctx = this.ctx;
  if (!ex.s.length) return;
  const i0 = upperBound(ex.e, this.view.t0), i1 = upperBound(ex.s, this.view.t1);
  ctx.fillStyle = COLOR.exposed;
  let lastX = -1;
  for (let i = i0; i < i1; i++) {
    const x0 = this.xOf(ex.s[i]), x1 = this.xOf(ex.e[i]);
    if (x1 - x0 < 1 && Math.floor(x0) === lastX) continue; // one mark per pixel is enough
    ctx.fillRect(x0, y, Math.max(1, x1 - x0), h);
    lastX = Math.floor(x0);
  }
};

// Every interval of lane in view, with level of detail.
Timeline.prototype.drawIntervals = function (lane, y, h) {
  const v = this.view, W = this.W, nsPerPx = (v.t1 - v.t0) / W;
  const i1 = upperBound(lane.st, v.t1);
  const i0 = lowerBound(lane.st, v.t0 - lane.maxDur, 0, i1);
  if (i1 - i0 > DIRECT_LIMIT) { this.drawFromPyramid(lane, y, h, nsPerPx); return; }
  const col = this.col, touched = [];
  for (let i = i0; i < i1; i++) {
    if (lane.en[i] < v.t0) continue;
    const x0 = (lane.st[i] - v.t0) / nsPerPx, x1 = (lane.en[i] - v.t0) / nsPerPx;
    if (x1 - x0 >= MIN_PX) { this.drawInterval(lane, i, x0, x1, y, h); continue; }
    const c = Math.max(0, Math.min(W, Math.floor(x0)));
    if (col.idx[c] < 0) touched.push(c);
    col.busy[c] += x1 - x0;
    if (col.idx[c] < 0 || x1 - x0 > col.len[c]) { col.idx[c] = i; col.len[c] = x1 - x0; }
  }
  for (const c of touched) {
    this.batch.add(laneColor(lane, col.idx[c]), Math.min(1, col.busy[c]), c, y, 1, h);
    col.busy[c] = 0;
    col.idx[c] = -1;
    col.len[c] = 0;
  }
};

const labelWidth = new Map();
function textWidth(ctx, s) {
  let w = labelWidth.get(s);
  if (w === undefined) {
    w = ctx.measureText(s).width;
    if (labelWidth.size < 50000) labelWidth.set(s, w);
  }
  return w;
}

// One interval as a rectangle, labelled when its label fits: for ops the
// name, else the microbatch (as in DualPipe's figure); an FB pair as its F
// third and B two thirds inside one dark border.
Timeline.prototype.drawInterval = function (lane, i, x0, x1, y, h) {
  const ctx = this.ctx, T = lane.rank.trace, k = lane.k[i];
  const a = Math.max(x0, -2), b = Math.min(x1, this.W + 2), w = b - a;
  this.stats.rects++;
  if (k === KIND.FB) {
    const o = T.opInfo(lane.nm[i]), xf = x0 + (x1 - x0) / 3;
    ctx.fillStyle = opColor(KIND.F, o.chunk);
    ctx.fillRect(a, y, Math.max(0, Math.min(xf, b) - a), h);
    ctx.fillStyle = opColor(KIND.B, o.chunk2);
    ctx.fillRect(Math.max(xf, a), y, Math.max(0, b - Math.max(xf, a)), h);
    ctx.strokeStyle = '#24292f';
    ctx.strokeRect(Math.round(x0) + 0.5, y + 0.5, Math.max(1, Math.round(x1 - x0) - 1), h - 1);
    if (w > 14) {
      const long = x1 - x0 > 90;
      this.label(long ? 'F' + o.chunk + ':' + o.mb : String(o.mb), x0, xf, y, h);
      this.label(long ? 'B' + o.chunk2 + ':' + o.mb2 : String(o.mb2), xf, x1, y, h);
    }
    return;
  }
  ctx.fillStyle = laneColor(lane, i);
  ctx.fillRect(a, y, w, h);
  if (w >= 3 && lane.kind === 'ops') { // a hairline between neighbours, as the figure's cell borders
    ctx.fillStyle = 'rgba(255,255,255,0.85)';
    ctx.fillRect(a + w - 1, y, 1, h);
  }
  if (w < 10 || h < 10) return;
  const name = T.names[lane.nm[i]];
  if (lane.kind === 'ops') {
    const o = T.opInfo(lane.nm[i]);
    this.label(textWidth(ctx, name) + 8 < w ? name : String(o.mb), x0, x1, y, h);
  } else if (w > 24) {
    this.label(name, x0, x1, y, h);
  }
};

// Text centred in [x0, x1] when it fits, cut with an ellipsis when not.
Timeline.prototype.label = function (s, x0, x1, y, h) {
  const ctx = this.ctx;
  const a = Math.max(x0, 0), b = Math.min(x1, this.W), room = b - a - 4;
  if (room < 6) return;
  let text = s, w = textWidth(ctx, text);
  if (w > room) {
    let n = Math.floor((s.length * room) / w) - 1;
    if (n < 1) return;
    text = s.slice(0, n) + '…';
    w = ctx.measureText(text).width;
    if (w > room) return;
  }
  ctx.fillStyle = '#1b1f24';
  ctx.textAlign = 'center';
  ctx.fillText(text, (a + b) / 2, y + h / 2 + 0.5);
};

// ------------------------------------------------------------- pyramid

// Buckets over the lane's extent: level 0 has MIP_BUCKETS (fewer for small
// lanes), each level above halves them. A bucket keeps the time its
// intervals cover and its longest interval (for the colour).
function buildPyramid(lane) {
  const lo = lane.st[0];
  let hi = lo + 1;
  for (let i = 0; i < lane.n; i++) if (lane.en[i] > hi) hi = lane.en[i];
  let nb = 256;
  while (nb < MIP_BUCKETS && nb < lane.n) nb *= 2;
  const w = (hi - lo) / nb;
  const cover = new Float32Array(nb), top = new Int32Array(nb).fill(-1), len = new Float32Array(nb);
  for (let i = 0; i < lane.n; i++) {
    const s = lane.st[i] - lo, e = lane.en[i] - lo, d = e - s;
    const b0 = Math.min(nb - 1, Math.floor(s / w)), b1 = Math.min(nb - 1, Math.floor(e / w));
    for (let b = b0; b <= b1; b++) {
      cover[b] += Math.max(0, Math.min(e, (b + 1) * w) - Math.max(s, b * w));
      if (top[b] < 0 || d > len[b]) { top[b] = i; len[b] = d; }
    }
  }
  const levels = [{w, cover, top, len}];
  while (levels[levels.length - 1].cover.length > 64) {
    const p = levels[levels.length - 1], n = p.cover.length >> 1;
    const L = {w: p.w * 2, cover: new Float32Array(n), top: new Int32Array(n), len: new Float32Array(n)};
    for (let b = 0; b < n; b++) {
      L.cover[b] = p.cover[2 * b] + p.cover[2 * b + 1];
      const x = p.len[2 * b] >= p.len[2 * b + 1] || p.top[2 * b + 1] < 0 ? 2 * b : 2 * b + 1;
      L.top[b] = p.top[x];
      L.len[b] = p.len[x];
    }
    levels.push(L);
  }
  return {lo, levels};
}

Timeline.prototype.drawFromPyramid = function (lane, y, h, nsPerPx) {
  if (!lane.mip) lane.mip = buildPyramid(lane);
  const ctx = this.ctx, v = this.view, P = lane.mip;
  let L = P.levels[0];
  for (const cand of P.levels) { if (cand.w > nsPerPx) break; L = cand; }
  const n = L.cover.length;
  const b0 = Math.max(0, Math.floor((v.t0 - P.lo) / L.w)), b1 = Math.min(n - 1, Math.floor((v.t1 - P.lo) / L.w));
  for (let b = b0; b <= b1; b++) {
    if (L.top[b] < 0) continue;
    const x = (P.lo + b * L.w - v.t0) / nsPerPx;
    this.batch.add(laneColor(lane, L.top[b]), Math.min(1, L.cover[b] / L.w), x, y, Math.max(1, L.w / nsPerPx), h);
  }
  this.stats.columns += this.batch.flush(ctx);
  // and the intervals long enough to be seen one by one, longest first
  if (lane.maxDur / nsPerPx < 2 * MIN_PX) return; // none: no need to sort them
  if (!lane.byDur) {
    const idx = new Uint32Array(lane.n);
    for (let i = 0; i < lane.n; i++) idx[i] = i;
    const d = (i) => lane.en[i] - lane.st[i];
    lane.byDur = idx.sort((a, b) => d(b) - d(a));
  }
  for (let j = 0; j < lane.n && j < 200000; j++) {
    const i = lane.byDur[j], x0 = (lane.st[i] - v.t0) / nsPerPx, x1 = (lane.en[i] - v.t0) / nsPerPx;
    if (x1 - x0 < 2 * MIN_PX) break;
    if (x1 >= 0 && x0 <= this.W) this.drawInterval(lane, i, x0, x1, y, h);
  }
};
