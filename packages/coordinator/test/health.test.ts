/** The calls' deadlines (health.ts) and the options that set them (recovery-options.ts). */
import test from 'ava';
import { CallDeadlines } from '../src/health.js';
import { checkRecoveryArgs } from '../src/cli/recovery-options.js';
import { UserError } from '../src/cli/errors.js';

const args = (stepDeadline: number, waitForWorkers = 600) => ({ 'max-restarts': 3, 'wait-for-workers': waitForWorkers, 'step-deadline': stepDeadline });

test('a deadline is the larger of the floor and ten times the slowest call, the first of a kind left out, and never past the longest timer Node has', (t) => {
  const d = new CallDeadlines({ ...checkRecoveryArgs(args(2)) });
  t.is(d.next('step'), Math.max(d.o.firstMs, 2000), 'the first call: the allowance for compiling');
  d.observe('step', 50_000); // the first, compiling: not the pace
  d.observe('step', 300);
  t.is(d.next('step'), 3000);
  // the longest --step-deadline taken, with a slow call: capped at 2^31 - 1 ms (a longer timer fires at once)
  const long = new CallDeadlines(checkRecoveryArgs(args(2_000_000)));
  long.observe('step', 1);
  long.observe('step', 1e9);
  t.is(long.next('step'), 2 ** 31 - 1);
});

test('--step-deadline and --wait-for-workers past 2,000,000 s (a timer Node cannot hold) or not above 0 are one line', (t) => {
  for (const [a, line] of [
    [args(2_200_000), '--step-deadline must be > 0 and at most 2000000 seconds (23 days), got 2200000'],
    [args(0), '--step-deadline must be > 0 and at most 2000000 seconds (23 days), got 0'],
    [args(60, 3e6), '--wait-for-workers must be > 0 and at most 2000000 seconds (23 days), got 3000000'],
  ] as const) {
    const e = t.throws(() => checkRecoveryArgs(a), { instanceOf: UserError });
    t.is(e.message, line);
  }
});
