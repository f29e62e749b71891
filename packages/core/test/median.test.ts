/** median.ts: the one median of the project (summaries, benchmarks, colour scores). */
import test from 'ava';
import { median } from '../src/median.js';

test('the middle value, the mean of the two middle ones for an even count, 0 for none; the input left as it was', (t) => {
  t.is(median([5, 1, 3]), 3);
  t.is(median([4, 1, 3, 2]), 2.5);
  t.is(median(Float32Array.of(7)), 7);
  t.is(median([]), 0);
  t.is(median([10, 2, 33]), 10, 'sorted as numbers, not as strings');
  const xs = [3, 1, 2];
  median(xs);
  t.deepEqual(xs, [3, 1, 2]);
});
