import test from 'ava';
import { GroupedTrainer } from '../src/train/grouped-trainer.js';
import { tiny } from '../src/model/presets.js';
import { topKCorrect } from '../src/train/metrics.js';
import { syntheticBatch } from './synthetic.js';
import { testBackend } from './helpers.js';

test('300 steps of the tiny preset drive the training loss well down and generalise to new images', async (t) => {
  const tr = await GroupedTrainer.create({ spec: tiny, backend: testBackend, batch: 16, seed: 1, hyper: { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 } });
  const data = Array.from({ length: 8 }, (_, i) => syntheticBatch(16, tiny.inputSize, 100 + i));
  const losses: number[] = [];
  for (let s = 0; s < 300; s++) losses.push((await tr.trainStep(data[s % 8]!)).loss);
  const first = losses.slice(0, 20).reduce((a, b) => a + b, 0) / 20;
  const lastL = losses.slice(-40).reduce((a, b) => a + b, 0) / 40;
  t.log(`mean loss, first 20 steps ${first.toFixed(3)}, last 40 steps ${lastL.toFixed(3)}`);
  t.true(first > 1.2, `starts high: ${first}`);
  // from about 1.8 (He init: chance is ln 4 = 1.39) to about 0.4: a net that learned, not one that stalled
  t.true(lastL < 0.6 && lastL < first / 3, `ends well below: ${lastL}`);
  const held = syntheticBatch(64, tiny.inputSize, 999);
  const logits = await tr.predict(held.images, 64);
  const correct = topKCorrect(logits, held.labels, tiny.classes, 1);
  t.log(`held-out accuracy ${correct}/64`);
  t.true(correct >= 48, `held-out accuracy ${correct}/64`);
  t.deepEqual(tr.executedModes(), [testBackend]);
  tr.destroy();
});
