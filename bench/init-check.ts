/**
 * `node --import tsx bench/init-check.ts [--data DIR] [--steps 25] [--batch 32]`: why the cifar
 * preset does not take the paper's initialisation. For two variants of the cifar net, on one
 * fixed batch of real CIFAR-10 images (dropout on, the paper's update at lr 0.01):
 *   paper: N(0, 0.01^2) weights, biases 1 in conv2/4/5 and fc6/7, input pixel - mean (scale 1)
 *   cifar: the preset as shipped (He init, zero biases, input (pixel - mean) / 64)
 * it prints each layer's gradient rms at the first step (tower 0) and the loss of every step.
 * A net that trains fits one fixed batch quickly; the README's "Init" paragraph quotes this output.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { benchArgs } from './cli-args.js';
import { GroupedTrainer, getPreset, type ModelSpec } from '@alexnet-mp/core';
import { normaliseImages } from '@alexnet-mp/worker';
import { FolderSource } from '../packages/coordinator/src/folder-source.js';

const argv = await benchArgs(yargs(hideBin(process.argv)), { steps: 'count', batch: 'count' })
  .usage('$0 [--data DIR] [--steps N] [--batch N]: gradient sizes and fitting one batch, paper init vs the cifar preset')
  .option('data', { type: 'string', default: '../shared/datasets/cifar10', describe: 'CIFAR-10 image folder or binary folder' })
  .option('steps', { type: 'number', default: 25 })
  .option('batch', { type: 'number', default: 32 })
  .option('lr', { type: 'number', default: 0.01 })
  .strict()
  .parse();

const cifar = getPreset('cifar');
const paperStyle: ModelSpec = {
  ...cifar,
  initStd: 0.01,
  inputScale: 1,
  layers: cifar.layers.map((l) => (l.type === 'conv' || l.type === 'fc' ? { ...l, biasInit: ['conv2', 'conv4', 'conv5', 'fc6', 'fc7'].includes(l.name) ? 1 : 0 } : l)),
};
const src = await FolderSource.open({ data: argv.data, spec: cifar, seed: 1 });
const batch = await src.batch(0, argv.batch);
await src.close();
const rms = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);

for (const [name, spec] of [['paper init', paperStyle], ['cifar preset', cifar]] as const) {
  const hyper = { lr: argv.lr, momentum: 0.9, weightDecay: 0.0005 };
  const trainer = await GroupedTrainer.create({ spec, backend: 'webasm', batch: argv.batch, seed: 1, hyper, fallback: { onFallback: 'throw' } });
  const x = { images: normaliseImages(batch.images, { mean: src.inputMean, scale: spec.inputScale }), labels: Float32Array.from(batch.labels) };
  // the first step from zero momentum: w1 = w0 - lr (grad + wd w0), so grad = (w0 - w1) / lr - wd w0
  const before = new Map([...trainer.params[0]].map(([k, v]) => [k, Float32Array.from(v.w)]));
  const losses = [(await trainer.trainStep(x)).loss];
  const grads = [...trainer.params[0]].map(([k, v]) => {
    const w0 = before.get(k)!;
    return `${k} ${rms(v.w.map((w, i) => (w0[i]! - w) / hyper.lr - hyper.weightDecay * w0[i]!)).toExponential(1)}`;
  });
  for (let s = 1; s < argv.steps; s++) losses.push((await trainer.trainStep(x)).loss);
  console.log(`${name} (init std ${spec.initStd}, input / ${spec.inputScale}):`);
  console.log(`  gradient rms at step 0, tower 0: ${grads.join(', ')}`);
  console.log(`  loss on one fixed batch of ${argv.batch}, steps 0..${argv.steps - 1}: ${losses.map((l) => l.toFixed(2)).join(' ')}`);
  trainer.destroy();
}
