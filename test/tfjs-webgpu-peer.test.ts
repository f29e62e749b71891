/**
 * The benchmark's TensorFlow.js WebGPU peer (bench/peer/tfjs-webgpu.ts) builds the tiny preset and
 * trains on the WebGPU backend in Node: navigator.gpu from Dawn before tfjs-backend-webgpu loads,
 * the gradients tfjs-core's Node bundle lacks registered, no kernel missing. Where no WebGPU adapter
 * answers (a CPU machine without VK_DRIVER_FILES naming a software driver) it is skipped, saying why;
 * `npm test`'s webgpu half (scripts/test-webgpu.sh) gives it Mesa's lavapipe.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { getPreset } from '@alexnet-mp/core';
import { setUpTfjsWebGPU, whyNoTfjsWebGPU } from '../bench/peer/tfjs-webgpu.js';
import { buildTfjsModel, randomBatch, timeTfjsSteps } from '../bench/peer/tfjs-model.js';

const why = await whyNoTfjsWebGPU();
const spec = getPreset('tiny');
// one backend per process at a time: these run one after the other
const withAdapter = why === null ? test.serial : test.skip;
const skipped = why === null ? '' : ` (skipped: ${why}; VK_DRIVER_FILES naming Mesa's lavapipe ICD gives a software adapter)`;

withAdapter(`the TensorFlow.js WebGPU peer builds the tiny preset and trains one step on webgpu: finite loss, weights moved, no tensor left behind${skipped}`, async (t) => {
  const { gradients, adapter } = await setUpTfjsWebGPU();
  t.is(tf.getBackend(), 'webgpu');
  t.truthy(adapter);
  t.deepEqual([...gradients].sort(), ['Concat', 'LRN', 'MaxPool', 'Mean', 'Multiply', 'Relu', 'Reshape']);
  const live = tf.memory().numTensors;
  const model = buildTfjsModel(spec, 1);
  const { x, labels } = randomBatch(spec, 8, 2);
  const w0 = Float32Array.from(await model.trainable[0]!.data());
  const loss = model.stepTensor(x, labels);
  const value = (await loss.data())[0]!;
  loss.dispose();
  t.true(Number.isFinite(value) && value > 0, `loss ${value}`);
  const w1 = await model.trainable[0]!.data();
  t.true(w1.some((v, i) => v !== w0[i]), 'conv1 weights changed');
  model.dispose();
  x.dispose();
  labels.dispose();
  t.is(tf.memory().numTensors, live, 'every tensor of the step disposed');
});

withAdapter(`the WebGPU peer trains as the cpu backend does: from the same weights, with the same dropout masks, the same loss at each of 5 steps and after them; a run repeats${skipped}`, async (t) => {
  // tfjs draws the weights and the (seeded) dropout masks on the host: both backends start alike
  const STEPS = 5;
  const run = async (backend: 'cpu' | 'webgpu') => {
    if (backend === 'cpu') await tf.setBackend('cpu');
    else await setUpTfjsWebGPU();
    const model = buildTfjsModel(spec, 7);
    const { x, labels } = randomBatch(spec, 8, 3);
    const losses: number[] = [];
    for (let i = 0; i < STEPS; i++) {
      const l = model.stepTensor(x, labels);
      losses.push((await l.data())[0]!);
      l.dispose();
    }
    const l = tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, spec.classes), model.logits(x, false), undefined, 0, tf.Reduction.MEAN));
    losses.push((await l.data())[0]!);
    l.dispose();
    model.dispose();
    tf.dispose([x, labels]);
    return losses;
  };
  const want = await run('cpu');
  t.deepEqual(await run('cpu'), want, 'a run repeats bit for bit: its masks are seeded');
  const got = await run('webgpu');
  t.is(tf.getBackend(), 'webgpu');
  t.log(`cpu ${want.map((v) => v.toFixed(5)).join(' ')}; webgpu ${got.map((v) => v.toFixed(5)).join(' ')}`);
  for (const [i, v] of want.entries()) {
    t.true(Number.isFinite(got[i]!) && Math.abs(got[i]! - v) <= 1e-3 * Math.max(1, Math.abs(v)), `${i < STEPS ? `step ${i}` : 'after the steps'}: webgpu ${got[i]}, cpu ${v}`);
  }
});

withAdapter(`the WebGPU peer's timing loop: images/s from the median step, losses finite${skipped}`, async (t) => {
  await setUpTfjsWebGPU();
  const r = await timeTfjsSteps({ spec, batch: 4, warmup: 1, iters: 2 });
  t.is(r.stepMs.length, 2);
  t.true(r.imagesPerSec > 0 && Number.isFinite(r.firstLoss) && Number.isFinite(r.lastLoss));
});
