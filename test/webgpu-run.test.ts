/**
 * The whole program on webgpu (ALEXNET_TEST_BACKEND=webgpu: in `npm test`, the software adapter of
 * scripts/lavapipe.sh): `alexnet launch --backend webgpu` (two worker processes on the adapter, the
 * coordinator, gRPC) trains with evaluations and checkpoints, and its losses and evaluations are those of the
 * same run on webasm to float32 rounding; resumed by a new launch from its middle checkpoint, it continues
 * exactly; and live inspection through webgpu workers gives the feature maps and logits that the checkpoint
 * gives computed on webasm. webgpu only (skipped, saying so, in the CPU half of the tests).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { tiny } from '@alexnet-mp/core';
import { CheckpointSource, LiveSource } from '../packages/coordinator/src/inspect/source.js';
import { alexnet, maxRelError, startWorker } from './helpers.js';
import { inspectedRun } from './inspected-run.js';

const webgpu = process.env.ALEXNET_TEST_BACKEND === 'webgpu' ? test.serial : test.skip;

function tempDir(t: { teardown(f: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-webgpu-run-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

interface Line {
  event: string;
  step?: number;
  loss?: number;
  top1_error?: number;
  workers?: { backend: string }[];
}

const lines = (runDir: string): Line[] => fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
/** [event, step, loss] of every training step and evaluation, in order. */
const losses = (runDir: string) => lines(runDir).filter((e) => e.event === 'step' || e.event === 'eval').map((e) => [e.event, e.step, e.loss] as [string, number, number]);

async function launch(t: { is(a: unknown, b: unknown, m?: string): void }, args: string[]): Promise<void> {
  const p = alexnet(['launch', '--preset', 'tiny', '--batch', '8', '--seed', '5', ...args]);
  const { code } = await p.exited;
  t.is(code, 0, p.output());
}

webgpu('launch --backend webgpu: the losses and evaluations of webasm to float32 rounding; resumed from its middle checkpoint, it continues exactly', async (t) => {
  const gpu = tempDir(t);
  const cpu = tempDir(t);
  const run = ['--steps', '4', '--eval-every', '2', '--checkpoint-every', '2'];
  await launch(t, ['--backend', 'webgpu', '--run-dir', gpu, ...run]);
  await launch(t, ['--backend', 'webasm', '--run-dir', cpu, ...run]);
  t.deepEqual(
    lines(gpu).find((e) => e.event === 'run')!.workers!.map((w) => w.backend),
    ['webgpu', 'webgpu'],
  );
  const a = losses(gpu);
  const b = losses(cpu);
  t.deepEqual(
    a.map(([e, s]) => `${e} ${s}`),
    ['step 0', 'step 1', 'eval 2', 'step 2', 'step 3', 'eval 4'],
  );
  t.deepEqual(
    a.map(([e, s]) => `${e} ${s}`),
    b.map(([e, s]) => `${e} ${s}`),
  );
  for (let i = 0; i < a.length; i++) {
    const rel = Math.abs(a[i]![2] - b[i]![2]) / Math.abs(b[i]![2]);
    t.true(rel < 1e-4, `${a[i]![0]} ${a[i]![1]}: webgpu ${a[i]![2]}, webasm ${b[i]![2]}`);
  }
  // a new launch resumes the webgpu run from step 2: its steps 2-3 and the evaluation at 4 equal the run's
  const resumed = tempDir(t);
  fs.cpSync(gpu, resumed, { recursive: true });
  fs.rmSync(path.join(resumed, 'checkpoints', 'step-000000004.safetensors'));
  await launch(t, ['--backend', 'webgpu', '--resume', resumed, '--steps', '4']);
  const after = losses(resumed).slice(a.length);
  t.deepEqual(after, a.slice(2), 'the eval at 2 (after the checkpoint), steps 2-3 and the eval at 4, bit for bit');
});

webgpu('live inspection through two webgpu workers gives the feature maps and logits of the checkpoint computed on webasm', async (t) => {
  const B = 8;
  const SEED = 3;
  const runDir = tempDir(t);
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--max-batch', String(B)], 'webgpu'), startWorker(t, 1, ['--max-batch', String(B)], 'webgpu')]);
  const { service } = await inspectedRun((f) => t.teardown(f), [w0.address, w1.address], runDir, { batch: B, seed: SEED, steps: 3 });
  const live = await LiveSource.open(service.address);
  const ck = CheckpointSource.open(runDir, { backend: 'webasm' });
  t.teardown(async () => {
    await live.close();
    await ck.close();
  });
  t.is(ck.step, 3);
  const [lk, ckk] = await Promise.all([live.kernels('conv1'), ck.kernels('conv1')]);
  for (const tw of [0, 1]) t.deepEqual(Array.from(lk.towers[tw]!.w), Array.from(ckk.towers[tw]!.w), `conv1 tower ${tw}: the checkpoint holds the webgpu workers' weights`);
  // an image as `alexnet inspect activations --image` hands it on: CHW bytes of the input's size
  const x = Uint8Array.from({ length: 3 * tiny.inputSize * tiny.inputSize }, (_, i) => (i * 37) % 251);
  for (const layer of ['conv2', 'conv3', 'fc7', 'fc8']) {
    const [la, ca] = await Promise.all([live.activations(x, layer), ck.activations(x, layer)]);
    for (const tw of [0, 1]) {
      if (layer === 'fc8' && tw === 1) {
        t.is(la.towers[1], null);
        continue;
      }
      const err = maxRelError(la.towers[tw]!, ca.towers[tw]!, 1e-5);
      t.true(err < 1e-4, `${layer} tower ${tw}: worst relative difference webgpu workers vs webasm ${err}`);
    }
  }
  const [lp, cp] = await Promise.all([live.predictions(4), ck.predictions(4)]);
  t.deepEqual(Array.from(lp.labels), Array.from(cp.labels));
  t.true(maxRelError(lp.logits, cp.logits, 1e-5) < 1e-4);
});
