/**
 * A screenshot of the dashboard of a real run (docs/dashboard.png was made with it):
 *
 *   node --import tsx scripts/dashboard-screenshot.ts OUT.png STEPS [launch options...]
 *
 * starts `alexnet launch --ui-port 0 [launch options]`, opens the dashboard in headless Chromium (as the
 * dashboard test does), waits until the loss chart holds STEPS points and both workers' kernels are shown,
 * picks the first test image's conv1 feature maps, saves the whole page to OUT.png and stops the run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { alexnet } from '../test/helpers.js';
import { chromiumMissing, openBrowser } from '../test/browser.js';

const [out, stepsArg, ...launchArgs] = process.argv.slice(2);
const steps = Number(stepsArg);
if (!out || !Number.isInteger(steps) || steps < 1) {
  process.stderr.write('usage: node --import tsx scripts/dashboard-screenshot.ts OUT.png STEPS [launch options...]\n');
  process.exit(2);
}
const missing = chromiumMissing();
if (missing) {
  process.stderr.write(`${missing}\n`);
  process.exit(1);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const run = alexnet(['launch', ...launchArgs, '--ui-port', '0']);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    run.proc.kill('SIGTERM');
    process.exit(130);
  });
}
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-screenshot-'));
try {
  const url = (await run.waitFor(/^\[launch\] dashboard: (http:\S+)$/, 600_000))[1]!;
  process.stderr.write(`dashboard at ${url}\n`);
  const browser = await openBrowser(profile);
  const page = await browser.newPage();
  await page.goto(url);
  for (;;) {
    const n = Number(await page.getAttribute('#loss-chart', 'data-points'));
    if (n >= steps) break;
    if (run.proc.exitCode !== null) throw new Error(`the run ended after ${n} steps:\n${run.output()}`);
    await sleep(1000);
  }
  await page.waitForSelector('#kernels-0[src]', { timeout: 300_000 });
  await page.waitForSelector('#kernels-1[src]', { timeout: 300_000 });
  const first = await page.$('#test-images button');
  if (first) {
    await first.click();
    while (!/weights after step/.test((await page.textContent('#maps-note')) ?? '')) await sleep(500);
  }
  await sleep(1000);
  await page.screenshot({ path: out, fullPage: true });
  process.stderr.write(`saved ${out}\n`);
  await browser.close();
} finally {
  run.proc.kill('SIGTERM');
  await run.exited;
  fs.rmSync(profile, { recursive: true, force: true });
}
