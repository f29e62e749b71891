import test from 'ava';
import { GroupedTrainer } from '../src/train/grouped-trainer.js';
import { paper, tiny } from '../src/model/presets.js';
import { syntheticBatch } from './synthetic.js';
import { testBackend } from './helpers.js';
import { towersPass } from './two-towers.js';
import { Device } from '../src/device.js';
import { initTowerParams, type TowerParams } from '../src/model/params.js';
import { paperSgd } from '../src/kernels/sgd.js';
import type { Tower } from '../src/tower/tower.js';

// webasm and cpu compute in host memory, so there is nothing to count there: this runs on webgpu (the device checks).
// The paper preset too: fc6 (18.9 M weights per tower, past 2^24) and its update stay on the device.
for (const [spec, batch] of [[tiny, 8], [paper, 2]] as const) {
  (testBackend === 'webgpu' ? test : test.skip)(`${spec.name} preset: between two crossings a tower's work stays on the device: the only read-backs are the crossing tensors and the loss`, async (t) => {
    // the towers driven as the workers drive them, every crossing tensor through the host
    const devices = [await Device.create(testBackend), await Device.create(testBackend)] as const;
    t.teardown(() => devices.forEach((d) => d.destroy()));
    const params = [initTowerParams(spec, 0, 3), initTowerParams(spec, 1, 3)] as [TowerParams, TowerParams];
    const b = syntheticBatch(batch, spec.inputSize, 4);
    const ctx = { seed: 3, step: 0, train: true };
    // a first pass puts the parameters on the device; the second is counted
    const { towers } = await towersPass(devices, spec, params, b.images, b.labels, ctx);
    const before = devices.map((d) => [d.readbacks, d.uploads]);
    await towersPass(devices, spec, towers, b.images, b.labels, ctx);
    const per = devices.map((d, i) => d.readbacks - before[i]![0]!);
    // tower 0: 5 segment outputs, 4 input gradients, the losses and the logits; tower 1: 4 outputs, 3 gradients
    t.deepEqual(per, [11, 7]);
    // each segment's input (tower 0: the images and 4 joined outputs; tower 1: the images and 3) and 4 output gradients
    t.deepEqual(devices.map((d, i) => d.uploads - before[i]![1]!), [9, 8]);
  });

  (testBackend === 'webgpu' ? test : test.skip)(`${spec.name} preset: the one-process trainer on a GPU reads back its losses and logits only (its crossings stay on the device)`, async (t) => {
    const tr = await GroupedTrainer.create({ spec, backend: testBackend, batch, seed: 3 });
    t.teardown(() => tr.destroy());
    t.true(tr.device.resident);
    const b = syntheticBatch(batch, spec.inputSize, 4);
    await tr.trainStep(b);
    const before = tr.devices.map((d) => [d.readbacks, d.uploads]);
    await tr.trainStep(b);
    t.deepEqual(tr.devices.map((d, i) => d.readbacks - before[i]![0]!), [2, 0]);
    // the images, once
    t.deepEqual(tr.devices.map((d, i) => d.uploads - before[i]![1]!), [1, 0]);
  });
}

test(`three steps of the one-process trainer (${testBackend}${testBackend === 'webgpu' ? ', crossings on the device' : ''}) give the losses and weights of the towers driven with every crossing through the host, bit for bit`, async (t) => {
  const spec = tiny;
  const batch = 8;
  const h = paperSgd;
  const params = () => [initTowerParams(spec, 0, 5), initTowerParams(spec, 1, 5)] as [TowerParams, TowerParams];
  const b = syntheticBatch(batch, spec.inputSize, 6);
  const tr = await GroupedTrainer.create({ spec, backend: testBackend, batch, seed: 5, params: params(), hyper: h });
  t.teardown(() => tr.destroy());
  const devices = [await Device.create(testBackend), await Device.create(testBackend)] as const;
  t.teardown(() => devices.forEach((d) => d.destroy()));
  // the same steps, dropout on, seed 5; three, so that the updates' two kernels that take turns (sgd.ts) both run
  let towers: Parameters<typeof towersPass>[2] = params();
  for (let step = 0; step < 3; step++) {
    const r = await tr.trainStep(b);
    const host = await towersPass(devices, spec, towers, b.images, b.labels, { seed: 5, step, train: true });
    t.is(Math.fround(r.loss), Math.fround(host.loss), `step ${step}`);
    await Promise.all(host.towers.map((tw) => tw.update(h)));
    towers = host.towers;
  }
  const mine = await tr.syncParams();
  for (const k of [0, 1] as const) {
    const theirs = await (towers as readonly [Tower, Tower])[k].syncParams();
    for (const [name, p] of mine[k]) {
      const q = theirs.get(name)!;
      t.deepEqual([name, k, p.w.every((v, i) => Object.is(v, q.w[i])), p.b.every((v, i) => Object.is(v, q.b[i]))], [name, k, true, true]);
    }
  }
});

test('syncParams gives host arrays that are the parameters the trainer steps with', async (t) => {
  const tr = await GroupedTrainer.create({ spec: tiny, backend: testBackend, batch: 8, seed: 3 });
  t.teardown(() => tr.destroy());
  const before = Float32Array.from((await tr.syncParams())[0].get('conv1')!.w);
  await tr.trainStep(syntheticBatch(8, tiny.inputSize, 4));
  const params = await tr.syncParams();
  const w = params[0].get('conv1')!.w;
  t.true(w instanceof Float32Array);
  t.is(w.length, before.length);
  t.true(w.some((v, i) => v !== before[i]), 'a step moved conv1');
});
