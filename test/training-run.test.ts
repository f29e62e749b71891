/**
 * The training run of issue 4 with real processes (`alexnet launch`, tiny preset): resuming from a checkpoint
 * continues exactly, epochs drive the learning-rate schedule, evaluations and checkpoints, and real data
 * (an image folder) trains and evaluates on its own held-out split.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeCheckpoint, getPreset, initTowerParams, towerParamLayers, writeCheckpointFile } from '@alexnet-mp/core';
import { gradientImage, writeFile } from '../packages/core/test/data-fixtures.js';
import { Coordinator, SyntheticSource, readCheckpointHeader } from '@alexnet-mp/coordinator';
import { alexnet, startWorker } from './helpers.js';

const common = ['launch', '--preset', 'tiny', '--backend', 'webasm'];

interface Event {
  event: string;
  step?: number;
  loss?: number;
  lr?: number;
  epoch?: number;
  images?: number;
  file?: string;
  data?: string;
  start_step?: number;
  steps_per_epoch?: number | null;
  data_wait_share?: number;
  eval?: { data: string } | null;
}

function tempDir(t: { teardown(f: () => void): void }, prefix = 'alexnet-run-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

const events = (runDir: string): Event[] => fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Event);

async function launchOk(t: { is(a: unknown, b: unknown, m?: string): void }, args: string[]): Promise<void> {
  const p = alexnet([...common, ...args]);
  const { code } = await p.exited;
  t.is(code, 0, p.output());
}

test('a run resumed from its checkpoint by a new coordinator continues exactly (dropout on): steps 4-6 equal the uninterrupted run', async (t) => {
  const straight = tempDir(t);
  const split = tempDir(t);
  await launchOk(t, ['--batch', '8', '--steps', '6', '--run-dir', straight]);
  await launchOk(t, ['--batch', '8', '--steps', '3', '--checkpoint-every', '3', '--run-dir', split]);
  t.deepEqual(fs.readdirSync(path.join(split, 'checkpoints')), ['step-000000003.safetensors']);
  // a new launch: new workers, a new coordinator; batch, seed, hyper-parameters and checkpointing come from the checkpoint
  await launchOk(t, ['--steps', '6', '--resume', split]);
  const losses = (dir: string) => events(dir).filter((e) => e.event === 'step').map((e) => [e.step, e.loss]);
  const a = losses(straight);
  const b = losses(split);
  t.is(a.length, 6);
  t.deepEqual(b, a, 'every loss, steps 1-3 of the first run and 4-6 of the resumed one, equals the uninterrupted run');
  const runs = events(split).filter((e) => e.event === 'run');
  t.deepEqual(runs.map((r) => r.start_step), [0, 3]);
  t.deepEqual(fs.readdirSync(path.join(split, 'checkpoints')), ['step-000000003.safetensors', 'step-000000006.safetensors']);
});

test('a checkpoint of another preset is refused with a clear message, before any worker is contacted', async (t) => {
  const dir = tempDir(t);
  const spec = getPreset('tiny');
  const params = [initTowerParams(spec, 0, 1), initTowerParams(spec, 1, 1)] as const;
  writeCheckpointFile(path.join(dir, 'checkpoints'), 5, encodeCheckpoint(spec, [params[0], params[1]], { step: 5, seed: 1, preset: 'tiny', extra: { batch: 8 } }));
  const p = alexnet(['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--preset', 'cifar', '--resume', dir]);
  const { code } = await p.exited;
  t.is(code, 2, p.output());
  t.regex(p.stderr.join('\n'), /^alexnet: cannot resume from .*step-000000005\.safetensors: it is a checkpoint of preset "tiny", this run is preset "cifar" \(give --preset tiny\)$/m);
  t.notRegex(p.output(), /internal error|\n\s+at /, 'no stack trace');
  // no checkpoint at all
  const empty = tempDir(t);
  const q = alexnet(['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--resume', empty]);
  t.is((await q.exited).code, 2);
  t.regex(q.stderr.join('\n'), /^alexnet: --resume .*: no checkpoint in .*checkpoints/m);
});

test('epochs: the lr schedule by epoch, an evaluation and a checkpoint at each epoch end, the last --keep kept', async (t) => {
  const dir = tempDir(t);
  // synthetic epochs are 1024 images: batches of 128 make 8 steps an epoch
  await launchOk(t, ['--batch', '128', '--epochs', '2', '--lr', '0.02', '--lr-schedule', 'steps:1', '--keep', '1', '--eval-batches', '1', '--run-dir', dir]);
  const ev = events(dir);
  const steps = ev.filter((e) => e.event === 'step');
  t.is(steps.length, 16);
  t.deepEqual(steps.map((e) => e.lr), [...Array<number>(8).fill(0.02), ...Array<number>(8).fill(0.002)]);
  t.is(ev[0]!.steps_per_epoch, 8);
  t.deepEqual(ev.filter((e) => e.event === 'eval').map((e) => [e.step, e.images]), [[8, 128], [16, 128]]);
  t.deepEqual(ev.filter((e) => e.event === 'checkpoint').map((e) => e.step), [8, 16]);
  t.deepEqual(fs.readdirSync(path.join(dir, 'checkpoints')), ['step-000000016.safetensors']);
  const done = ev[ev.length - 1]!;
  t.is(done.event, 'done');
  t.true(done.data_wait_share! >= 0 && done.data_wait_share! < 1);
});

test('real data: an image folder trains by epochs and evaluates on its own val/ split; a missing folder is one line', async (t) => {
  const root = tempDir(t, 'alexnet-folder-');
  const colours: [number, number, number][] = [[250, 40, 40], [40, 250, 40], [40, 40, 250], [230, 230, 40]];
  for (const [c, rgb] of colours.entries()) {
    for (let i = 0; i < 6; i++) writeFile(path.join(root, 'train', `c${c}`, `${i}.png`), await gradientImage(16 + i, 16, rgb, 'png'));
    for (let i = 0; i < 2; i++) writeFile(path.join(root, 'val', `c${c}`, `${i}.png`), await gradientImage(16, 16 + i, rgb, 'png'));
  }
  const cache = tempDir(t, 'alexnet-cache-');
  const dir = tempDir(t);
  // 24 training images, batches of 8: 3 steps an epoch
  await launchOk(t, ['--batch', '8', '--data', root, '--cache-dir', cache, '--epochs', '2', '--run-dir', dir]);
  const ev = events(dir);
  t.true(ev[0]!.data!.includes(root), ev[0]!.data);
  t.regex(ev[0]!.eval!.data, /8 val images/);
  t.is(ev.filter((e) => e.event === 'step').length, 6);
  t.deepEqual(ev.filter((e) => e.event === 'eval').map((e) => [e.step, e.images]), [[3, 8], [6, 8]]);
  const done = ev[ev.length - 1]!;
  t.true(typeof done.data_wait_share === 'number');

  // resumed with no --data: the run's own data, not the synthetic default
  await launchOk(t, ['--epochs', '3', '--cache-dir', cache, '--resume', dir]);
  const runs = events(dir).filter((e) => e.event === 'run');
  t.is(runs.length, 2);
  t.true(runs[1]!.data!.includes(root), runs[1]!.data);
  t.is(runs[1]!.start_step, 6);
  t.is(events(dir).filter((e) => e.event === 'step').length, 9);

  const p = alexnet(['coordinator', '--workers', '127.0.0.1:1,127.0.0.1:2', '--data', path.join(root, 'nope'), '--cache-dir', cache]);
  t.is((await p.exited).code, 2, p.output());
  const err = p.stderr.filter((l) => l.startsWith('alexnet: '));
  t.is(err.length, 1, p.output());
  t.regex(err[0]!, /^alexnet: data folder \S+nope does not exist: expected an image folder/);
  t.notRegex(p.output(), /internal error|\n\s+at /, 'no stack trace');
});

test('a plateau schedule is fed the epoch-end evaluations, drops the rate, and its state is in the checkpoint, written before the evaluation', async (t) => {
  const dir = tempDir(t);
  // min delta 1: the top-1 error never improves enough, so with patience 1 every epoch-end evaluation after the first drops the rate
  await launchOk(t, ['--batch', '128', '--epochs', '3', '--lr', '0.02', '--lr-schedule', 'plateau:1:1', '--eval-batches', '1', '--run-dir', dir]);
  const ev = events(dir);
  const lrs = ev.filter((e) => e.event === 'step').map((e) => e.lr);
  t.deepEqual(lrs, [...Array<number>(16).fill(0.02), ...Array<number>(8).fill(0.002)]);
  t.deepEqual(ev.filter((e) => e.event === 'lr').map((e) => [e.step, e.lr]), [[16, 0.002], [24, 0.0002]]);
  const head = readCheckpointHeader(path.join(dir, 'checkpoints', 'step-000000024.safetensors'));
  t.is(head.state.step, 24);
  // written before the evaluation of its step (a worker lost during it costs the evaluation alone): the schedule as it was
  // before that evaluation, and a note that it is due, which a run resumed from it does first
  t.is(head.state.extra!.eval_due, true);
  t.is(head.state.extra!.lr_schedule!.state.drops, 1);
  const order = ev.filter((e) => (e.event === 'checkpoint' || e.event === 'eval') && e.step === 24).map((e) => e.event);
  t.deepEqual(order, ['checkpoint', 'eval']);
  // the update rule saved whole: the bias rule explicit (a checkpoint without it reads as one from before the option)
  t.deepEqual(head.state.extra!.hyper, { lr: 0.02, momentum: 0.9, weightDecay: 0.0005, decayBiases: false });
});

test('a run resumed from an epoch-end checkpoint whose evaluation its log has: not evaluated again, and that evaluation still feeds the plateau schedule (the rates equal the run done in one go)', async (t) => {
  const dir = tempDir(t);
  // the first session ends at step 16, epoch 2's end: checkpoint 16 (its schedule state from before the evaluation), then evaluation 16
  await launchOk(t, ['--batch', '128', '--epochs', '3', '--steps', '16', '--lr', '0.02', '--lr-schedule', 'plateau:1:1', '--eval-batches', '1', '--run-dir', dir]);
  t.is(readCheckpointHeader(path.join(dir, 'checkpoints', 'step-000000016.safetensors')).state.extra!.lr_schedule!.state.drops, 0);
  const p = alexnet([...common, '--resume', dir, '--steps', '24']);
  t.is((await p.exited).code, 0, p.output());
  t.regex(p.output(), /the evaluation after step 16 is in \S+metrics\.jsonl already: not done again/);
  const ev = events(dir);
  t.deepEqual(ev.filter((e) => e.event === 'eval').map((e) => e.step), [8, 16, 24]);
  // as in one go (the test above): 16 steps at 0.02, 8 at 0.002, the second drop after evaluation 24
  t.deepEqual(ev.filter((e) => e.event === 'step').map((e) => e.lr), [...Array<number>(16).fill(0.02), ...Array<number>(8).fill(0.002)]);
  t.deepEqual(ev.filter((e) => e.event === 'lr').map((e) => [e.step, e.lr]).slice(-2), [[16, 0.002], [24, 0.0002]]);
});

test('SetParameters: the weights, momentum and step set on the workers are what GetParameters returns; refused after a step or with a tensor missing', async (t) => {
  const spec = getPreset('tiny');
  const [w0, w1] = await Promise.all([startWorker(t, 0), startWorker(t, 1)]);
  const params = [initTowerParams(spec, 0, 7), initTowerParams(spec, 1, 7)] as const;
  for (const p of params) for (const l of p.values()) l.vw = l.w.map((x) => x / 3);
  const hyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };
  const c = new Coordinator({ spec, workers: [w0.address, w1.address], batch: 4, seed: 1, hyper, source: new SyntheticSource(spec, 1), resume: { params: [params[0], params[1]], step: 5 } });
  t.teardown(() => c.close());
  await c.start();
  t.is(c.stepsCompleted, 5);
  for (const tw of [0, 1] as const) {
    const got = await c.clients[tw].parameters(true);
    t.is((await c.clients[tw].status()).steps_done, 5);
    for (const [name, p] of params[tw]) t.deepEqual(got.get(name), p, `tower ${tw} ${name}`);
  }
  const m = await c.step(await new SyntheticSource(spec, 1).batch(5, 4));
  t.is(m.step, 5);
  // after a step: refused, nothing changed
  const shapes = new Map<string, number[]>(towerParamLayers(spec, 0).map((l) => [l.name, [...l.shape]]));
  const e = await t.throwsAsync(c.clients[0].setParameters(params[0], shapes, 0));
  t.regex(String(e?.message), /FAILED_PRECONDITION.*only right after Configure/);
  t.is((await c.clients[0].status()).steps_done, 6);
  // a fresh run, one layer missing: refused (the first run lets the workers go first: Release)
  await c.release();
  const d = new Coordinator({ spec, workers: [w0.address, w1.address], batch: 4, seed: 1, hyper, source: new SyntheticSource(spec, 1) });
  t.teardown(() => d.close());
  await d.start();
  const partial = new Map([...params[0]].slice(1));
  const f = await t.throwsAsync(d.clients[0].setParameters(partial, shapes, 0));
  t.regex(String(f?.message), /INVALID_ARGUMENT: no w tensor for conv1/);
});
