// tests/browser/bench.mjs — how a large report behaves in Chromium (run by
// bench/run.sh after bench_view --keep): the time from navigation to a drawn
// page, then the time one timeline frame takes at several zoom levels and
// what level of detail drew it (rectangles, summed pixel columns). Target: a
// frame under 50 ms, so zoom and pan stay responsive. Medians of 5 frames.
//
//   node bench.mjs REPORT.html
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {chromium} from 'playwright-core';

const file = path.resolve(process.argv[2]);
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pt-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.PT_CHROMIUM || '/usr/bin/chromium', headless: true, offline: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await context.newPage();
  await page.setViewportSize({width: 1600, height: 1000});
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e.message || e)));
  const t0 = Date.now();
  await page.goto('file://' + file);
  await page.waitForSelector('body[data-ready="1"]', {timeout: 120000});
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  const open = (Date.now() - t0) / 1000;
  const mb = fs.statSync(file).size / 1048576;
  console.log(`open: ${open.toFixed(2)} s to a drawn page (${mb.toFixed(1)} MiB report)`);
  const span = await page.evaluate(() => { window.ptReport.fit(); return window.ptReport.view().t1; });
  for (const zoom of [1, 10, 100, 10000]) {
    const r = await page.evaluate(([z, s]) => {
      const c = s / 2, w = s / z / 2;
      window.ptReport.setView(c - w, c + w);
      window.ptReport.frame(); // the first frame at a level may build its pyramid
      const ms = [];
      let last;
      for (let i = 0; i < 5; i++) { last = window.ptReport.frame(); ms.push(last.ms); }
      ms.sort((a, b) => a - b);
      return {ms: ms[2], rects: last.rects, columns: last.columns};
    }, [zoom, span]);
    console.log(`frame at ${String(zoom).padStart(5)}x zoom: ${r.ms.toFixed(1)} ms (${r.rects} rectangles, ` +
      `${r.columns} summed columns)  [target < 50 ms]  ${r.ms < 50 ? 'ok' : 'SLOW'}`);
  }
  if (errors.length) console.log('page errors: ' + errors.join('; '));
} finally {
  await context.close();
  fs.rmSync(profile, {recursive: true, force: true});
}
