/** The update rule for biases: no weight decay unless asked for (cuda-convnet's and Caffe's AlexNet); old checkpoints keep theirs. */
import test from 'ava';
import { encodeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { biasHyper, legacyHyper, type SgdHyper } from '../src/kernels/sgd.js';
import { initTowerParams, type TowerParams } from '../src/model/params.js';
import { tiny } from '../src/model/presets.js';
import { GroupedTrainer } from '../src/train/grouped-trainer.js';
import { syntheticBatch } from './synthetic.js';
import { testBackend } from './helpers.js';

/** The tiny preset's initial parameters with every bias at `b` (its init gives zero biases, which decay leaves alone). */
function paramsWithBiases(b: number): [TowerParams, TowerParams] {
  return [0, 1].map((t) => {
    const p = initTowerParams(tiny, t as 0 | 1, 7);
    for (const l of p.values()) l.b.fill(b);
    return p;
  }) as [TowerParams, TowerParams];
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

test('one step with and without decayBiases: the same weights, and biases that differ by exactly the decay term', async (t) => {
  const h = { lr: 0.1, momentum: 0.9, weightDecay: 0.01 };
  const batch = syntheticBatch(8, tiny.inputSize, 5);
  const after = async (decayBiases: boolean) => {
    const tr = await GroupedTrainer.create({ spec: tiny, backend: testBackend, batch: 8, seed: 7, params: paramsWithBiases(0.5), hyper: { ...h, decayBiases } });
    await tr.trainStep(batch);
    const p = await tr.syncParams();
    tr.destroy();
    return p;
  };
  const [without, withDecay] = [await after(false), await after(true)];
  let layers = 0;
  for (const tower of [0, 1] as const) {
    for (const [name, a] of without[tower]) {
      const b = withDecay[tower].get(name)!;
      t.true(maxAbsDiff(a.w, b.w) <= 1e-7, `${name} tower ${tower}: weights`);
      // from zero momentum: v = -lr*g (without) or -lr*g - wd*lr*b0 (with), b = b0 + v
      const want = -h.weightDecay * h.lr * 0.5;
      for (let i = 0; i < a.b.length; i++) {
        if (Math.abs(b.b[i]! - a.b[i]! - want) > 1e-6) return t.fail(`${name} tower ${tower} bias ${i}: ${b.b[i]} - ${a.b[i]} is not ${want}`);
        if (Math.abs(b.vb[i]! - a.vb[i]! - want) > 1e-6) return t.fail(`${name} tower ${tower} bias momentum ${i}`);
      }
      layers++;
    }
  }
  t.true(layers >= 8, `${layers} layers compared`);
});

test('the bias update drops only the decay term; the default is no decay on biases', (t) => {
  const h: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };
  t.deepEqual(biasHyper(h), { ...h, weightDecay: 0 });
  t.deepEqual(biasHyper({ ...h, decayBiases: false }), { ...h, decayBiases: false, weightDecay: 0 });
  t.is(biasHyper({ ...h, decayBiases: true }).weightDecay, 0.0005);
});

test('checkpoints say their bias rule; one saved before the option existed resumes decaying its biases', async (t) => {
  const tr = await GroupedTrainer.create({ spec: tiny, backend: testBackend, batch: 4, seed: 7, hyper: { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 } });
  const ck = await tr.checkpoint();
  tr.destroy();
  const now = await GroupedTrainer.resume({ spec: tiny, backend: testBackend, batch: 4 }, ck);
  t.is(now.trainer.hyper.decayBiases, false);
  t.is((now.extra.hyper as SgdHyper).decayBiases, false, 'saved explicitly');
  now.trainer.destroy();

  const old = encodeCheckpoint(tiny, paramsWithBiases(0), { step: 3, seed: 7, preset: 'tiny', extra: { hyper: { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 } } });
  const resumed = await GroupedTrainer.resume({ spec: tiny, backend: testBackend, batch: 4 }, old);
  t.is(resumed.trainer.hyper.decayBiases, true);
  resumed.trainer.destroy();
  // a new learning rate given without the bias rule keeps the checkpoint's
  const relr = await GroupedTrainer.resume({ spec: tiny, backend: testBackend, batch: 4, hyper: { lr: 0.001, momentum: 0.9, weightDecay: 0.0005 } }, old);
  t.deepEqual(relr.trainer.hyper, { lr: 0.001, momentum: 0.9, weightDecay: 0.0005, decayBiases: true });
  relr.trainer.destroy();
  t.deepEqual(legacyHyper({ lr: 1, momentum: 0, weightDecay: 0 }), { lr: 1, momentum: 0, weightDecay: 0, decayBiases: true });
  t.is(legacyHyper({ lr: 1, momentum: 0, weightDecay: 0, decayBiases: false }).decayBiases, false);
});
