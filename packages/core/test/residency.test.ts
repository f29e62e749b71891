import test from 'ava';
import { GroupedTrainer } from '../src/train/grouped-trainer.js';
import { tiny } from '../src/model/presets.js';
import { syntheticBatch } from './synthetic.js';
import { testBackend } from './helpers.js';

test('between two crossings a tower\'s work stays on the device: the only read-backs are the crossing tensors and the loss', async (t) => {
  const tr = await GroupedTrainer.create({ spec: tiny, backend: testBackend, batch: 8, seed: 3 });
  const b = syntheticBatch(8, tiny.inputSize, 4);
  await tr.trainStep(b);
  const before = tr.devices.map((d) => d.readbacks);
  await tr.trainStep(b);
  const per = tr.devices.map((d, i) => d.readbacks - before[i]!);
  if (tr.device.resident) {
    // tower 0: 5 segment outputs, 4 input gradients, the losses and the logits; tower 1: 4 outputs, 3 gradients
    t.deepEqual(per, [11, 7]);
  } else {
    // webasm and cpu compute in host memory: nothing to read back
    t.false(tr.device.resident);
    t.deepEqual(per, [0, 0]);
  }
  const params = await tr.syncParams();
  t.true(params[0].get('conv1')!.w instanceof Float32Array);
  tr.destroy();
});
