/**
 * What a training step makes on the GPU besides its work: bind groups and buffers (the gpu.js patch, item 11:
 * bind groups kept per set of buffers; KernelOptions.reuseOutput: one output buffer a kernel). webgpu only
 * (ALEXNET_TEST_BACKEND=webgpu; the software adapter of scripts/lavapipe.sh in `npm test`).
 */
import test from 'ava';
import { countDeviceObjects } from '../src/webgpu-context.js';
import { GroupedTrainer } from '../src/train/grouped-trainer.js';
import { Kernel, type KernelThis } from '../src/kernels/kernel-runner.js';
import { tiny } from '../src/model/presets.js';
import { syntheticBatch } from './synthetic.js';
import { testBackend, testDevice } from './helpers.js';

/** Counts the bind groups and buffers made on gpu.js's device while `run` runs. */
const counting = async (run: () => Promise<void>) => countDeviceObjects(run);

const webgpu = testBackend === 'webgpu' ? test.serial : test.skip;

webgpu('a kernel bound in turn to two input buffers makes two bind groups, not one a call', async (t) => {
  const dev = await testDevice();
  const twice = new Kernel(dev, 'twice', function (this: KernelThis, a: Float32Array) {
    return 2 * a[this.thread.x]!;
  }, { output: [64] });
  const inputs = [await dev.upload(new Float32Array(64).fill(1)), await dev.upload(new Float32Array(64).fill(3))];
  inputs.forEach((x) => dev.keep(x));
  t.teardown(() => inputs.forEach((x) => dev.drop(x)));
  await twice.exec(inputs[0]!); // built, bound once
  const reuse = new Kernel(dev, 'twice.reused', function (this: KernelThis, a: Float32Array) {
    return 2 * a[this.thread.x]!;
  }, { output: [64], reuseOutput: true });
  await reuse.exec(inputs[0]!);
  const n = await counting(async () => {
    for (let i = 0; i < 10; i++) t.is((await dev.toHost(await reuse.exec(inputs[i % 2]!), 64))[0], i % 2 === 0 ? 2 : 6);
  });
  t.is(n.bindGroups, 1, 'the second input buffer once; the first was bound before');
  // the output is one buffer; at most a staging buffer for the read-backs (gpu.js keeps them for the next)
  t.true(n.buffers <= 1, `${n.buffers} buffers`);
  dev.release();
});

webgpu('a training step of the tiny preset after the first three makes 3 buffers and 8 bind groups, of 154 launches', async (t) => {
  const tr = await GroupedTrainer.create({ spec: tiny, backend: testBackend, batch: 8, seed: 2 });
  t.teardown(() => tr.destroy());
  const b = syntheticBatch(8, tiny.inputSize, 5);
  // the SGD updates' two buffers take turns: from the fourth step on every set of buffers was seen before
  for (let s = 0; s < 3; s++) await tr.trainStep(b);
  const n = await counting(async () => {
    await tr.trainStep(b);
  });
  // buffers: the images' upload and the loss kernels' results (fresh each step), every other result in a
  // buffer of its own kernel, the SGD updates in two that take turns; bind groups: the kernels that read
  // those three (conv1's im2col on both towers, the loss's gradient, fc8's three backward kernels) and the
  // upload and loss kernels themselves. Without the kept bind groups and reused buffers: 105 and 60
  t.true(n.buffers <= 3 + 2, `${n.buffers} buffers (the read-backs' staging buffers may add one each)`);
  t.true(n.bindGroups <= 8, `${n.bindGroups} bind groups`);
});
