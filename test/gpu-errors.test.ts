/**
 * Errors the GPU reports outside any error scope (WebGPU's uncaptured errors: out of memory, a validation
 * error) spoil the work they hit without an exception from gpu.js, which only prints them: the step they
 * happen in fails, naming them, in the one-process trainer and in a worker (whose run then ends with that
 * reason), and a worker does not hand out parameters the GPU may have spoiled (so no checkpoint holds them).
 * The error here: a buffer with no usage (a validation error) made on gpu.js's device at a kernel submit in
 * the middle of a step, or between steps.
 * webgpu only (ALEXNET_TEST_BACKEND=webgpu: the software adapter of scripts/lavapipe.sh in `npm test`).
 */
import test from 'ava';
import { GpuError, GroupedTrainer, tiny } from '@alexnet-mp/core';
import { inputNormalisation, normaliseImages, startWorker, type RunningWorker } from '@alexnet-mp/worker';
import { Coordinator, SyntheticSource } from '@alexnet-mp/coordinator';
import { gpujsDevice } from './helpers.js';

const webgpu = process.env.ALEXNET_TEST_BACKEND === 'webgpu' ? test.serial : test.skip;
const hyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };

/** A validation error on gpu.js's device at its `k`-th queue submit from now (inside whatever work runs then). */
async function spoilAtSubmit(k: number): Promise<void> {
  const device = await gpujsDevice();
  const queue = device.queue;
  const submit = queue.submit;
  let n = 0;
  queue.submit = (buffers: unknown[]) => {
    submit.call(queue, buffers);
    if (++n < k) return;
    queue.submit = submit;
    device.createBuffer({ size: 4, usage: 0 });
  };
}

webgpu('the one-process trainer: the step during which the GPU reports an error throws a GpuError naming it; the next one runs', async (t) => {
  const trainer = await GroupedTrainer.create({ spec: tiny, backend: 'webgpu', batch: 8, seed: 1, hyper, fallback: { onFallback: 'throw' } });
  t.teardown(() => trainer.destroy());
  const b = await new SyntheticSource(tiny, 1).batch(0, 8);
  const batch = { images: normaliseImages(b.images, inputNormalisation(tiny)), labels: Float32Array.from(b.labels) };
  await trainer.trainStep(batch);
  await spoilAtSubmit(2);
  const e = await t.throwsAsync(trainer.trainStep(batch), { instanceOf: GpuError });
  t.regex(e!.message, /^the GPU reported an error during step 1: GPUValidationError: .*usage/i);
  t.log(e!.message);
  await trainer.trainStep(batch);
  t.pass('the step after it runs');
});

webgpu('a worker: the step during which the GPU reports an error fails, the run ends naming it, and GetParameters refuses to hand out what the GPU may have spoiled', async (t) => {
  const ws: RunningWorker[] = [];
  for (const tower of [0, 1] as const) ws.push(await startWorker({ spec: tiny, tower, backend: 'webgpu', port: 0, maxBatch: 8 }));
  t.teardown(() => Promise.all(ws.map((w) => w.close())));
  const c = new Coordinator({ spec: tiny, workers: [ws[0]!.address, ws[1]!.address], batch: 8, seed: 2, hyper, source: new SyntheticSource(tiny, 2) });
  t.teardown(() => c.close());
  await c.start();
  await c.run(2, () => {});
  await spoilAtSubmit(2);
  const e = await t.throwsAsync(c.run(4, () => {}));
  t.regex(e!.message, /\(tower [01]\) .*failed at step 2: .*the GPU reported an error during step 2: GPUValidationError: .*usage/is);
  t.log(e!.message);
  // an error between steps, then a checkpoint's read of the parameters
  (await gpujsDevice()).createBuffer({ size: 4, usage: 0 });
  const p = await t.throwsAsync(c.clients[0].parameters(true));
  t.regex(p!.message, /the GPU reported an error during the steps up to 2, read for GetParameters: GPUValidationError/);
});
