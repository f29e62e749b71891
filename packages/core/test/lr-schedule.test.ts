import test from 'ava';
import { LrSchedule, parseLrSchedule } from '../src/train/lr-schedule.js';

test('a step schedule divides the rate by 10 at the given epochs', (t) => {
  const s = new LrSchedule(parseLrSchedule('steps:30,60,80', 0.01));
  t.deepEqual([0, 29, 30, 59, 60, 80, 89].map((e) => s.lr(e)), [0.01, 0.01, 0.001, 0.001, 0.0001, 0.00001, 0.00001].map((x) => x));
});

test('a plateau schedule divides by 10 when validation error stops improving, at most 3 times, and its state survives a checkpoint', (t) => {
  const s = new LrSchedule(parseLrSchedule('plateau:2', 0.01));
  const drops = [0.5, 0.4, 0.4, 0.41, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3].map((e) => s.observe(e));
  t.deepEqual(drops.map((d, i) => (d ? i : -1)).filter((i) => i >= 0), [3, 6, 8]);
  t.true(Math.abs(s.lr(99) - 0.00001) < 1e-12);
  const restored = new LrSchedule(s.spec, JSON.parse(JSON.stringify(s.state)));
  t.is(restored.lr(0), s.lr(0));
  t.false(restored.observe(0.3), 'no fourth drop');
});

test('a malformed schedule is a clear error', (t) => {
  t.throws(() => parseLrSchedule('steps:a,b', 0.01), { message: /positive whole epochs/ });
  t.throws(() => parseLrSchedule('cosine', 0.01), { message: /must be "steps:E1,E2,\.\.\." or "plateau/ });
  t.throws(() => parseLrSchedule('steps:', 0.01), { message: /positive whole epochs/ });
  t.throws(() => parseLrSchedule('steps:5,3,3', 0.01), { message: '--lr-schedule steps:5,3,3: epoch 3 is listed twice (each epoch listed divides the rate by 10 once)' });
  t.throws(() => parseLrSchedule('plateau:0', 0.01), { message: /PATIENCE is a whole number of evaluations >= 1 .* got "plateau:0"/ });
  // unsorted epochs are taken in order
  t.deepEqual(parseLrSchedule('steps:18,14', 0.01), { kind: 'steps', base: 0.01, epochs: [14, 18] });
});
