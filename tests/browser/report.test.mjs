// tests/browser/report.test.mjs — pipetrace's HTML report in a real browser:
// Debian's headless chromium driven by playwright-core (never a downloaded
// browser), with a fresh profile and no network. Prints TAP lines
// ("ok - ..." / "not ok - ...") for tests/e2e/browser.sh, which makes the
// reports and passes them here:
//
//   node report.test.mjs --report R.html --ranks 8 --op NAME --pair NAME
//        --compare C.html --traces 3 --markup M.html --artifacts DIR
//
// Screenshots go to DIR (report.png, compare.png, markup.png, hover.png).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {chromium} from 'playwright-core';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let failed = 0;
function ok(cond, what, detail) {
  if (cond) {
    console.log('ok - ' + what);
  } else {
    failed++;
    console.log('not ok - ' + what);
    if (detail) for (const line of String(detail).split('\n').slice(0, 20)) console.log('#   ' + line);
  }
}

// Open file in a page that records console errors, page errors, dialogs and
// any request that is not for the file itself (the report must need none).
async function open(context, file, viewport) {
  const page = await context.newPage();
  await page.setViewportSize(viewport || {width: 1400, height: 900});
  const log = {errors: [], dialogs: [], requests: []};
  page.on('console', (m) => { if (m.type() === 'error') log.errors.push(m.text()); });
  page.on('pageerror', (e) => log.errors.push(String(e && e.message || e)));
  page.on('dialog', (d) => { log.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  const url = 'file://' + path.resolve(file);
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (u === url) return route.continue();
    log.requests.push(u);
    return route.abort();
  });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="1"]', {timeout: 30000}).catch(() => {});
  await page.waitForTimeout(250); // a couple of frames
  return {page, log};
}

async function hoverText(page, at) {
  await page.mouse.move(at.x, at.y);
  await page.waitForFunction(() => {
    const t = document.querySelector('.tip');
    return t && !t.hidden && t.textContent.length > 0;
  }, null, {timeout: 5000}).catch(() => {});
  return page.evaluate(() => { const t = document.querySelector('.tip'); return t && !t.hidden ? t.textContent : ''; });
}

async function testReport(context) {
  const {page, log} = await open(context, args.report);
  const ready = await page.evaluate(() => document.body.dataset.ready === '1');
  ok(ready && log.errors.length === 0, 'the report loads with no console errors', log.errors.join('\n'));
  ok(log.requests.length === 0, 'the report requests nothing from the network', log.requests.join('\n'));

  const rows = await page.$$eval('.rank-row[data-trace="0"]', (els) => els.map((e) => e.dataset.rank));
  const want = Array.from({length: +args.ranks}, (_, i) => String(i));
  ok(JSON.stringify(rows) === JSON.stringify(want), 'the timeline shows one row per rank (' + args.ranks + ')',
    'rows: ' + JSON.stringify(rows));

  for (const name of [args.op, args.pair]) {
    const at = await page.evaluate((n) => window.ptReport.locate(0, 0, n), name);
    const text = at ? await hoverText(page, at) : '';
    ok(text.includes(name) && /start/.test(text) && /duration/.test(text),
      'hovering the cell of ' + name + ' on r0 shows that op', 'tooltip: ' + text + '\nat: ' + JSON.stringify(at));
    if (name === args.pair) await page.screenshot({path: path.join(args.artifacts, 'hover.png')});
  }

  // zoom with the keyboard around the hovered op, pan by dragging
  const before = await page.evaluate(() => window.ptReport.view());
  await page.keyboard.press('w');
  await page.keyboard.press('w');
  await page.waitForTimeout(100);
  const zoomed = await page.evaluate(() => window.ptReport.view());
  const box = await page.locator('.tl-canvas').boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + 120);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 - 200, box.y + 120, {steps: 5});
  await page.mouse.up();
  const panned = await page.evaluate(() => window.ptReport.view());
  await page.keyboard.down('Control');
  await page.mouse.wheel(0, -400);
  await page.keyboard.up('Control');
  await page.waitForTimeout(100);
  const wheeled = await page.evaluate(() => window.ptReport.view());
  ok(zoomed.t1 - zoomed.t0 < 0.6 * (before.t1 - before.t0) && panned.t0 > zoomed.t0 &&
    wheeled.t1 - wheeled.t0 < 0.8 * (panned.t1 - panned.t0),
  'W and Ctrl+wheel zoom in, dragging pans', JSON.stringify({before, zoomed, panned, wheeled}));

  // the page's activation curve peaks where `stats` says
  const peaks = await page.evaluate(() => {
    const out = [];
    for (const tr of document.querySelectorAll('#metrics table tbody tr')) {
      const cells = tr.querySelectorAll('td');
      const rank = +tr.dataset.rank;
      out.push([window.ptReport.peak(0, rank), +cells[8].textContent]);
    }
    return out;
  });
  ok(peaks.length === +args.ranks && peaks.every(([a, b]) => a === b),
    'in-flight activations peak as the metrics table says', JSON.stringify(peaks));

  await page.evaluate(() => window.ptReport.fit());
  await page.mouse.move(0, 0);
  await page.waitForTimeout(150);
  await page.screenshot({path: path.join(args.artifacts, 'report.png'), fullPage: true});
  ok(log.errors.length === 0, 'no console errors after hover, zoom and pan', log.errors.join('\n'));
  await page.close();
}

async function testCompare(context) {
  const {page, log} = await open(context, args.compare);
  const heads = await page.$$eval('.trace-row', (els) => els.length);
  const rows = await page.$$eval('#compare tbody tr', (els) => els.length);
  ok(log.errors.length === 0 && heads === +args.traces && rows === +args.traces,
    'the comparison shows ' + args.traces + ' traces on one timeline and in one table',
    JSON.stringify({heads, rows, errors: log.errors}));
  await page.screenshot({path: path.join(args.artifacts, 'compare.png'), fullPage: true});
  await page.close();
}

async function testMarkup(context) {
  const {page, log} = await open(context, args.markup);
  const state = await page.evaluate(() => ({
    pwned: window.__pt_pwned,
    scripts: document.querySelectorAll('script').length,
    imgs: document.querySelectorAll('img').length,
    bold: document.querySelectorAll('#app b').length,
    lanes: [...document.querySelectorAll('.lane-row, .rank-row')].map((e) => e.textContent + ' ' + e.title),
    title: document.querySelector('h1').textContent,
    text: document.body.innerText,
  }));
  ok(log.errors.length === 0 && state.pwned === undefined && log.dialogs.length === 0 && state.scripts === 2 &&
    state.imgs === 0 && state.bold === 0, 'names with markup run no script and make no elements',
  JSON.stringify({errors: log.errors, dialogs: log.dialogs, pwned: state.pwned, scripts: state.scripts,
    imgs: state.imgs}));
  ok(state.title.includes('<script>window.__pt_pwned=3</script>') &&
    state.lanes.some((t) => t.includes('<img src=x onerror="window.__pt_pwned=2">')),
  'names with markup appear as text (title, stream label)', JSON.stringify({title: state.title, lanes: state.lanes}));
  // a kernel named <script>alert(1)</script>: find it on stream 7 of r0 and hover it
  const at = await page.evaluate(() => {
    const lane = [...document.querySelectorAll('.lane-row')][0];
    const box = document.querySelector('.tl-canvas').getBoundingClientRect();
    const v = window.ptReport.view();
    const lb = lane.getBoundingClientRect();
    const t = 0.5e6; // the first kernel runs 0.1..0.9 ms
    return {x: box.left + (t - v.t0) / (v.t1 - v.t0) * box.width, y: lb.top + lb.height / 2};
  });
  const tip = await hoverText(page, at);
  ok(tip.includes('<script>alert(1)</script>') && (await page.evaluate(() => window.__pt_pwned)) === undefined,
    'hovering a kernel named <script>alert(1)</script> shows the name as text', 'tooltip: ' + tip);
  await page.screenshot({path: path.join(args.artifacts, 'markup.png'), fullPage: true});
  await page.close();
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pt-chromium-'));
let context;
try {
  fs.mkdirSync(args.artifacts, {recursive: true});
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.PT_CHROMIUM || '/usr/bin/chromium', headless: true, args: FLAGS,
    offline: true,
  });
  await testReport(context);
  await testCompare(context);
  await testMarkup(context);
} catch (e) {
  ok(false, 'the browser tests ran to the end', e && e.stack || String(e));
} finally {
  if (context) await context.close().catch(() => {});
  fs.rmSync(profile, {recursive: true, force: true});
}
process.exit(failed ? 1 : 0);
