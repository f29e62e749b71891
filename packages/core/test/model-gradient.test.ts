import test from 'ava';
import { tiny } from '../src/model/presets.js';
import { initTowerParams, type TowerParams } from '../src/model/params.js';
import { referenceLoss, referenceStep } from '../src/reference/grouped-model.js';
import { syntheticBatch } from './synthetic.js';
import { assertClose, finiteDifferences, testDevice } from './helpers.js';
import { towersPass } from './two-towers.js';

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
  const pass = await towersPass(dev, tiny, p, b.images, b.labels, ctx);
  t.true(Math.abs(pass.loss - ref.loss) < 1e-5);
  for (const tw of [0, 1] as const) {
    for (const [name, want] of ref.grads[tw]) {
      const got = pass.grads[tw].get(name)!;
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
