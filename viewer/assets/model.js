// model.js — the embedded JSON (viewer/html.c writes it) turned into what the
// page draws: per trace, per rank, lanes of intervals in typed arrays (times
// in ns from the trace's window start), and derived per rank: the exposed
// communication (communication time minus the union of compute) and the
// in-flight activations over time, both as docs/metrics.md defines them.

// Each lane: start/end times, kind, name index; messages also when posted and bytes.
function makeLane(l, R) {
  const n = l.s.length;
  const st = new Float64Array(n), en = new Float64Array(n);
  let t = 0, maxDur = 0;
  for (let i = 0; i < n; i++) {
    t += l.s[i];
    st[i] = t;
    en[i] = t + l.d[i];
    if (l.d[i] > maxDur) maxDur = l.d[i];
  }
  const lane = {
    kind: l.kind, stream: l.stream, role: l.role, label: l.label, n, st, en, maxDur, rank: R,
    k: Uint8Array.from(l.k), nm: Int32Array.from(l.n), mip: null, byDur: null,
  };
  if (l.p) {
    lane.posted = new Float64Array(n);
    for (let i = 0; i < n; i++) lane.posted[i] = st[i] - l.p[i];
    lane.bytes = Float64Array.from(l.b);
  }
  return lane;
}

// docs/metrics.md: what counts as compute, as communication, or neither.
function classOf(lane, kind) {
  if (kind >= KIND.F && kind <= KIND.FB) return 'compute';
  if (kind === KIND.SEND || kind === KIND.RECV) return 'comm';
  if (kind === KIND.KERNEL || kind === KIND.MEMCPY || kind === KIND.MEMSET) {
    if (lane.role === 'comm') return 'comm';
    return kind === KIND.KERNEL ? 'compute' : null;
  }
  return null;
}

// Append [a, b) to the disjoint sorted list u (starts in order), merging.
function pushMerged(u, a, b) {
  const n = u.e.length;
  if (n && a <= u.e[n - 1]) {
    if (b > u.e[n - 1]) u.e[n - 1] = b;
  } else {
    u.s.push(a);
    u.e.push(b);
  }
}

// The union of the intervals of one lane (start order) that are of class
// cls, as disjoint sorted [s, e) pairs.
function laneUnion(lane, cls) {
  const u = {s: [], e: []};
  for (let i = 0; i < lane.n; i++) {
    if (classOf(lane, lane.k[i]) === cls && lane.en[i] > lane.st[i]) pushMerged(u, lane.st[i], lane.en[i]);
  }
  return u;
}

// The union of two disjoint sorted interval lists.
function unionMerge(x, y) {
  const u = {s: [], e: []};
  let i = 0, j = 0;
  while (i < x.s.length || j < y.s.length) {
    if (j >= y.s.length || (i < x.s.length && x.s[i] <= y.s[j])) { pushMerged(u, x.s[i], x.e[i]); i++; }
    else { pushMerged(u, y.s[j], y.e[j]); j++; }
  }
  return u;
}

// x minus y (both disjoint and sorted).
function subtract(x, y) {
  const s = [], e = [];
  let j = 0;
  for (let i = 0; i < x.s.length; i++) {
    let a = x.s[i];
    const b = x.e[i];
    while (j < y.s.length && y.e[j] <= a) j++;
    let k = j;
    while (k < y.s.length && y.s[k] < b && a < b) {
      if (y.s[k] > a) { s.push(a); e.push(y.s[k]); }
      a = Math.max(a, y.e[k]);
      k++;
    }
    if (a < b) { s.push(a); e.push(b); }
  }
  return {s: Float64Array.from(s), e: Float64Array.from(e)};
}

function exposedOf(R) {
  let C = {s: [], e: []}, M = {s: [], e: []};
  for (const lane of R.lanes) {
    C = unionMerge(C, laneUnion(lane, 'compute'));
    M = unionMerge(M, laneUnion(lane, 'comm'));
  }
  return subtract(M, C);
}

// Activations in flight: +1 when a forward (F, or the F of an FB) starts,
// -1 when its backward (B, I, or the B of an FB) ends; at equal times, ends
// first. A step function: count[i] holds from time[i] on.
function activationsOf(R) {
  const up = [], down = [];
  for (const lane of R.lanes) {
    if (lane.kind !== 'ops') continue;
    for (let i = 0; i < lane.n; i++) {
      const k = lane.k[i];
      if (k === KIND.F || k === KIND.FB) up.push(lane.st[i]);
      if (k === KIND.B || k === KIND.I || k === KIND.FB) down.push(lane.en[i]);
    }
  }
  const u = Float64Array.from(up).sort(), d = Float64Array.from(down).sort();
  const time = [], count = [];
  let i = 0, j = 0, c = 0, peak = 0;
  while (i < u.length || j < d.length) {
    let t;
    if (j < d.length && (i >= u.length || d[j] <= u[i])) { t = d[j++]; c--; }
    else { t = u[i++]; c++; }
    if (c > peak) peak = c;
    if (time.length && time[time.length - 1] === t) count[count.length - 1] = c;
    else { time.push(t); count.push(c); }
  }
  return {time: Float64Array.from(time), count: Int32Array.from(count), peak};
}

// "F0:3", "F0:7|B1:3" -> chunk and microbatch of each half (cached per name).
const OP_NAME = /^([FBIW])(\d+):(\d+)(?:\|B(\d+):(\d+))?$/;

function loadTraces(data) {
  return data.traces.map((tr, ti) => {
    const meta = tr.meta || {};
    const T = {
      index: ti, path: tr.path, meta, span: tr.span, base: tr.base, metrics: tr.metrics, names: tr.names,
      ranks: [], info: new Array(tr.names.length), colors: new Array(tr.names.length),
    };
    const bits = [meta.schedule || 'trace', tr.ranks.length + ' ranks'];
    if (meta.microbatches) bits.push(meta.microbatches + ' microbatches');
    if (meta.backend) bits.push(meta.backend + ' backend');
    if (meta.comm_mode) bits.push(meta.comm_mode + ' comm');
    T.title = bits.join(' · ');
    T.opInfo = function (n) {
      let x = T.info[n];
      if (x === undefined) {
        const m = OP_NAME.exec(T.names[n]);
        x = m ? {chunk: +m[2], mb: +m[3], chunk2: m[4] === undefined ? -1 : +m[4],
          mb2: m[5] === undefined ? -1 : +m[5]} : {chunk: 0, mb: -1, chunk2: -1, mb2: -1};
        T.info[n] = x;
      }
      return x;
    };
    for (const r of tr.ranks) {
      const R = {trace: T, rank: r.rank, label: r.label, m: r.m, lanes: []};
      for (const l of r.lanes) R.lanes.push(makeLane(l, R));
      R.exposed = exposedOf(R);
      R.act = activationsOf(R);
      T.ranks.push(R);
    }
    return T;
  });
}
