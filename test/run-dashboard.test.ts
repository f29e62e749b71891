/**
 * `alexnet dashboard RUN_DIR` (dashboard/run-dashboard.ts): a tiny run's folder served on its own: every step
 * and evaluation of metrics.jsonl in the snapshot, a line appended later followed, the kernels of the
 * latest checkpoint (a newer checkpoint's once one is written); mistakes are one line.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { openRunDashboard, type RunDashboard } from '../packages/coordinator/src/dashboard/run-dashboard.js';
import type { FeedEvent } from '../packages/coordinator/src/dashboard/feed.js';
import { alexnet } from './helpers.js';

const dirs: string[] = [];
test.after.always(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function tinyRun(steps: number, extra: string[] = [], dir?: string): Promise<string> {
  const runDir = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-rundash-'));
  if (!dir) dirs.push(runDir);
  const p = alexnet(['launch', '--preset', 'tiny', '--backend', 'webasm', '--batch', '8', '--steps', String(steps), '--checkpoint-every', '2', '--eval-every', '2', ...extra, ...(dir ? ['--resume', runDir] : ['--run-dir', runDir])]);
  const { code } = await p.exited;
  if (code !== 0) throw new Error(p.output());
  return runDir;
}

const until = async (what: string, f: () => boolean | Promise<boolean>, ms = 30_000) => {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

/**
 * A page watching the dashboard: its event stream open and read for as long as the test runs (a response left
 * unread may be collected and its connection closed, which the server takes as the page gone); the kernels
 * published meanwhile, in order.
 */
function watchKernels(t: ExecutionContext, d: RunDashboard): { tower: number; step: number }[] {
  const kernels: { tower: number; step: number }[] = [];
  const off = d.feed.subscribe((e: FeedEvent) => {
    if (e.type === 'kernels') kernels.push({ tower: e.tower, step: e.step });
  });
  t.teardown(off);
  const events = new AbortController();
  const reading = (async () => {
    const r = await fetch(`${d.url}api/events`, { signal: events.signal });
    const reader = r.body!.getReader();
    for (;;) if ((await reader.read()).done) return;
  })().catch(() => {});
  t.teardown(async () => {
    events.abort();
    await reading;
  });
  return kernels;
}

test.serial('a run folder served alone: its steps and evaluations, lines appended later, the kernels of its latest checkpoint and of the next one', async (t) => {
  const runDir = await tinyRun(4);
  const said: string[] = [];
  const d = await openRunDashboard({ runDir, host: '127.0.0.1', port: 0, refreshS: 0.2, followMs: 100, backend: 'webasm', info: (l) => said.push(l) });
  t.teardown(() => d.close());
  const snap = (await (await fetch(`${d.url}api/snapshot`)).json()) as { run: { preset: string }; steps: { step: number; loss: number }[]; evals: { step: number }[] };
  t.is(snap.run.preset, 'tiny');
  const logged = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; step: number; loss: number });
  t.deepEqual(snap.steps.map((s) => [s.step, s.loss]), logged.filter((e) => e.event === 'step').map((e) => [e.step + 1, e.loss]));
  t.deepEqual(snap.evals.map((e) => e.step), [2, 4]);

  // the kernels: fetched while a page watches (its event stream open), from the checkpoint of step 4
  const kernels = watchKernels(t, d);
  await until('the kernels of step 4', () => kernels.filter((k) => k.step === 4).length === 2);
  const png = await fetch(`${d.url}api/kernels/1.png`);
  t.is(png.status, 200);
  t.deepEqual([...new Uint8Array(await png.arrayBuffer()).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);

  // the run goes on (resumed to step 6): its new lines and its new checkpoint's kernels reach the dashboard
  await tinyRun(6, [], runDir);
  await until('steps 5 and 6 followed', () => d.feed.snapshot().steps.length === 6);
  await until('the kernels of step 6', () => kernels.some((k) => k.step === 6)).catch((e: Error) => { throw new Error(`${e.message}; said: ${said.join(' | ')}; kernels ${JSON.stringify(kernels)}`); });
  // (the resumed run evaluates step 4 again, its checkpoint written before that evaluation: one point a step)
  t.deepEqual(d.feed.snapshot().evals.map((e) => e.step), [2, 4, 6]);
});

test.serial('a damaged latest checkpoint is said and passed over: the pictures come from the one before it, the curves as ever', async (t) => {
  const runDir = await tinyRun(4);
  const latest = path.join(runDir, 'checkpoints', 'step-000000004.safetensors');
  const bytes = fs.readFileSync(latest);
  bytes[bytes.length - 10] ^= 0xff;
  fs.writeFileSync(latest, bytes);
  const said: string[] = [];
  const d = await openRunDashboard({ runDir, host: '127.0.0.1', port: 0, refreshS: 0.2, followMs: 100, backend: 'webasm', info: (l) => said.push(l) });
  t.teardown(() => d.close());
  t.true(said.some((l) => /^the pictures: .*step-000000004\.safetensors is damaged/.test(l)), said.join(' | '));
  t.true(said.includes('the pictures come from step-000000002.safetensors, the newest checkpoint that reads'), said.join(' | '));
  const snap = (await (await fetch(`${d.url}api/snapshot`)).json()) as { steps: unknown[] };
  t.is(snap.steps.length, 4);
  // while a page watches: the kernels of step 2, fetched once, not again at every refresh (0.2 s here)
  const kernels = watchKernels(t, d);
  await until('the kernels of step 2', () => kernels.length >= 2);
  await new Promise((r) => setTimeout(r, 1500));
  t.deepEqual(kernels.map((k) => k.step), [2, 2], 'one fetch a tower');
  const png = await fetch(`${d.url}api/kernels/0.png`);
  t.is(png.headers.get('x-alexnet-step'), '2');
});

test.serial('a run folder opened before its first checkpoint: the curves, then, once one is written, its kernels, test images and feature maps', async (t) => {
  const runDir = await tinyRun(4);
  // as if the run had not reached its first checkpoint yet (still training: no done line)
  const kept = path.join(runDir, 'checkpoints.kept');
  fs.renameSync(path.join(runDir, 'checkpoints'), kept);
  fs.mkdirSync(path.join(runDir, 'checkpoints'));
  const metrics = path.join(runDir, 'metrics.jsonl');
  const logged = fs.readFileSync(metrics, 'utf8');
  fs.writeFileSync(metrics, logged.split('\n').filter((l) => !l.includes('"event":"done"')).join('\n'));
  const said: string[] = [];
  const d = await openRunDashboard({ runDir, host: '127.0.0.1', port: 0, refreshS: 0.2, followMs: 100, backend: 'webasm', info: (l) => said.push(l) });
  t.teardown(() => d.close());
  t.true(said.some((l) => /has no checkpoint yet: the curves until one is written \(looked for every 0\.2 s while a page is open\)/.test(l)), said.join(' | '));
  const kernels = watchKernels(t, d);
  const none = await fetch(`${d.url}api/kernels/0.png`);
  t.is(none.status, 404);
  t.regex(await none.text(), /no checkpoint yet/);
  t.deepEqual(await (await fetch(`${d.url}api/test-images`)).json(), { images: [], layers: [] });
  await new Promise((r) => setTimeout(r, 600));
  t.deepEqual(kernels, [], 'nothing before a checkpoint');
  // the checkpoint of step 4 is written
  fs.renameSync(path.join(kept, 'step-000000004.safetensors'), path.join(runDir, 'checkpoints', 'step-000000004.safetensors'));
  await until('the kernels of step 4', () => kernels.length >= 2);
  t.deepEqual(kernels.map((k) => k.step), [4, 4]);
  const listed = (await (await fetch(`${d.url}api/test-images`)).json()) as { images: unknown[]; layers: string[] };
  t.true(listed.images.length > 0 && listed.layers.includes('conv1'), JSON.stringify(listed));
  const maps = await fetch(`${d.url}api/activations/0.png?image=0&layer=conv1`);
  t.is(maps.status, 200);
  t.is(maps.headers.get('x-alexnet-step'), '4');
});

test.serial('a finished run that keeps no checkpoint is said to be so (the curves only), not to be waiting for its first', async (t) => {
  const runDir = await tinyRun(2);
  fs.rmSync(path.join(runDir, 'checkpoints'), { recursive: true });
  const said: string[] = [];
  const d = await openRunDashboard({ runDir, host: '127.0.0.1', port: 0, refreshS: 0.2, followMs: 100, backend: 'webasm', info: (l) => said.push(l) });
  t.teardown(() => d.close());
  t.true(said.some((l) => /has no checkpoint, and its run has ended \(a finished run may keep only the model exported from it\): the curves only/.test(l)), said.join(' | '));
  t.false(said.some((l) => /no checkpoint yet/.test(l)));
  // the kernels asked for anyway: the same said, not that one is yet to come
  const png = await fetch(`${d.url}api/kernels/0.png`);
  t.is(png.status, 404);
  t.regex(await png.text(), /^no kernels: the run has ended without a checkpoint in its folder \(a finished run may keep only the model exported from it\)/);
});

test.serial("a run whose data folder has moved: the curves and kernels are served, the feature maps' test images said to be missing", async (t) => {
  // a tiny data set of four classes, a few CIFAR-10 images each
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-rundash-data-'));
  dirs.push(data);
  const cifar = path.resolve('../shared/datasets/cifar10');
  for (const split of ['train', 'test']) {
    for (const c of ['airplane', 'automobile', 'bird', 'cat']) {
      fs.mkdirSync(path.join(data, split, c), { recursive: true });
      for (const f of fs.readdirSync(path.join(cifar, split, c)).sort().slice(0, 6)) fs.copyFileSync(path.join(cifar, split, c, f), path.join(data, split, c, f));
    }
  }
  const runDir = await tinyRun(2, ['--data', data]);
  fs.renameSync(data, `${data}.moved`);
  dirs.push(`${data}.moved`);
  const said: string[] = [];
  const d = await openRunDashboard({ runDir, host: '127.0.0.1', port: 0, refreshS: 0.2, followMs: 100, backend: 'webasm', info: (l) => said.push(l) });
  t.teardown(() => d.close());
  t.true(said.some((l) => l.startsWith(`no test images for the feature maps: the run was trained on ${data}, which is not there any more: give --data with the same images`)), said.join(' | '));
  const snap = (await (await fetch(`${d.url}api/snapshot`)).json()) as { steps: unknown[] };
  t.is(snap.steps.length, 2);
  // while a page watches: the kernels of the latest checkpoint
  const kernels = watchKernels(t, d);
  await until('the kernels of step 2', () => kernels.length >= 2);
  const png = await fetch(`${d.url}api/kernels/0.png`);
  t.is(png.status, 200);
});

test('a folder that is not a run, a missing one: one line, exit 2', async (t) => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-rundash-empty-'));
  dirs.push(empty);
  for (const [args, re] of [
    [['dashboard', path.join(empty, 'none')], /^alexnet: \S+none: no such run folder$/],
    [['dashboard', empty], /^alexnet: \S+ has no metrics\.jsonl: not a run folder/],
    [['dashboard', empty, '--ui-port', '70000'], /^alexnet: --ui-port must be a port 0\.\.65535/],
    [['dashboard', empty, '--data', path.join(empty, 'no-data')], /^alexnet: data folder \S+no-data does not exist: expected an image folder/],
  ] as [string[], RegExp][]) {
    const p = alexnet(args);
    t.is((await p.exited).code, 2, p.output());
    t.is(p.stderr.length, 1, p.output());
    t.regex(p.stderr[0]!, re);
  }
});
