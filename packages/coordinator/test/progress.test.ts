/** progress.ts: the bar a person sees on a terminal, and plain lines elsewhere. */
import test from 'ava';
import { PassThrough } from 'node:stream';
import type { StepMetrics } from '../src/coordinator.js';
import { Progress, shortDuration } from '../src/progress.js';

const step = (n: number, loss: number): StepMetrics => ({
  event: 'step', step: n, lr: 0.01, loss, top1_error: 0.5, top5_error: 0.1, batch: 64, micro_batches: 1, ms: 4000, images_per_s: 16, crossing_bytes: 0, workers: [], traffic: [],
});

/** A stand-in terminal: what the bar writes, escape codes taken out. */
function terminal(): { stream: PassThrough; text: () => string } {
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 120 });
  let out = '';
  stream.on('data', (d: Buffer) => (out += d.toString()));
  // eslint-disable-next-line no-control-regex
  return { stream, text: () => out.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '') };
}

test('on a terminal: the step of the run (a resumed one starts part way), images/s, the mean loss of the last ten steps; notes above the bar', async (t) => {
  const term = terminal();
  const info: string[] = [];
  const p = new Progress({ total: 100, start: 40, batch: 64, info: (l) => info.push(l), bar: true, stream: term.stream });
  for (let s = 40; s < 52; s++) p.step(step(s, s < 42 ? 9 : 1)); // the last ten: all 1.0
  p.note('checkpoint runs/x/checkpoints/step-000000052.safetensors');
  p.stop();
  p.stop();
  await new Promise((r) => setImmediate(r));
  const text = term.text();
  t.regex(text, /step 52\/100 \[[^\]]*\] 52% \| 16\.0 images\/s \| loss 1\.000 \| ETA/);
  t.regex(text, /checkpoint runs\/x\/checkpoints\/step-000000052\.safetensors\n/);
  t.deepEqual(info, [], 'nothing through info while the bar is up');
  p.note('after the bar');
  t.deepEqual(info, ['after the bar']);
});

test('not on a terminal: no bar, notes as plain lines', (t) => {
  const term = terminal();
  const info: string[] = [];
  const p = new Progress({ total: 10, start: 0, batch: 8, info: (l) => info.push(l), bar: false, stream: term.stream, wordsEveryMs: 0 });
  p.step(step(0, 2));
  p.note('evaluation after step 1');
  p.stop();
  t.deepEqual(info, ['evaluation after step 1']);
  t.is(term.text(), '');
});

test('not on a terminal: where the run stands, in words, at most every wordsEveryMs', (t) => {
  const info: string[] = [];
  let clock = 0;
  // a resumed run at step 40 of 1000, a step every 2 s
  const p = new Progress({ total: 1000, start: 40, batch: 64, info: (l) => info.push(l), bar: false, wordsEveryMs: 30_000, now: () => clock });
  for (let s = 40; s < 70; s++) {
    clock += 2000;
    p.step(step(s, s < 60 ? 9 : 1));
  }
  // 30 s in: step 55; 60 s in: step 70 (the last ten losses all 1)
  t.deepEqual(info, ['step 55 of 1000: 16.0 images/s, loss 9.000 (the last 10 steps), about 31m 30s left', 'step 70 of 1000: 16.0 images/s, loss 1.000 (the last 10 steps), about 31m 00s left']);
  const last = new Progress({ total: 3, start: 0, batch: 8, info: (l) => info.push(l), bar: false, wordsEveryMs: 1, now: () => (clock += 5) });
  last.step(step(2, 0.5));
  t.is(info.at(-1), 'step 3 of 3: 16.0 images/s, loss 0.500 (the last 1 step)', 'no time left at the last step');
  t.is(shortDuration(7 * 3600 + 5 * 60 + 9), '7h 05m');
  t.is(shortDuration(59.6), '1m 00s');
});

