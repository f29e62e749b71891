/**
 * Tower.update(h, layers): a worker updates each segment's layers while the segment's input gradient
 * crosses, the first segment's last; the weights and momentum must be the same bits as one update(h)
 * of every layer at the end (the one-process trainer's order). And the weight gradients of a segment's
 * first layer computed after its input gradient (backwardSegmentOnDevice's weightsLater): the same bits.
 */
import test from 'ava';
import { tiny } from '../src/model/presets.js';
import { initTowerParams, type TowerParams } from '../src/model/params.js';
import type { SgdHyper } from '../src/kernels/sgd.js';
import { syntheticBatch } from './synthetic.js';
import { Device } from '../src/device.js';
import { testBackend, testDevice } from './helpers.js';
import { towersPass } from './two-towers.js';
import type { Tower } from '../src/tower/tower.js';

const N = 4;
const ctx = { seed: 7, step: 3, train: true };
const h: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.05, decayBiases: false };
const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
const params = (): [TowerParams, TowerParams] => [initTowerParams(tiny, 0, 11), initTowerParams(tiny, 1, 11)];

test('updating segment by segment, last first, gives every weight and momentum of one update at the end, bit for bit', async (t) => {
  // a device per tower, as the workers (and the one-process trainer) have
  const dev = [await testDevice(), await Device.create(testBackend, { onFallback: 'throw' })] as const;
  t.teardown(() => dev[1].destroy());
  const b = syntheticBatch(N, tiny.inputSize, 5);
  const whole = await towersPass(dev, tiny, params(), b.images, b.labels, ctx);
  await Promise.all(whole.towers.map((tower) => tower.update(h))); // as the one-process trainer does
  const want = await Promise.all(whole.towers.map((tower) => tower.syncParams()));
  const split = await towersPass(dev, tiny, params(), b.images, b.labels, ctx);
  let layers = 0;
  for (const tower of split.towers) {
    for (let i = tower.segments.length - 1; i > 0; i--) {
      const names = tower.paramLayers(i);
      layers += names.length;
      await tower.update(h, names);
    }
  }
  await Promise.all(split.towers.map((tower) => tower.update(h))); // the first segment's layers, the rest already done
  for (const tw of [0, 1] as const) {
    const [a, c] = [want[tw]!, await split.towers[tw].syncParams()];
    t.deepEqual([...c.keys()], [...a.keys()]);
    for (const [name, p] of a) {
      for (const k of ['w', 'b', 'vw', 'vb'] as const) t.deepEqual(bytes(c.get(name)![k]), bytes(p[k]), `tower ${tw} ${name}.${k}`);
    }
  }
  t.true(layers > 0, 'some layers were updated early');
  t.deepEqual(split.towers[1].paramLayers(split.towers[1].segments.length - 1), [], 'tower 1 has no classifier layers');
});

test('a layer is updated once a step: a second update(h, layers) of it is refused', async (t) => {
  const dev = await testDevice();
  const b = syntheticBatch(N, tiny.inputSize, 5);
  const pass = await towersPass(dev, tiny, params(), b.images, b.labels, ctx);
  const tower = pass.towers[0];
  const [first] = tower.paramLayers(tower.segments.length - 1);
  await tower.update(h, [first!]);
  await t.throwsAsync(tower.update(h, [first!]), { message: `${first} was updated already this step` });
});

/** A tower's gradients as bytes, dw then db, read one at a time. */
async function gradBytes(tower: Tower): Promise<Map<string, [Buffer, Buffer]>> {
  const out = new Map<string, [Buffer, Buffer]>();
  for (const [name, g] of tower.grads) {
    const p = tower.store.host.get(name)!;
    out.set(name, [bytes((await tower.device.toHost(g.dw, p.w.length)).slice()), bytes((await tower.device.toHost(g.db, p.b.length)).slice())]);
  }
  return out;
}

test('weight gradients computed after the input gradient (weightsLater): the same gradients, input gradients and updated weights, bit for bit', async (t) => {
  // devices of its own: the shared test device's step results are freed by the other tests' updates, which run meanwhile
  const dev = [await Device.create(testBackend, { onFallback: 'throw' }), await Device.create(testBackend, { onFallback: 'throw' })] as const;
  t.teardown(() => dev.forEach((d) => d.destroy()));
  const b = syntheticBatch(N, tiny.inputSize, 5);
  const want = await towersPass(dev, tiny, params(), b.images, b.labels, ctx);
  const wantGrads = [await gradBytes(want.towers[0]), await gradBytes(want.towers[1])];
  await Promise.all(want.towers.map((tower) => tower.update(h)));
  const later = await towersPass(dev, tiny, params(), b.images, b.labels, ctx, { weightsLater: true });
  t.is(later.loss, want.loss);
  for (const tw of [0, 1] as const) {
    const tower = later.towers[tw];
    const got = await gradBytes(tower);
    t.deepEqual([...got.keys()].sort(), [...wantGrads[tw]!.keys()].sort());
    for (const [name, g] of got) t.deepEqual(g, wantGrads[tw]!.get(name), `tower ${tw} ${name}: dw and db`);
  }
  await Promise.all(later.towers.map((tower) => tower.update(h)));
  for (const tw of [0, 1] as const) {
    const [a, c] = [await want.towers[tw].syncParams(), await later.towers[tw].syncParams()];
    for (const [name, p] of a) for (const k of ['w', 'b', 'vw', 'vb'] as const) t.deepEqual(bytes(c.get(name)![k]), bytes(p[k]), `tower ${tw} ${name}.${k}`);
  }
});
