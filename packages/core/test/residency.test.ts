import test from 'ava';
import { GroupedTrainer } from '../src/train/grouped-trainer.js';
import { paper, tiny } from '../src/model/presets.js';
import { syntheticBatch } from './synthetic.js';
import { testBackend } from './helpers.js';

// webasm and cpu compute in host memory, so there is nothing to count there: this runs on webgpu (the device checks).
// The paper preset too: fc6 (18.9 M weights per tower, past 2^24) and its update stay on the device.
for (const [spec, batch] of [[tiny, 8], [paper, 2]] as const) {
  (testBackend === 'webgpu' ? test : test.skip)(`${spec.name} preset: between two crossings a tower's work stays on the device: the only read-backs are the crossing tensors and the loss`, async (t) => {
    const tr = await GroupedTrainer.create({ spec, backend: testBackend, batch, seed: 3 });
    t.teardown(() => tr.destroy());
    t.true(tr.device.resident);
    const b = syntheticBatch(batch, spec.inputSize, 4);
    await tr.trainStep(b);
    const before = tr.devices.map((d) => d.readbacks);
    await tr.trainStep(b);
    const per = tr.devices.map((d, i) => d.readbacks - before[i]!);
    // tower 0: 5 segment outputs, 4 input gradients, the losses and the logits; tower 1: 4 outputs, 3 gradients
    t.deepEqual(per, [11, 7]);
  });
}

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
