/**
 * A training step cut into micro-batches (tower/micro-batch.ts, tower/grad-sum.ts; the worker's pipeline.ts):
 * the slicing of [channel][image] tensors, the dropout masks of a micro-batch's Tower (its columns of the whole
 * batch's, bit for bit), the gradient sum's kernel against the host sum, and both towers' gradients of a step
 * run in micro-batches against the whole batch's.
 */
import test from 'ava';
import { tiny } from '../src/model/presets.js';
import { initTowerParams } from '../src/model/params.js';
import { Tower } from '../src/tower/tower.js';
import { concatTowers, sumSlices, towerSlice } from '../src/tower/crossing.js';
import { DropoutMasks } from '../src/tower/simple-layers.js';
import { divisors, microBatchProblem, microSlice, scaled } from '../src/tower/micro-batch.js';
import { AddKernel, GradientSum, addOnHost } from '../src/tower/grad-sum.js';
import { syntheticBatch } from './synthetic.js';
import { host, randomArray, scaledError, testDevice } from './helpers.js';
import { towersPass } from './two-towers.js';

const ctx = { seed: 7, step: 2, train: true };

/** The micro-batches' parts of a tensor (each `channels` blocks of the same number of images), joined in order. */
function joinParts(parts: readonly Float32Array[], channels: number): Float32Array {
  const size = parts[0]!.length / channels;
  const out = new Float32Array(size * channels * parts.length);
  for (let c = 0; c < channels; c++) {
    for (let k = 0; k < parts.length; k++) out.set(parts[k]!.subarray(c * size, (c + 1) * size), (c * parts.length + k) * size);
  }
  return out;
}

test('micro-batches: the count must divide the batch; slices of [channel][image] join back to the whole', (t) => {
  t.is(microBatchProblem(32, 4), null);
  t.is(microBatchProblem(32, 1), null);
  t.regex(microBatchProblem(32, 3)!, /3 micro-batches do not divide the batch of 32 images \(divisors: 1, 2, 4, 8, 16, 32\)/);
  t.regex(microBatchProblem(32, 0)!, /give a whole number >= 1/);
  t.regex(microBatchProblem(32, -2)!, /give a whole number >= 1/);
  t.regex(microBatchProblem(4, 8)!, /more than the batch of 4/);
  t.deepEqual(divisors(12), [1, 2, 3, 4, 6, 12]);
  // 3 channels x 6 images x 2 floats each, the value naming its place
  const x = Float32Array.from({ length: 36 }, (_, i) => i);
  const parts = [0, 2, 4].map((at) => microSlice(x, 3, 6, at, 2));
  t.deepEqual([...parts[1]!], [4, 5, 6, 7, 16, 17, 18, 19, 28, 29, 30, 31]);
  t.deepEqual([...joinParts(parts, 3)], [...x]);
  t.deepEqual([...scaled(Float32Array.of(1, -2), 0.25)], [0.25, -0.5]);
  t.throws(() => microSlice(x, 3, 6, 5, 2), { message: /images 5..6/ });
});

test("a micro-batch's dropout masks are its columns of the whole batch's, bit for bit", (t) => {
  const units = 16;
  const B = 12;
  const whole = new DropoutMasks(0.5, units * B, 5, 1).of(ctx)!;
  const parts = [0, 4, 8].map((at) => new DropoutMasks(0.5, units * 4, 5, 1, { of: B, at, batch: 4 }).of(ctx)!);
  t.deepEqual(Buffer.from(joinParts(parts, units).buffer), Buffer.from(whole.buffer));
  t.true(whole.some((v) => v === 0) && whole.some((v) => v !== 0), 'some units dropped, some kept');
});

test('the gradient sum: the kernel adds as the host does', async (t) => {
  const dev = await testDevice();
  const [a, b, c] = [randomArray(1000, 1), randomArray(1000, 2), randomArray(1000, 3)];
  const k = new AddKernel(dev, 1000);
  const got = await host(await k.run(await k.run(a, b), c));
  const want = new Float32Array(1000);
  addOnHost(want, [a, b, c]);
  t.deepEqual(Array.from(got), [...want]);
});

/** Both towers' step in `count` micro-batches, as the workers run it; the summed gradients left in `into`'s. */
async function microStep(count: number, into: readonly [Tower, Tower], images: Float32Array, labels: Float32Array) {
  const dev = await testDevice();
  const B = labels.length;
  const n = B / count;
  const ks = [...Array(count).keys()];
  const mt = ks.map((k) => [0, 1].map((tw) => new Tower(dev, tiny, tw as 0 | 1, n, into[tw]!.store, { of: B, at: k * n })) as [Tower, Tower]);
  const last = mt[0]![0].segments.length - 1;
  const losses: number[] = [];
  for (const k of ks) {
    const x = microSlice(images, 3, B, k * n, n);
    let outs: Float32Array[] = [x, x];
    for (let i = 0; i <= last; i++) {
      const input = i === 0 ? x : concatTowers(outs[0]!, outs[1]!);
      outs = await Promise.all(mt[k]!.map((tw) => (tw.runs(i) ? tw.forwardSegment(i, input, ctx) : new Float32Array(0))));
    }
    const l = await mt[k]![0].lossAndGradient(labels.subarray(k * n, (k + 1) * n));
    losses.push(...l.losses);
    const dIn = (await mt[k]![0].backwardSegment(last, scaled(await dev.toHost(l.dlogits), 1 / count)))!;
    let d = [towerSlice(dIn, 0), towerSlice(dIn, 1)];
    for (let i = last - 1; i >= 0; i--) {
      const g = [await mt[k]![0].backwardSegment(i, d[0]!), await mt[k]![1].backwardSegment(i, d[1]!)];
      if (i > 0) d = [0, 1].map((s) => sumSlices(towerSlice(g[0]!, s as 0 | 1), towerSlice(g[1]!, s as 0 | 1)));
    }
  }
  const sum = new GradientSum(dev);
  for (const tw of [0, 1] as const) await sum.sum(mt.map((m) => m[tw]), into[tw], into[tw].store.names());
  return losses.reduce((a, v) => a + v, 0) / B;
}

for (const count of [2, 4]) {
  test(`a step in ${count} micro-batches gives the whole batch's loss and every weight gradient, to float32 rounding`, async (t) => {
    const dev = await testDevice();
    const B = 16;
    const b = syntheticBatch(B, tiny.inputSize, 3);
    const params = () => [initTowerParams(tiny, 0, 11), initTowerParams(tiny, 1, 11)] as [ReturnType<typeof initTowerParams>, ReturnType<typeof initTowerParams>];
    const whole = await towersPass(dev, tiny, params(), b.images, b.labels, ctx);
    const want = await Promise.all(whole.towers.map(async (tw) => new Map(await Promise.all([...tw.grads].map(async ([name, g]) => [name, { dw: Float32Array.from(await host(g.dw)), db: Float32Array.from(await host(g.db)) }] as const)))));
    const into = [new Tower(dev, tiny, 0, B, params()[0]), new Tower(dev, tiny, 1, B, params()[1])] as const;
    const loss = await microStep(count, into, b.images, b.labels);
    t.true(Math.abs(loss - whole.loss) <= 1e-6 * Math.abs(whole.loss), `loss ${loss} vs ${whole.loss}`);
    let worst = 0;
    for (const tw of [0, 1] as const) {
      t.deepEqual([...into[tw].grads.keys()].sort(), [...want[tw]!.keys()].sort());
      for (const [name, g] of want[tw]!) {
        const got = into[tw].grads.get(name)!;
        for (const k of ['dw', 'db'] as const) {
          const [a, c] = [await host(got[k]), g[k]];
          const e = scaledError(Array.from(await host(got[k])), g[k]);
          worst = Math.max(worst, e);
          t.true(e <= 5e-6, `tower ${tw} ${name}.${k}: ${e.toExponential(2)} of the tensor's scale`);
        }
      }
    }
    t.log(`${count} micro-batches: worst gradient difference ${worst.toExponential(2)} of the tensor's scale`);
  });
}
