/**
 * Synthetic batches (data/synthetic.ts) against the plain reference below (one Rng, drawn in order, a sine per
 * pixel and channel): the same bytes and labels made on this thread or by worker threads from jumped-ahead
 * generators, for every preset's image shape, uneven splits, and a shape whose images do not take an even
 * number of draws (the threads' generators then end elsewhere than expected and the batch is made in order).
 */
import test from 'ava';
import { Rng, cifar, paper, tiny, type ModelSpec } from '../src/index.js';
import { SyntheticBatches, synthesise, syntheticSeed, type SyntheticShape } from '../src/data/synthetic.js';

function reference(s: SyntheticShape, seed: number, step: number, n: number): { images: Uint8Array; labels: Uint32Array } {
  const { inputSize: S, inputChannels: C, classes } = s;
  const rng = new Rng(syntheticSeed(seed, step));
  const images = new Uint8Array(C * n * S * S);
  const labels = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const c = rng.int(classes);
    labels[i] = c;
    const theta = (Math.PI * (c % 8)) / 8;
    const period = 3 + 2 * ((c >> 3) % 4);
    const phase = rng.next() * 2 * Math.PI;
    const kx = (2 * Math.PI * Math.cos(theta)) / period;
    const ky = (2 * Math.PI * Math.sin(theta)) / period;
    for (let ch = 0; ch < C; ch++) {
      const gain = 30 + 30 * Math.cos(2 * Math.PI * ((c >> 5) * 0.37 + ch / C));
      const base = (ch * n + i) * S * S;
      for (let y = 0; y < S; y++) {
        for (let x = 0; x < S; x++) {
          const v = 128 + gain * Math.sin(kx * x + ky * y + phase) + 16 * rng.normal();
          images[base + y * S + x] = Math.max(0, Math.min(255, Math.round(v)));
        }
      }
    }
  }
  return { images, labels };
}

const same = (t: import('ava').ExecutionContext, got: { images: Uint8Array; labels: Uint32Array }, want: { images: Uint8Array; labels: Uint32Array }, what: string) => {
  t.deepEqual([...got.labels], [...want.labels], `${what}: labels`);
  t.true(Buffer.from(got.images).equals(Buffer.from(want.images)), `${what}: images`);
};

test('made on this thread: the reference bytes, for every preset', (t) => {
  for (const [spec, n] of [[tiny, 16], [cifar, 6], [paper, 1]] as [ModelSpec, number][]) same(t, synthesise(spec, 3, 7, n), reference(spec, 3, 7, n), spec.name);
});

test('made by worker threads from jumped-ahead generators: the same bytes, whatever the split', async (t) => {
  for (const threads of [2, 3]) {
    const b = new SyntheticBatches(cifar, 5, threads, 0);
    t.teardown(() => b.close());
    for (const step of [0, 9]) same(t, await b.batch(step, 10), reference(cifar, 5, step, 10), `${threads} threads, step ${step}`);
    t.is(b.redrawn, 0);
  }
  // a paper batch large enough for the default threshold
  const p = new SyntheticBatches(paper, 1, 2);
  t.teardown(() => p.close());
  same(t, await p.batch(4, 16), reference(paper, 1, 4, 16), 'paper, batch 16');
});

test('images that take an odd number of draws: the threads are found out of step, and the batch is made in order', async (t) => {
  const odd: SyntheticShape = { inputSize: 3, inputChannels: 1, classes: 4 };
  const b = new SyntheticBatches(odd, 2, 3, 0);
  t.teardown(() => b.close());
  same(t, await b.batch(1, 7), reference(odd, 2, 1, 7), 'odd draws');
  t.is(b.redrawn, 1);
});

test('a thread that dies: the threads end and the batches are made here, the same bytes; closing gives up a batch in the making', async (t) => {
  const b = new SyntheticBatches(cifar, 8, 2, 0);
  t.teardown(() => b.close());
  same(t, await b.batch(0, 6), reference(cifar, 8, 0, 6), 'threads up');
  const pool = (b as unknown as { pool: import('node:worker_threads').Worker[] }).pool;
  // one dies between batches: nothing may be sent to it any more
  await pool[0]!.terminate();
  t.is((b as unknown as { pool: unknown }).pool, null, 'the threads ended');
  same(t, await b.batch(1, 6), reference(cifar, 8, 1, 6), 'made here');
  t.is((b as unknown as { pool: unknown }).pool, null, 'not started again');
  // one dies while its part is being made: the batch is made here
  const d = new SyntheticBatches(cifar, 9, 2, 0);
  t.teardown(() => d.close());
  same(t, await d.batch(0, 6), reference(cifar, 9, 0, 6), 'threads up');
  const dying = d.batch(1, 600);
  void (d as unknown as { pool: import('node:worker_threads').Worker[] }).pool[1]!.terminate();
  same(t, await dying, reference(cifar, 9, 1, 600), 'a thread died during the batch');

  const c = new SyntheticBatches(cifar, 8, 2, 0);
  const given = c.batch(3, 6);
  c.close();
  await t.throwsAsync(given, { message: /closed/ });
  same(t, await c.batch(4, 6), reference(cifar, 8, 4, 6), 'started again after close');
  c.close();
});
