// util.js — what every part of the report shares: making DOM nodes (text
// only ever goes in through textContent: names come from trace databases and
// may contain markup), formatting times and sizes, the op vocabulary and its
// colours, binary search. Concatenated with the other scripts inside one
// function scope by report.html; no globals but window.ptReport.

const KIND = {F: 1, B: 2, I: 3, W: 4, FB: 5, SEND: 6, RECV: 7, KERNEL: 8, MEMCPY: 9, MEMSET: 10, SYNC: 11,
  RUNTIME: 12, RANGE: 13};
const KIND_NAME = ['?', 'F', 'B', 'I', 'W', 'FB', 'SEND', 'RECV', 'KERNEL', 'MEMCPY', 'MEMSET', 'SYNC', 'RUNTIME',
  'RANGE'];
const KIND_WHAT = ['?', 'forward', 'backward (inputs and weights)', 'backward for inputs', 'weight gradients',
  'overlapped forward + backward', 'send', 'receive', 'GPU kernel', 'memory copy', 'memset', 'synchronisation',
  'CUDA runtime call', 'annotated range'];

// Colours: a kind's base, lighter for odd chunks (DualPipe's reverse direction).
const BASE = {1: ['#f28c28', '#f9c690'], 2: ['#3fa66b', '#9fd6b1'], 3: ['#1fa2ad', '#95d9de'],
  4: ['#4a78d8', '#a9c1ef']};
const COLOR = {
  send: '#8b5cf6', recv: '#0ea5e9', exposed: '#e5383b', hidden: '#94a3b8', memcpy: '#e2b203',
  memset: '#c98f00', sync: '#9aa3ad', runtime: '#b58a64', range: '#7d8aa6', bubble: '#e9b8b8',
  text: '#1f2328', muted: '#656d76', grid: '#eaeef2', axis: '#57606a',
};
const RANK_COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7',
  '#9c755f', '#bab0ac'];

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function add(parent, tag, cls, text) {
  const e = el(tag, cls, text);
  parent.appendChild(e);
  return e;
}

// A duration or a time for people, in the unit `scale` calls for.
function unitFor(scale) {
  const a = Math.abs(scale);
  if (a >= 1e10) return [1e9, 's'];
  if (a >= 1e7) return [1e6, 'ms'];
  if (a >= 1e4) return [1e3, 'us'];
  return [1, 'ns'];
}

function fmtNs(ns, scale) {
  if (ns === null || ns === undefined || Number.isNaN(ns)) return '–';
  const [div, u] = unitFor(scale === undefined ? ns : scale);
  return (div === 1 ? String(Math.round(ns)) : (ns / div).toFixed(3)) + ' ' + u;
}

// One duration in the unit its own size calls for ("3.000 ms", "850.000 us").
function fmtDur(ns) {
  const a = Math.abs(ns);
  if (a >= 1e9) return (ns / 1e9).toFixed(3) + ' s';
  if (a >= 1e6) return (ns / 1e6).toFixed(3) + ' ms';
  if (a >= 1e3) return (ns / 1e3).toFixed(3) + ' us';
  return Math.round(ns) + ' ns';
}

function fmtPct(x) {
  return x === null || x === undefined || Number.isNaN(x) ? 'n/a' : (100 * x).toFixed(2) + '%';
}

function fmtBytes(b) {
  if (!b) return '0 B';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return (i ? b.toFixed(1) : String(b)) + ' ' + u[i];
}

// A tick step of 1, 2 or 5 times a power of ten, at least min.
function niceStep(min) {
  let p = Math.pow(10, Math.floor(Math.log10(Math.max(min, 1e-9))));
  for (;;) {
    for (const m of [1, 2, 5]) if (m * p >= min) return m * p;
    p *= 10;
  }
}

function tickLabel(t, step) {
  const [div, u] = unitFor(step * 10);
  const digits = Math.max(0, Math.min(6, -Math.floor(Math.log10(step / div) + 1e-9)));
  return (t / div).toFixed(digits) + ' ' + u;
}

// First index i with a[i] >= x (a sorted), in [lo, hi].
function lowerBound(a, x, lo = 0, hi = a.length) {
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (a[m] < x) lo = m + 1; else hi = m;
  }
  return lo;
}

// First index i with a[i] > x.
function upperBound(a, x, lo = 0, hi = a.length) {
  while (lo < hi) {
    const m = (lo + hi) >>> 1;
    if (a[m] <= x) lo = m + 1; else hi = m;
  }
  return lo;
}

function hashHue(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0) % 360;
}

// Mix a #rrggbb colour with black (f < 0) or white (f > 0).
function shade(hex, f) {
  const n = parseInt(hex.slice(1), 16);
  const ch = [n >> 16, (n >> 8) & 255, n & 255].map((c) => Math.round(f < 0 ? c * (1 + f) : c + (255 - c) * f));
  return '#' + ch.map((c) => c.toString(16).padStart(2, '0')).join('');
}

const opColorCache = new Map();
// The colour of a compute op of this kind on this chunk: even chunks full,
// odd ones light; chunks 2 and 3 (interleaved) a darker variant of each.
function opColor(kind, chunk) {
  const key = kind * 1000 + chunk;
  let c = opColorCache.get(key);
  if (c) return c;
  const base = BASE[kind] || ['#a0a7b0', '#cfd4da'];
  c = base[chunk & 1];
  if (chunk & 2) c = shade(c, -0.22);
  opColorCache.set(key, c);
  return c;
}
