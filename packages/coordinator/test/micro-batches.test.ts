/** The automatic choice of micro-batches a step (micro-batches.ts), on made-up step timings. */
import test from 'ava';
import { MicroBatchChoice, candidateMicroBatches } from '../src/micro-batches.js';

/** A step of `ms` whose workers waited `share` of it on the exchange. */
const step = (ms: number, share: number) => ({ ms, workers: [0, 1].map(() => ({ total_ms: ms, exchange_ms: share * ms })) });

test('the candidate follows the exchange share, divides the batch and leaves micro-batches of 4 images or more', (t) => {
  t.is(candidateMicroBatches(64, 0.1), 1);
  t.is(candidateMicroBatches(64, 0.2), 2);
  t.is(candidateMicroBatches(64, 0.5), 4);
  t.is(candidateMicroBatches(12, 0.5), 3, 'the largest divisor up to 4');
  t.is(candidateMicroBatches(6, 0.5), 1, 'no micro-batch of 4 images fits 6 in two or more');
  t.is(candidateMicroBatches(10, 0.5), 2);
});

test('auto: a small exchange share keeps 1; a large one tries the candidate and keeps it only when measured faster', (t) => {
  const lines: string[] = [];
  const run = (shares: number, wholeMs: number, trialMs: number) => {
    const c = new MicroBatchChoice(32, undefined, (l) => lines.push(l));
    const ns: number[] = [];
    for (let s = 0; s < 8; s++) {
      ns.push(c.next);
      c.observe(step(c.next === 1 ? wholeMs : trialMs, shares));
    }
    return { ns, settled: c.settled };
  };
  t.deepEqual(run(0.1, 100, 50), { ns: [1, 1, 1, 1, 1, 1, 1, 1], settled: true });
  t.regex(lines.pop()!, /^micro-batches: 1 \(the workers wait on the exchange 10% of their step, under 15%\)$/);
  // step 0 compiles, 1-2 measured at 1; 3 compiles the micro-batches' kernels, 4-5 measured; then settled
  t.deepEqual(run(0.5, 100, 80), { ns: [1, 1, 1, 4, 4, 4, 4, 4], settled: true });
  t.deepEqual(lines.slice(-2), ['micro-batches: trying 4 (the workers wait on the exchange 50% of their step at 1, 100 ms a step)', 'micro-batches: 4 (4 micro-batches take 80 ms a step, the whole batch 100 ms)']);
  t.deepEqual(run(0.2, 100, 120), { ns: [1, 1, 1, 2, 2, 2, 1, 1], settled: true });
  t.is(lines.pop(), 'micro-batches: 1 (2 micro-batches take 120 ms a step, the whole batch 100 ms)');
});

test('a forced count is kept and checked against the batch; a worker without micro-batches makes auto 1 and a forced N > 1 a user error', (t) => {
  const c = new MicroBatchChoice(32, 4);
  c.observe(step(100, 0.9));
  t.true(c.settled);
  t.is(c.next, 4);
  t.is(c.configured, 4);
  t.throws(() => new MicroBatchChoice(32, 3), { name: 'UserError', message: '--micro-batches 3: 3 micro-batches do not divide the batch of 32 images (divisors: 1, 2, 4, 8, 16, 32)' });
  t.throws(() => new MicroBatchChoice(32, 0), { message: /--micro-batches 0: 0 micro-batches: give a whole number >= 1/ });
  const lines: string[] = [];
  const a = new MicroBatchChoice(32, undefined, (l) => lines.push(l));
  t.is(a.configured, 0);
  a.checkWorker(['exchange-stream', 'micro-batches'], 'worker 0');
  t.false(a.settled);
  a.checkWorker(['exchange-stream'], 'worker 1 (tower 1) at h:1');
  t.true(a.settled);
  t.is(a.next, 1);
  t.deepEqual(lines, ['micro-batches: 1 (worker 1 (tower 1) at h:1 is an older build without micro-batches)']);
  t.throws(() => new MicroBatchChoice(32, 2).checkWorker([], 'worker 1 (tower 1) at h:1'), {
    name: 'UserError',
    message: 'worker 1 (tower 1) at h:1 takes no micro-batches (an older build): update it, or give --micro-batches 1',
  });
  t.notThrows(() => new MicroBatchChoice(32, 1).checkWorker([], 'worker 1'));
});
