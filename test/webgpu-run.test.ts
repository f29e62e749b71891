/**
 * The whole program on webgpu (ALEXNET_TEST_BACKEND=webgpu: in `npm test`, the software adapter of
 * scripts/lavapipe.sh): `alexnet launch --backend webgpu` (two worker processes on the adapter, the
 * coordinator, gRPC) trains with evaluations and checkpoints, and its losses, evaluation losses, weights and
 * momentum are those of the same run on webasm to 1e-4 (relative; tensors on their scale); resumed by a new
 * launch from its middle checkpoint, it continues bit for bit (losses, evaluations, every tensor); and live
 * inspection through webgpu workers gives the kernels, feature maps and logits that the checkpoint gives
 * computed on webasm. webgpu only (skipped, saying so, in the CPU half of the tests).
 */
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { decodeSafetensors, scaledError, tiny, type NamedTensor } from '@alexnet-mp/core';
import { CheckpointSource, LiveSource } from '../packages/coordinator/src/inspect/source.js';
import { alexnet, runEvents, startWorker, tempDir } from './helpers.js';
import { inspectedRun, liveMatchesCheckpoint } from './inspected-run.js';

const webgpu = process.env.ALEXNET_TEST_BACKEND === 'webgpu' ? test.serial : test.skip;

/** [event, step, loss] of every training step and evaluation, in order. */
const losses = (runDir: string) => runEvents(runDir).filter((e) => e.event === 'step' || e.event === 'eval').map((e) => [e.event, e.step, e.loss] as [string, number, number]);

/** The tensors (weights, biases, momentum of both towers) of a run's checkpoint of `step`. */
function checkpointTensors(runDir: string, step: number): Map<string, NamedTensor> {
  return decodeSafetensors(fs.readFileSync(path.join(runDir, 'checkpoints', `step-${String(step).padStart(9, '0')}.safetensors`))).tensors;
}

async function launch(t: { is(a: unknown, b: unknown, m?: string): void }, args: string[]): Promise<void> {
  const p = alexnet(['launch', '--preset', 'tiny', '--batch', '8', '--seed', '5', ...args]);
  const { code } = await p.exited;
  t.is(code, 0, p.output());
}

webgpu('launch --backend webgpu: the losses, evaluations, weights and momentum of webasm to 1e-4; resumed from its middle checkpoint, it continues bit for bit', async (t) => {
  const gpu = tempDir(t, 'alexnet-webgpu-run-');
  const cpu = tempDir(t, 'alexnet-webgpu-run-');
  const run = ['--steps', '4', '--eval-every', '2', '--checkpoint-every', '2'];
  await launch(t, ['--backend', 'webgpu', '--run-dir', gpu, ...run]);
  await launch(t, ['--backend', 'webasm', '--run-dir', cpu, ...run]);
  t.deepEqual(
    runEvents(gpu).find((e) => e.event === 'run')!.workers!.map((w) => w.backend),
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
  // every weight, bias and momentum tensor after four steps, on the scale of the tensor
  const gpuTensors = checkpointTensors(gpu, 4);
  const cpuTensors = checkpointTensors(cpu, 4);
  t.deepEqual([...gpuTensors.keys()].sort(), [...cpuTensors.keys()].sort());
  t.true(gpuTensors.size >= 4 * 7, `${gpuTensors.size} tensors`);
  let worst = { err: 0, name: '' };
  for (const [name, x] of gpuTensors) {
    const err = scaledError(x.data, cpuTensors.get(name)!.data);
    if (err > worst.err) worst = { err, name };
  }
  t.true(worst.err < 1e-4, `worst tensor ${worst.name}: ${worst.err}`);
  t.log(`after 4 steps, the largest difference of a tensor between webgpu and webasm: ${worst.err.toExponential(2)} of its scale (${worst.name})`);
  // a new launch resumes the webgpu run from step 2, as if it had been killed during the evaluation after that
  // checkpoint (its log cut before the eval at 2): the eval at 2, its steps 2-3 and the evaluation at 4 equal the run's
  const resumed = tempDir(t, 'alexnet-webgpu-run-');
  fs.cpSync(gpu, resumed, { recursive: true });
  fs.rmSync(path.join(resumed, 'checkpoints', 'step-000000004.safetensors'));
  const log = fs.readFileSync(path.join(resumed, 'metrics.jsonl'), 'utf8').split('\n');
  fs.writeFileSync(path.join(resumed, 'metrics.jsonl'), log.slice(0, log.findIndex((l) => l.startsWith('{"event":"eval"'))).join('\n') + '\n');
  t.deepEqual(losses(resumed).map(([e, s]) => `${e} ${s}`), ['step 0', 'step 1']);
  await launch(t, ['--backend', 'webgpu', '--resume', resumed, '--steps', '4']);
  const after = losses(resumed).slice(2);
  t.deepEqual(after, a.slice(2), 'the eval at 2 (after the checkpoint), steps 2-3 and the eval at 4, bit for bit');
  const again = checkpointTensors(resumed, 4);
  const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  for (const [name, x] of gpuTensors) t.true(bytes(x.data).equals(bytes(again.get(name)!.data)), `${name} after the resumed steps, bit for bit`);
});

webgpu('live inspection through two webgpu workers gives the feature maps and logits of the checkpoint computed on webasm', async (t) => {
  const B = 8;
  const SEED = 3;
  const runDir = tempDir(t, 'alexnet-webgpu-run-');
  const [w0, w1] = await Promise.all([startWorker(t, 0, ['--max-batch', String(B)], 'webgpu'), startWorker(t, 1, ['--max-batch', String(B)], 'webgpu')]);
  const { service } = await inspectedRun((f) => t.teardown(f), [w0.address, w1.address], runDir, { batch: B, seed: SEED, steps: 3 });
  const live = await LiveSource.open(service.address);
  const ck = CheckpointSource.open(runDir, { backend: 'webasm' });
  t.teardown(async () => {
    await live.close();
    await ck.close();
  });
  // an image as `alexnet inspect activations --image` hands it on: CHW bytes of the input's size
  const image = Uint8Array.from({ length: 3 * tiny.inputSize * tiny.inputSize }, (_, i) => (i * 37) % 251);
  await liveMatchesCheckpoint(t, live, ck, image, 3);
});
