import test from 'ava';
import { tiny } from '../src/model/presets.js';
import { initTowerParams, type TowerParams } from '../src/model/params.js';
import { Tower } from '../src/tower/tower.js';
import { concatTowers, sumSlices, towerSlice } from '../src/tower/crossing.js';
import { referenceLoss, referenceStep } from '../src/reference/grouped-model.js';
import { syntheticBatch } from './synthetic.js';
import { assertClose, finiteDifferences, testDevice } from './helpers.js';

const N = 4;
const ctx = { seed: 7, step: 3, train: true };

function params(): [TowerParams, TowerParams] {
  return [initTowerParams(tiny, 0, 11), initTowerParams(tiny, 1, 11)];
}

test('the gpu.js towers give the float64 reference model\'s loss and every gradient (dropout on)', async (t) => {
  const dev = await testDevice();
  const p = params();
  const b = syntheticBatch(N, tiny.inputSize, 5);
  const ref = referenceStep(tiny, p, b.images, b.labels, N, ctx);
  const towers = [new Tower(dev, tiny, 0, N, p[0]), new Tower(dev, tiny, 1, N, p[1])] as const;
  let outs: Float32Array[] = [b.images, b.images];
  for (let i = 0; i < towers[0].segments.length; i++) {
    const x = i === 0 ? b.images : concatTowers(outs[0]!, outs[1]!);
    outs = await Promise.all(towers.map((tw) => (tw.runs(i) ? tw.forwardSegment(i, x, ctx) : new Float32Array(0))));
  }
  const { losses, dlogits } = await towers[0].lossAndGradient(b.labels);
  t.true(Math.abs(losses.reduce((a, v) => a + v, 0) / N - ref.loss) < 1e-5);
  const last = towers[0].segments.length - 1;
  const dIn = (await towers[0].backwardSegment(last, dlogits))!;
  let d = [towerSlice(dIn, 0), towerSlice(dIn, 1)];
  for (let i = last - 1; i >= 0; i--) {
    const g = [await towers[0].backwardSegment(i, d[0]!), await towers[1].backwardSegment(i, d[1]!)];
    if (i > 0) d = [0, 1].map((s) => sumSlices(towerSlice(g[0]!, s as 0 | 1), towerSlice(g[1]!, s as 0 | 1)));
  }
  for (const tw of [0, 1] as const) {
    for (const [name, want] of ref.grads[tw]) {
      const got = towers[tw].grads.get(name)!;
      await assertClose(t, got.dw, want.dw, 1e-3, `tower ${tw} ${name} dw`);
      await assertClose(t, got.db, want.db, 1e-3, `tower ${tw} ${name} db`);
    }
  }
});

test('the float64 reference model\'s gradients (weights and biases, every layer) match finite differences, across the crossings', (t) => {
  const p = params();
  const b = syntheticBatch(N, tiny.inputSize, 6);
  const ref = referenceStep(tiny, p, b.images, b.labels, N, ctx);
  const layers = [[0, 'conv1'], [1, 'conv2'], [1, 'conv3'], [0, 'conv4'], [1, 'conv5'], [0, 'fc6'], [1, 'fc7'], [0, 'fc8']] as const;
  for (const [tw, layer] of layers) {
    for (const kind of ['w', 'b'] as const) {
      const lp = p[tw].get(layer)!;
      // a float64 copy of the parameter that finite differences perturb
      const x64 = Float64Array.from(lp[kind]);
      const fd = finiteDifferences((x) => {
        const saved = lp[kind];
        lp[kind] = x as unknown as Float32Array; // the reference reads any ArrayLike<number>
        const l = referenceLoss(tiny, p, b.images, b.labels, N, ctx);
        lp[kind] = saved;
        return l;
      }, x64, 6, 99);
      const g = ref.grads[tw].get(layer)![kind === 'w' ? 'dw' : 'db'];
      fd.idx.forEach((j, i) => t.true(Math.abs(g[j]! - fd.grad[i]!) < 1e-7 + 1e-4 * Math.abs(g[j]!), `tower ${tw} ${layer} d${kind}[${j}]: ${g[j]} vs ${fd.grad[i]}`));
    }
  }
});
