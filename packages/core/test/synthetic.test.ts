/**
 * Synthetic batches (data/synthetic.ts) against the plain reference below (one Rng, drawn in order, a sine per
 * pixel and channel, each pixel's noise the normal quantile of 12 bits of a draw, computed here rather than
 * looked up): the same bytes and labels made on this thread or by worker threads from jumped-ahead generators,
 * for every preset's image shape, uneven splits, and images of an odd number of pixels.
 */
import test from 'ava';
import { Rng, cifar, normalQuantile, paper, tiny, type ModelSpec } from '../src/index.js';
import { NOISE_STD, NOISE_TABLE, SyntheticBatches, synthesise, syntheticSeed, type SyntheticShape } from '../src/data/synthetic.js';

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
    // the image's noise: two 12-bit numbers a draw (its high 16 bits' top 12, then its low 16 bits' top 12)
    const bits: number[] = [];
    while (bits.length < C * S * S) {
      const u = rng.nextUint32();
      bits.push(Math.floor(u / 2 ** 20), Math.floor((u % 2 ** 16) / 2 ** 4));
    }
    for (let ch = 0; ch < C; ch++) {
      const gain = 30 + 30 * Math.cos(2 * Math.PI * ((c >> 5) * 0.37 + ch / C));
      const base = (ch * n + i) * S * S;
      for (let y = 0; y < S; y++) {
        for (let x = 0; x < S; x++) {
          const z = normalQuantile((bits[ch * S * S + y * S + x]! + 0.5) / 4096);
          images[base + y * S + x] = Math.max(0, Math.min(255, Math.floor(128.5 + gain * Math.sin(kx * x + ky * y + phase) + 16 * z)));
        }
      }
    }
  }
  return { images, labels };
}

test('the noise: 4,096 equally likely values of a normal of standard deviation 16, symmetric, none past 3.7 of it', (t) => {
  const mean = NOISE_TABLE.reduce((a, b) => a + b, 0) / NOISE_TABLE.length;
  const std = Math.sqrt(NOISE_TABLE.reduce((a, b) => a + (b - mean) ** 2, 0) / NOISE_TABLE.length);
  t.true(Math.abs(mean) < 1e-9, `mean ${mean}`);
  t.true(std > 0.995 * NOISE_STD && std < NOISE_STD, `standard deviation ${std}`);
  for (let k = 0; k < 2048; k++) t.true(Math.abs(NOISE_TABLE[k]! + NOISE_TABLE[4095 - k]!) < 1e-6, `entries ${k} and ${4095 - k}`);
  t.true(Math.max(...NOISE_TABLE.map(Math.abs)) < 3.7 * NOISE_STD);
  for (let k = 1; k < 4096; k++) t.true(NOISE_TABLE[k]! > NOISE_TABLE[k - 1]!);
});

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
  }
  // a paper batch large enough for the default threshold
  const p = new SyntheticBatches(paper, 1, 2);
  t.teardown(() => p.close());
  same(t, await p.batch(4, 16), reference(paper, 1, 4, 16), 'paper, batch 16');
});

test('images of an odd number of pixels (the last draw half used): the same bytes on threads as in order', async (t) => {
  const odd: SyntheticShape = { inputSize: 3, inputChannels: 1, classes: 4 };
  const b = new SyntheticBatches(odd, 2, 3, 0);
  t.teardown(() => b.close());
  same(t, await b.batch(1, 7), reference(odd, 2, 1, 7), 'odd pixels, 3 threads');
  same(t, synthesise(odd, 2, 1, 7), reference(odd, 2, 1, 7), 'odd pixels, in order');
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
