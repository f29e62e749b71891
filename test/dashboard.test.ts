/**
 * The dashboard end to end: `alexnet launch --ui-port 0` on the tiny preset, the page opened in headless
 * Chromium (Debian's chromium package driven by playwright-core; `npm test` installs it when missing,
 * see scripts/ensure-chromium.sh), the curves seen moving, both workers' status and conv1 kernels seen,
 * the feature maps of a chosen test image on both workers, nothing asked of any other host, and a
 * screenshot saved.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { Page } from 'playwright-core';
import { alexnet } from './helpers.js';
import { chromiumMissing, openBrowser } from './browser.js';

// ---- code that runs in the page. This project's TypeScript has no DOM types (lib ES2022): the little of the
// DOM these callbacks use is declared here, for this module only.
interface PageElement {
  readonly dataset: Record<string, string | undefined>;
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
}
interface PageImage extends PageElement {
  readonly complete: boolean;
  readonly naturalWidth: number;
  readonly naturalHeight: number;
}
interface PageCanvas {
  width: number;
  height: number;
  getContext(kind: '2d'): { drawImage(img: PageImage, x: number, y: number): void; getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } };
}
declare const document: { getElementById(id: string): PageImage; querySelector(selector: string): PageElement | null; createElement(tag: 'canvas'): PageCanvas };
declare const window: { uPlot?: unknown };

/** The points a chart holds (app.js writes them to data-points from uPlot's own data). */
const chartPoints = (id: string): number => Number(document.getElementById(id).dataset.points);
const points = (page: Page, id: string) => page.evaluate(chartPoints, id);

interface LoadedImage {
  src: string | null;
  width: number;
  height: number;
  /** RGBA, drawn on a canvas */
  pixels: number[];
}
/** An <img>'s pixels, or null until it has loaded. */
const imageById = (id: string): LoadedImage | null => {
  const img = document.getElementById(id);
  if (!img.complete || img.naturalWidth === 0) return null;
  const c = document.createElement('canvas');
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  return { src: img.getAttribute('src'), width: img.naturalWidth, height: img.naturalHeight, pixels: Array.from(g.getImageData(0, 0, c.width, c.height).data) };
};

/**
 * The image once it is loaded and its src contains `query`: polled, because the page swaps an
 * image's src when a newer step's picture is ready, and a swap between two looks leaves it loading.
 */
async function loadedImage(page: Page, id: string, query = ''): Promise<LoadedImage> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const img = await page.evaluate(imageById, id);
    if (img && (img.src ?? '').includes(query)) return img;
    if (Date.now() > deadline) throw new Error(`#${id} did not load an image with "${query}" in its src within 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('dashboard: the curves move, both workers show their status, conv1 kernels and feature maps, a screenshot is saved, and both workers show as stopped once the run ends', async (t) => {
  const missing = chromiumMissing();
  if (missing) {
    t.fail(missing);
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-dashboard-'));
  // the browser profile goes at the end; the screenshot stays (its path is logged)
  t.teardown(() => fs.rmSync(path.join(dir, 'profile'), { recursive: true, force: true }));
  // many more steps than the test needs: it stops the run when it has seen enough
  const run = alexnet(['launch', '--steps', '100000', '--eval-every', '10', '--norms-every', '5', '--backend', 'webasm', '--ui-port', '0', '--ui-refresh', '1']);
  t.teardown(async () => {
    if (run.proc.exitCode === null && run.proc.signalCode === null) {
      run.proc.kill('SIGTERM');
      await run.exited;
    }
  });
  const url = (await run.waitFor(/^\[launch\] dashboard: (http:\/\/127\.0\.0\.1:\d+\/)$/, 120_000))[1]!;

  const browser = await openBrowser(path.join(dir, 'profile'));
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  // the offline guarantee: every request goes to the coordinator
  const elsewhere: string[] = [];
  page.on('request', (r) => !r.url().startsWith(url) && !r.url().startsWith('data:') && elsewhere.push(r.url()));
  await page.goto(url);
  await page.waitForFunction(() => typeof window.uPlot === 'function');

  // the curves move: the loss chart gains points while we watch, and held-out evaluations appear
  await page.waitForFunction(() => Number(document.getElementById('loss-chart').dataset.points) >= 3, null, { timeout: 120_000 });
  const before = await points(page, 'loss-chart');
  await page.waitForFunction((n) => Number(document.getElementById('loss-chart').dataset.points) >= n + 5, before, { timeout: 60_000 });
  const after = await points(page, 'loss-chart');
  t.true(after >= before + 5, `loss chart: ${before} -> ${after} points`);
  // the error chart has the training points and the held-out ones (top-1 only: tiny's 4 classes are all in any top 5)
  await page.waitForFunction(() => document.getElementById('fig-eval')?.textContent !== '-', null, { timeout: 60_000 });
  const [errorPoints, lossPoints] = (await page.evaluate('["error-chart", "loss-chart"].map((id) => Number(document.getElementById(id).dataset.points))')) as [number, number];
  t.is(errorPoints, lossPoints, 'as many error points as loss points: the training steps and the evaluations');
  t.true(((await page.evaluate('charts["error-chart"].data[4]')) as (number | null)[]).every((v) => v === null), 'no held-out top-5 for a model of 4 classes');
  t.regex(await page.textContent('#fig-rate') ?? '', /^\d+(\.\d+)?$/, 'images/s shown');
  t.regex(await page.textContent('#fig-eval') ?? '', /^\d+(\.\d)?% \(step \d+\)$/, 'the last held-out error shown');

  // the layers' update/weight ratios, every 5 steps: a curve per layer with parameters (8 in the tiny preset)
  await page.waitForFunction(() => Number(document.getElementById('norms-chart')?.dataset.points) >= 16, null, { timeout: 60_000 });
  t.false(await page.evaluate('document.getElementById("norms-figure").hidden'), 'the ratios shown once the first reading came');
  const ratios = (await page.evaluate('charts["norms-chart"].data')) as (number | null)[][];
  t.is(ratios.length, 1 + 8, 'steps and a series per layer');
  t.true(ratios.slice(1).every((ys) => ys.every((v) => v === null || (v > 0 && v < 1))), JSON.stringify(ratios));
  t.true((ratios[0] as number[]).every((x) => x % 5 === 0), 'read after every 5th step');

  // the chart controls: the training curves smoothed (TensorBoard's debiased moving average) beside the raw ones,
  // the loss on a log scale, both kept by the browser for the next visit
  const lossSeries = () => page.evaluate('new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(charts["loss-chart"].data.slice(1, 3)))))') as Promise<(number | null)[][]>;
  await page.evaluate(() => {
    const slider = document.getElementById('smoothing') as unknown as { value: string; dispatchEvent(e: Event): boolean };
    slider.value = '0.9';
    slider.dispatchEvent(new Event('input'));
  });
  t.is(await page.textContent('#smoothing-value'), '0.90');
  const [raw, smooth] = await lossSeries();
  let ema = 0;
  let n = 0;
  const want = raw!.map((y) => (y === null ? null : ((ema = 0.9 * ema + 0.1 * y), n++, ema / (1 - 0.9 ** n))));
  t.true(n >= 8, `${n} training losses`);
  t.true(want.every((w, i) => (w === null ? smooth![i] === null : Math.abs(w - smooth![i]!) < 1e-9)), `smoothed ${JSON.stringify(smooth)} against ${JSON.stringify(want)}`);
  t.false(raw!.every((y, i) => y === smooth![i]), 'the smoothed curve is not the raw one');
  await page.click('#log-loss');
  t.is(await page.evaluate('charts["loss-chart"].scales.y.distr'), 3, 'the loss chart on a log scale');
  await page.reload();
  await page.waitForFunction(() => Number(document.getElementById('loss-chart')?.dataset.points) >= 3, null, { timeout: 60_000 });
  t.is(await page.inputValue('#smoothing'), '0.9');
  t.true(await page.isChecked('#log-loss'));
  t.is(await page.evaluate('charts["loss-chart"].scales.y.distr'), 3, 'still on a log scale after a reload');

  // both workers: their status (gpu.js mode, device, adapter, step time) and the bytes of each crossing point
  for (const tower of [0, 1]) {
    const card = `#worker-${tower}`;
    await page.waitForFunction((c) => document.querySelector(`${c} dd[data-key="gpu.js mode"]`)?.textContent === 'webasm', card, { timeout: 30_000 });
    t.is(await page.textContent(`${card} dd[data-key="device"]`), '0');
    t.is(await page.textContent(`${card} dd[data-key="adapter"]`), 'no adapter', 'webasm: no WebGPU adapter');
    t.regex((await page.textContent(`${card} dd[data-key="step time"]`)) ?? '', /^\d+\.\d ms \(compute [\d.]+, exchange waited [\d.]+, hidden [\d.]+, update [\d.]+\)$/);
    t.regex((await page.textContent(`${card} dd[data-key="memory"]`)) ?? '', /^[1-9]\d* MiB resident$/, 'the worker process\'s resident memory');
    // the cards refresh every second (--ui-refresh 1), the curves with every step: a card may still show a
    // poll from before the first step ended, with no bytes yet
    await page.waitForFunction((c) => /^[1-9]/.test(document.querySelector(`${c} table.traffic tbody tr td:nth-child(2)`)?.textContent ?? ''), card, { timeout: 30_000 });
    const rows = await page.$$eval(`${card} table.traffic tbody tr`, (trs) => trs.map((tr) => tr.getAttribute('data-point')));
    t.deepEqual(rows, ['pool2', 'pool5', 'fc6', 'fc7'], `worker ${tower}'s crossing points`);
    t.regex((await page.textContent(`${card} table.traffic tbody tr td:nth-child(2)`)) ?? '', /^[1-9][\d.]* (B|KiB|MiB)[1-9][\d.]* (B|KiB|MiB)$/, 'forward bytes sent at pool2');
  }

  // both workers' conv1 kernels: loaded, not empty, different from each other; refreshed as training runs
  await page.waitForFunction(() => [0, 1].every((t) => document.getElementById(`kernels-${t}`).naturalWidth > 0), null, { timeout: 60_000 });
  const k0 = await loadedImage(page, 'kernels-0');
  const k1 = await loadedImage(page, 'kernels-1');
  t.true(k0.width > 0 && k0.height > 0 && k1.width > 0 && k1.height > 0);
  t.notDeepEqual(k0.pixels, k1.pixels, "the two towers' kernels differ");
  await page.waitForFunction((src) => document.getElementById('kernels-0').getAttribute('src') !== src, k0.src, { timeout: 60_000 });
  t.not(await page.getAttribute('#kernels-0', 'src'), k0.src, 'kernels refreshed');

  // the feature maps of a chosen test image on both workers: conv1 (the first layer offered), then pool5 (past the pool2 crossing)
  const layers = await page.$$eval('#map-layer option', (os) => os.map((o) => o.getAttribute('value')));
  t.deepEqual(layers, ['conv1', 'lrn1', 'pool1', 'conv2', 'lrn2', 'pool2', 'conv3', 'conv4', 'conv5', 'pool5', 'fc6', 'fc7']);
  t.false(layers.includes('fc8'), 'fc8 is not offered: tower 1 does not compute it');
  await page.click('#test-images button[data-index="2"]');
  const mapsLoaded = (query: string) =>
    [0, 1].every((t) => {
      const img = document.getElementById(`maps-${t}`);
      return img.complete && img.naturalWidth > 0 && (img.getAttribute('src') ?? '').includes(query);
    });
  await page.waitForFunction(mapsLoaded, 'image=2&layer=conv1', { timeout: 60_000 });
  const m0 = await loadedImage(page, 'maps-0', 'image=2&layer=conv1');
  const m1 = await loadedImage(page, 'maps-1', 'image=2&layer=conv1');
  t.deepEqual([m0.width, m0.height], [m1.width, m1.height], 'both towers show the same number of maps of the same size');
  t.notDeepEqual(m0.pixels, m1.pixels, "the two towers' feature maps differ");
  // the note says "loading" while a newer step's maps are fetched: wait for it to name the step
  await page.waitForFunction(() => /^test image 2, conv1, weights after step \d+/.test(document.getElementById('maps-note').textContent ?? ''), null, { timeout: 60_000 });
  t.regex((await page.textContent('#maps-note')) ?? '', /^test image 2, conv1/);
  await page.selectOption('#map-layer', 'pool5');
  await page.waitForFunction(mapsLoaded, 'image=2&layer=pool5', { timeout: 60_000 });

  const shot = path.join(dir, 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  const png = fs.readFileSync(shot);
  t.true(png.length > 10_000 && png.subarray(1, 4).toString() === 'PNG', `screenshot ${shot}`);
  t.log(`screenshot: ${shot}`);
  if (process.env.DASHBOARD_SCREENSHOT) fs.copyFileSync(shot, process.env.DASHBOARD_SCREENSHOT);
  // the run ends (SIGINT): both workers are shown as stopped, never STEPPING, also once the coordinator is gone
  t.deepEqual(problems, [], 'no script errors while the run was up');
  problems.length = 0;
  run.proc.kill('SIGINT');
  const bothStopped = () => [0, 1].every((t) => /^stopped \(/.test(document.querySelector(`#worker-${t} dd[data-key="state"]`)?.textContent ?? ''));
  await page.waitForFunction(bothStopped, null, { timeout: 60_000 });
  await run.exited;
  await page.waitForFunction(() => /coordinator gone/.test(document.getElementById('run-state').textContent ?? ''), null, { timeout: 30_000 });
  await new Promise((r) => setTimeout(r, 1500));
  for (const tower of [0, 1]) {
    const shown = (await page.textContent(`#worker-${tower} dd[data-key="state"]`)) ?? '';
    t.regex(shown, /^stopped \(run (stopped: SIGINT|finished)\)$/, `worker ${tower} after the run and the coordinator are gone`);
    t.is(await page.textContent(`#worker-${tower} dd[data-key="gpu.js mode"]`), 'webasm', 'its last status is still shown');
  }
  t.false(/STEPPING/.test((await page.textContent('#workers')) ?? ''));

  t.deepEqual(elsewhere, [], 'no request left the coordinator');
  // as the coordinator shuts down and once it is gone the browser reports the page's reset and refused
  // requests as console errors: expected
  const afterStop = problems.filter((p) => !/^console: Failed to load resource: net::ERR_(CONNECTION_(REFUSED|RESET|CLOSED)|EMPTY_RESPONSE)/.test(p));
  t.deepEqual(afterStop, [], 'no script errors after the run ended');
});
