/** The dashboard's smoothing (public/smooth.js, a browser script run here in a context of its own): TensorBoard's debiased moving average. */
import test from 'ava';
import fs from 'node:fs';
import vm from 'node:vm';

const source = fs.readFileSync(new URL('../src/dashboard/public/smooth.js', import.meta.url), 'utf8');
const context: { smoothSeries?: (ys: (number | null)[], w: number) => (number | null)[] } = {};
vm.runInNewContext(source, Object.assign(context, { globalThis: context }));
const smooth = context.smoothSeries!;

test('weight 0 leaves a series as it is; the first smoothed value is the first raw one (debiased)', (t) => {
  t.deepEqual(smooth([3, 1, null, 2], 0), [3, 1, null, 2]);
  t.is(smooth([5, 7], 0.9)[0], 5);
});

test('the average by hand: gaps stay gaps and do not move it; a constant stays constant', (t) => {
  const out = smooth([1, null, 3, 5], 0.5);
  // m1 = 0.5, m2 = 0.25 + 1.5 = 1.75, m3 = 0.875 + 2.5 = 3.375; debiased by 1 - 0.5^n
  t.deepEqual(out, [1, null, 1.75 / 0.75, 3.375 / 0.875]);
  t.true(smooth([2, 2, 2, 2, 2], 0.99).every((y) => Math.abs(y! - 2) < 1e-12));
});
