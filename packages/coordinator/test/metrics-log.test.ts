/** metrics-log.ts: the JSON lines of a run, with a step's per-crossing traffic written only when it changes. */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StepMetrics } from '../src/coordinator.js';
import { MetricsLog, summarise } from '../src/metrics-log.js';
import { runDirError } from '../src/run-files.js';
import { StepTally, shortStepsNote } from '../src/step-tally.js';

test("a step line carries the per-crossing traffic the first time and when it changes; observers get every event whole", (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-metrics-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out: string[] = [];
  const seen: object[] = [];
  const log = new MetricsLog(dir, (l) => out.push(l));
  log.observe((e) => seen.push(e));
  const a = [[{ point: 'pool2', forward_sent_bytes: 8 }]];
  const b = [[{ point: 'pool2', forward_sent_bytes: 16 }]];
  const steps = [
    { event: 'step', step: 0, loss: 2, traffic: a },
    { event: 'step', step: 1, loss: 1.9, traffic: a },
    { event: 'eval', step: 2, loss: 1.8 },
    { event: 'step', step: 2, loss: 1.8, traffic: b },
    { event: 'step', step: 3, loss: 1.7, traffic: b },
  ];
  for (const e of steps) log.write(e);
  const lines = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; traffic?: unknown });
  t.deepEqual(lines.map((l) => l.traffic ?? null), [a, null, null, b, null]);
  t.deepEqual(lines.map((l) => l.step), [0, 1, 2, 2, 3]);
  t.deepEqual(out.map((l) => JSON.parse(l) as object), lines);
  t.regex((lines[2] as { time?: string }).time ?? '', /^\d{4}-/, 'the eval line says when');
  t.deepEqual(seen, steps, 'observers (the dashboard) get the traffic of every step');
});

test('every line but a step\'s and the run\'s says when it was written', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-metrics-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const log = new MetricsLog(dir, () => {});
  const before = Date.now();
  for (const e of [{ event: 'run', started: 'x' }, { event: 'step', step: 0 }, { event: 'checkpoint', step: 1, file: 'f' }, { event: 'restart', restart: 1 }, { event: 'eval', step: 1 }]) log.write(e);
  const after = Date.now();
  const lines = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; time?: string });
  t.deepEqual(lines.map((l) => l.time === undefined), [true, true, false, false, false]);
  for (const l of lines.filter((x) => x.time !== undefined)) {
    t.regex(l.time!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const ms = Date.parse(l.time!);
    t.true(ms >= before - 1 && ms <= after + 1, `${l.event} at ${l.time}`);
  }
});

test("the end-of-run summary leaves out step 0 (kernel compilation) and takes the true median of the rest", (t) => {
  const worker = (tower: number, total: number, exchange: number, hidden: number) => ({
    tower, total_ms: total, compute_ms: total - exchange, exchange_ms: exchange, update_ms: 0, exchange_hidden_ms: hidden,
    sent_bytes: 0, received_bytes: 0, messages_sent: 0, messages_received: 0,
  });
  const step = (n: number, ms: number, loss: number): StepMetrics => ({
    event: 'step', step: n, lr: 0.01, loss, top1_error: 0.5, top5_error: 0.1, batch: 64, micro_batches: 1, ms, images_per_s: 64000 / ms,
    crossing_bytes: 4096, workers: [worker(0, ms, ms / 4, ms / 8), worker(1, ms, 0, ms / 2)], traffic: [],
  });
  // step 0 compiles (60 s); the rest: 1000, 4000, 2000, 3000 ms, whose median is 2500 ms
  const steps = [step(0, 60_000, 3), step(1, 1000, 2), step(2, 4000, 2), step(3, 2000, 1), step(4, 3000, 1)];
  const done = summarise(steps, 70_000);
  t.is(done.steps, 5);
  t.is(done.median_step_ms, 2500);
  t.is(done.images_per_s, (64 / 2500) * 1000);
  t.deepEqual(done.exchange_share, [0.25, 0]);
  t.deepEqual(done.exchange_hidden_share, [0.125, 0.5], 'the share of the step time the exchange was hidden behind compute, per worker');
  t.is(done.crossing_bytes_per_step, 4096);
  t.is(done.loss_last, 1.8, 'loss_last: the mean over the last ten steps (all five here)');
  t.is(done.top1_error_last, 0.5, 'top1_error_last: the training top-1 error over the same steps');
  t.is(done.eval_last, null);
});

test('the tally of a run of many steps keeps numbers, not metrics objects; a restart drops the steps it does again', (t) => {
  const worker = (tower: number, total: number, exchange: number) => ({
    tower, total_ms: total, compute_ms: total - exchange, exchange_ms: exchange, update_ms: 0, exchange_hidden_ms: 0,
    sent_bytes: 0, received_bytes: 0, messages_sent: 0, messages_received: 0,
  });
  const step = (n: number, ms: number, loss: number): StepMetrics => ({
    event: 'step', step: n, lr: 0.01, loss, top1_error: 0.25, top5_error: 0, batch: 16, micro_batches: 1, ms, images_per_s: 16000 / ms,
    crossing_bytes: 100, workers: [worker(0, ms, ms / 2), worker(1, ms, 0)], traffic: [],
  });
  const tally = new StepTally();
  // resumed at step 100; steps 100..199, then a restart back to the checkpoint at 150 and 150..199 done again, slower
  for (let s = 100; s < 200; s++) tally.add(step(s, 10, 1));
  tally.dropFrom(150);
  t.is(tally.count, 50);
  for (let s = 150; s < 200; s++) tally.add(step(s, 30, 0.5));
  const done = tally.summary(1000);
  t.is(done.steps, 100);
  t.is(done.median_step_ms, 30, 'steps 101..199: 49 of 10 ms, 50 of 30 ms');
  t.is(done.loss_last, 0.5);
  t.deepEqual(done.exchange_share, [0.5, 0]);
  // the same as the summary of the metrics objects of the steps that count
  const counted = [...Array.from({ length: 50 }, (_, i) => step(100 + i, 10, 1)), ...Array.from({ length: 50 }, (_, i) => step(150 + i, 30, 0.5))];
  t.deepEqual(summarise(counted, 1000), done);
  // a growing run: 100,000 steps in columns of numbers
  const big = new StepTally();
  for (let s = 0; s < 100_000; s++) big.add(step(s, 5 + (s % 3), 1));
  t.is(big.summary(1).median_step_ms, 6);
});

test('the closing line notes that short steps wait mostly on the crossings\' latency, only when they do', (t) => {
  t.regex(shortStepsNote(34, [0.45, 0.4]), /^ \(steps of 34 ms spend their wait mostly on the crossings' latency, not their bytes: a larger --batch or model waits a smaller share\)$/);
  t.is(shortStepsNote(34, [0.1, 0.2]), '');
  t.is(shortStepsNote(1200, [0.4, 0.4]), '');
  t.is(shortStepsNote(Number.NaN, [0.4, 0.4]), '');
});

test('a full disk is said with what to do: --resume where the run has a checkpoint, else start it again', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-full-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  const file = path.join(dir, 'metrics.jsonl');
  t.regex(runDirError(file, full).message, /no space left .*\(the run has no checkpoint yet: free space, then start it again\)$/);
  fs.mkdirSync(path.join(dir, 'checkpoints'));
  fs.writeFileSync(path.join(dir, 'checkpoints', 'step-000000004.safetensors'), 'x');
  t.regex(runDirError(file, full).message, /\(the checkpoints already written are intact; free space, then --resume\)$/);
  const readOnly = Object.assign(new Error('EROFS: read-only file system, write'), { code: 'EROFS' });
  t.notRegex(runDirError(file, readOnly).message, /free space/);
});
