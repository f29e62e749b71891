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

withAdapter(`the WebGPU peer computes the loss the cpu backend computes for the same weights, and 15 steps on one batch lower it (the first step raises it: lr 0.01 on this small net)${skipped}`, async (t) => {
  // same seed, same weights (tfjs draws them on the host); no dropout in loss()
  await tf.setBackend('cpu');
  const cpuModel = buildTfjsModel(spec, 7);
  const cpuBatch = randomBatch(spec, 8, 3);
  const want = cpuModel.loss(cpuBatch.x, cpuBatch.labels);
  cpuModel.dispose();
  tf.dispose([cpuBatch.x, cpuBatch.labels]);

  await setUpTfjsWebGPU();
  const model = buildTfjsModel(spec, 7);
  const { x, labels } = randomBatch(spec, 8, 3);
  const lossOf = async () => {
    const l = tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, spec.classes), model.logits(x, false), undefined, 0, tf.Reduction.MEAN));
    const v = (await l.data())[0]!;
    l.dispose();
    return v;
  };
  const before = await lossOf();
  t.true(Math.abs(before - want) <= 1e-3 * Math.max(1, Math.abs(want)), `webgpu ${before}, cpu ${want}`);
  for (let i = 0; i < 15; i++) {
    const l = model.stepTensor(x, labels);
    await l.data();
    l.dispose();
  }
  const after = await lossOf();
  t.true(after < before, `loss ${before} -> ${after} after 15 steps on one batch`);
  model.dispose();
  tf.dispose([x, labels]);
});

withAdapter(`the WebGPU peer's timing loop: images/s from the median step, losses finite${skipped}`, async (t) => {
  await setUpTfjsWebGPU();
  const r = await timeTfjsSteps({ spec, batch: 4, warmup: 1, iters: 2 });
  t.is(r.stepMs.length, 2);
  t.true(r.imagesPerSec > 0 && Number.isFinite(r.firstLoss) && Number.isFinite(r.lastLoss));
});
