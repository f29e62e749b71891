/**
 * nearestRows (inspect/neighbours.ts), the search under `inspect neighbours`: the nearest rows in order, the
 * query's own row left out, and how far the search is heard after each batch (the command says it every 10 s).
 */
import test from 'ava';
import { nearestRows } from '../src/inspect/neighbours.js';

async function* batches(rows: number[][], per: number) {
  for (let i = 0; i < rows.length; i += per) {
    const part = rows.slice(i, i + per);
    yield { n: part.length, indices: part.map((_, j) => i + j), rows: Float32Array.from(part.flat()), labels: part.map((_, j) => (i + j) % 3) };
  }
}

test('the nearest rows, nearest first, the excluded one left out; the images searched heard before each batch', async (t) => {
  // rows at distance |i - 4.2| from the query [4.2] in one dimension
  const rows = Array.from({ length: 10 }, (_, i) => [i]);
  const heard: number[] = [];
  const { found, searched } = await nearestRows(batches(rows, 3), 1, { query: Float32Array.of(4.2), exclude: 4, count: 3 }, (n) => heard.push(n));
  t.deepEqual(found.map((f) => f.index), [5, 3, 6]);
  t.deepEqual(found.map((f) => f.label), [2, 0, 0]);
  t.is(searched, 9);
  // four batches (3, 3, 3, 1 rows): heard before each, the excluded row not counted
  t.deepEqual(heard, [0, 3, 5, 8]);
});
