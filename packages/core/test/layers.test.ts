import test from 'ava';
import { Relu } from '../src/kernels/relu.js';
import { Lrn } from '../src/kernels/lrn.js';
import { MaxPool } from '../src/kernels/maxpool.js';
import { FullyConnected } from '../src/kernels/fully-connected.js';
import { Flatten } from '../src/kernels/flatten.js';
import { Dropout, dropoutMask } from '../src/kernels/dropout.js';
import { SoftmaxCrossEntropy } from '../src/kernels/softmax-xent.js';
import { Sgd } from '../src/kernels/sgd.js';
import { kernelProfile, startKernelProfile } from '../src/kernels/kernel-profile.js';
import * as ref from '../src/reference/layers.js';
import { assertClose, dot, f64, finiteDifferences, host, randomArray, sgdStep, testDevice } from './helpers.js';

test('relu forward and backward match the reference', async (t) => {
  const dev = await testDevice();
  const x = randomArray(5000, 1);
  const dy = randomArray(5000, 2);
  const k = new Relu(dev, 'relu', x.length);
  const y = await k.forward(x);
  await assertClose(t, y, ref.reluForward(x), 1e-6, 'y');
  await assertClose(t, await k.backward(y, dy), ref.reluBackward(ref.reluForward(x), dy), 1e-6, 'dx');
});

test('relu reference backward matches finite differences in float64', (t) => {
  const x = f64(randomArray(200, 40));
  const g = f64(randomArray(200, 41));
  const dx = ref.reluBackward(ref.reluForward(x), g);
  t.true(dx.some((v) => v === 0) && dx.some((v) => v !== 0), 'both sides of the kink are sampled');
  const fd = finiteDifferences((xx) => dot(ref.reluForward(xx), g), x, 60, 42);
  fd.idx.forEach((j, i) => t.true(Math.abs(dx[j]! - fd.grad[i]!) < 1e-6, `dx[${j}] ${dx[j]} vs ${fd.grad[i]}`));
});

for (const [beta, size] of [[0.75, 5], [0.6, 5], [0.75, 3]] as const) {
  test(`lrn (k 2, alpha 1e-4, beta ${beta}, n ${size}) forward and backward match the reference`, async (t) => {
    const dev = await testDevice();
    const p = { C: 7, plane: 2 * 5 * 3, size, alpha: 1e-4, beta, k: 2 };
    // large activations so that the alpha term matters
    const a = randomArray(p.C * p.plane, 3, 40);
    const dy = randomArray(a.length, 4);
    const k = new Lrn(dev, `lrn${beta}-${size}`, { type: 'lrn', name: 'lrn', size: p.size, alpha: p.alpha, beta: p.beta, k: p.k }, p.C, p.plane);
    const st = await k.forward(a);
    await assertClose(t, st.b, ref.lrnForward(p, a), 1e-4, 'b');
    await assertClose(t, await k.backward(st, dy), ref.lrnBackward(p, a, dy), 1e-3, 'da');
  });
}

test('lrn after relu: the backward kernel folds in relu\'s backward, and the forward is one kernel', async (t) => {
  const dev = await testDevice();
  const p = { C: 9, plane: 3 * 4 * 4, size: 5, alpha: 1e-4, beta: 0.75, k: 2 };
  const a = Float32Array.from(ref.reluForward(randomArray(p.C * p.plane, 53, 40)));
  const dy = randomArray(a.length, 54);
  const k = new Lrn(dev, 'lrn-relu', { type: 'lrn', name: 'lrn', size: p.size, alpha: p.alpha, beta: p.beta, k: p.k }, p.C, p.plane, true);
  startKernelProfile();
  const st = await k.forward(a);
  t.deepEqual(kernelProfile().filter((e) => e.name.startsWith('lrn-relu.')).map((e) => [e.name, e.calls]), [['lrn-relu.forward', 1]]);
  await assertClose(t, st.b, ref.lrnForward(p, a), 1e-4, 'b');
  await assertClose(t, await k.backward(st, dy), ref.reluBackward(a, ref.lrnBackward(p, a, dy)), 1e-3, 'dx');
});

test('lrn reference backward matches finite differences in float64', (t) => {
  const p = { C: 6, plane: 4, size: 5, alpha: 1e-2, beta: 0.75, k: 2 };
  const a = f64(randomArray(p.C * p.plane, 5, 5));
  const g = f64(randomArray(a.length, 6));
  const da = ref.lrnBackward(p, a, g);
  const fd = finiteDifferences((x) => dot(ref.lrnForward(p, x), g), a, 24, 7);
  fd.idx.forEach((j, i) => t.true(Math.abs(da[j]! - fd.grad[i]!) < 1e-6, `da[${j}] ${da[j]} vs ${fd.grad[i]}`));
});

for (const [H, W] of [[7, 7], [8, 11]]) {
  test(`max-pool 3x3 stride 2 on ${H}x${W} forward and backward match the reference`, async (t) => {
    const dev = await testDevice();
    const p = { CN: 6, H, W, K: 3, S: 2 };
    const { OH, OW } = ref.poolOut(p);
    const x = randomArray(p.CN * H * W, 8);
    const dy = randomArray(p.CN * OH * OW, 9);
    const k = new MaxPool(dev, `pool${H}x${W}`, p.CN, H, W, 3, 2);
    const { y, state } = await k.forward(x);
    await assertClose(t, y, ref.maxPoolForward(p, x).y, 1e-7, 'y');
    await assertClose(t, await k.backward(state, dy), ref.maxPoolBackward(p, x, dy), 1e-6, 'dx');
  });
}

test('max-pool after relu (zeros and ties in a window, as in the model) matches the reference, gradient to one element per window', async (t) => {
  const dev = await testDevice();
  const p = { CN: 4, H: 9, W: 9, K: 3, S: 2 };
  const { OH, OW } = ref.poolOut(p);
  // half the inputs 0 after relu, the rest rounded to a few levels: many windows hold equal maxima
  const x = Float32Array.from(ref.reluForward(randomArray(p.CN * p.H * p.W, 43)), (v) => Math.round(v * 2) / 2);
  const dy = randomArray(p.CN * OH * OW, 44);
  const k = new MaxPool(dev, 'pool-ties', p.CN, p.H, p.W, 3, 2);
  const { y, state } = await k.forward(x);
  const want = ref.maxPoolForward(p, x);
  await assertClose(t, y, want.y, 1e-7, 'y');
  const dx = await host(await k.backward(state, dy));
  await assertClose(t, dx, ref.maxPoolBackward(p, x, dy), 1e-6, 'dx');
  // the gradient sums to dy's sum: each window's goes to exactly one element, even when several tie
  const sum = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0);
  t.true(Math.abs(sum(dx) - sum(dy)) < 1e-4);
});

test('max-pool after relu: the backward kernel folds in relu\'s backward (windows of zeros give nothing)', async (t) => {
  const dev = await testDevice();
  const p = { CN: 5, H: 9, W: 11, K: 3, S: 2 };
  const { OH, OW } = ref.poolOut(p);
  // mostly zeros, as after relu at a negative bias: many windows hold nothing but zeros
  const x = Float32Array.from(ref.reluForward(Float32Array.from(randomArray(p.CN * p.H * p.W, 55), (v) => v - 0.7)));
  const dy = randomArray(p.CN * OH * OW, 56);
  const k = new MaxPool(dev, 'pool-relu', p.CN, p.H, p.W, 3, 2, true);
  const { y, state } = await k.forward(x);
  await assertClose(t, y, ref.maxPoolForward(p, x).y, 1e-7, 'y');
  const want = ref.reluBackward(x, ref.maxPoolBackward(p, x, dy));
  t.true(want.some((v, i) => v === 0 && ref.maxPoolBackward(p, x, dy)[i] !== 0), 'some window of zeros has a gradient that relu stops');
  await assertClose(t, await k.backward(state, dy), want, 1e-6, 'dx');
});

test('max-pool reference backward matches finite differences in float64', (t) => {
  const p = { CN: 2, H: 7, W: 7, K: 3, S: 2 };
  const x = f64(randomArray(p.CN * p.H * p.W, 10));
  const { OH, OW } = ref.poolOut(p);
  const g = f64(randomArray(p.CN * OH * OW, 11));
  const dx = ref.maxPoolBackward(p, x, g);
  const fd = finiteDifferences((xx) => dot(ref.maxPoolForward(p, xx).y, g), x, 30, 12);
  fd.idx.forEach((j, i) => t.true(Math.abs(dx[j]! - fd.grad[i]!) < 1e-6, `dx[${j}]`));
});

test('fully connected forward and backward match the reference, and the reference matches finite differences', async (t) => {
  const dev = await testDevice();
  const [O, K, N] = [13, 37, 6];
  const x = randomArray(K * N, 12);
  const w = randomArray(O * K, 13);
  const b = randomArray(O, 14);
  const dy = randomArray(O * N, 15);
  const k = new FullyConnected(dev, 'fc', O, K, N);
  await assertClose(t, await k.forward(x, w, b), ref.fcForward(O, K, N, x, w, b), 1e-4, 'y');
  const g = await k.backward(x, w, dy);
  const r = ref.fcBackward(O, K, N, x, w, dy);
  await assertClose(t, g.dx, r.dx, 1e-4, 'dx');
  await assertClose(t, g.dw, r.dw, 1e-4, 'dw');
  await assertClose(t, g.db, r.db, 1e-4, 'db');
  const x64 = f64(x);
  const w64 = f64(w);
  const fx = finiteDifferences((xx) => dot(ref.fcForward(O, K, N, xx, w64, b), dy), x64, 10, 16);
  fx.idx.forEach((j, i) => t.true(Math.abs(r.dx[j]! - fx.grad[i]!) < 1e-6));
  const fw = finiteDifferences((ww) => dot(ref.fcForward(O, K, N, x64, ww, b), dy), w64, 10, 17);
  fw.idx.forEach((j, i) => t.true(Math.abs(r.dw[j]! - fw.grad[i]!) < 1e-6));
  const fb = finiteDifferences((bb) => dot(ref.fcForward(O, K, N, x64, w64, bb), dy), f64(b), O, 18);
  fb.idx.forEach((j, i) => t.true(Math.abs(r.db[j]! - fb.grad[i]!) < 1e-6, `db[${j}] ${r.db[j]} vs ${fb.grad[i]}`));
});

test('fully connected in blocks of output rows (for weights beyond 2^24 floats) gives the same result', async (t) => {
  const dev = await testDevice();
  const [O, K, N] = [22, 30, 5];
  const x = randomArray(K * N, 30);
  const w = randomArray(O * K, 31);
  const b = randomArray(O, 32);
  const dy = randomArray(O * N, 33);
  const k = new FullyConnected(dev, 'fc-blocks', O, K, N, 8 * K);
  await assertClose(t, await k.forward(x, w, b), ref.fcForward(O, K, N, x, w, b), 1e-4, 'y');
  const g = await k.backward(x, w, dy);
  const r = ref.fcBackward(O, K, N, x, w, dy);
  await assertClose(t, g.dx, r.dx, 1e-4, 'dx');
  await assertClose(t, g.dw, r.dw, 1e-4, 'dw');
  await assertClose(t, g.db, r.db, 1e-4, 'db');
});

test('flatten between CNHW and [feature][image] is a permutation and its own adjoint', async (t) => {
  const dev = await testDevice();
  const [C, N, HW] = [3, 4, 5];
  const x = randomArray(C * N * HW, 18);
  const k = new Flatten(dev, 'flatten', C, N, HW);
  const fd = await k.forward(x);
  const f = await host(fd);
  for (let c = 0; c < C; c++) for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) t.is(f[(c * HW + i) * N + n], x[(c * N + n) * HW + i]);
  t.deepEqual(Array.from(await host(await k.backward(fd))), Array.from(x));
});

test('dropout keeps about half the units, scales them by 2, and is reproducible from its seed', async (t) => {
  const dev = await testDevice();
  const mask = dropoutMask(10000, 0.5, 42);
  const kept = mask.filter((m) => m !== 0);
  t.true(Math.abs(kept.length - 5000) < 300, `kept ${kept.length}`);
  t.true(kept.every((m) => m === 2));
  t.deepEqual(Array.from(dropoutMask(100, 0.5, 42)), Array.from(mask.subarray(0, 100)));
  t.notDeepEqual(Array.from(dropoutMask(100, 0.5, 43)), Array.from(mask.subarray(0, 100)));
  const x = randomArray(10000, 19);
  const dy = randomArray(10000, 45);
  const k = new Dropout(dev, 'dropout', 10000);
  await assertClose(t, await k.forward(x, mask), ref.dropoutForward(x, mask), 1e-7, 'y');
  await assertClose(t, await k.backward(x, dy, mask), ref.dropoutForward(dy, mask), 1e-7, 'dx');
});

test('dropout after relu: one backward kernel gives relu\'s and dropout\'s gradient, from the relu output or from it masked (the fc GEMM applies the mask)', async (t) => {
  const dev = await testDevice();
  const n = 6000;
  const mask = dropoutMask(n, 0.5, 46);
  const y = Float32Array.from(ref.reluForward(randomArray(n, 47)));
  const dy = randomArray(n, 48);
  const want = ref.reluBackward(y, ref.dropoutForward(dy, mask));
  const k = new Dropout(dev, 'dropout-relu', n, true);
  await assertClose(t, await k.backward(y, dy, mask), want, 1e-7, 'dx from y');
  const got = await host(await k.backward(Float32Array.from(ref.dropoutForward(y, mask)), dy, mask));
  // the same values (a dropped unit whose y was positive gives +0 where the two kernels gave dy * 0)
  t.true(Array.from(got).every((v, i) => v === want[i]), 'dx from y * mask');
});

test('fully connected with relu and the dropout mask in its GEMM matches relu then dropout of the reference, blocks or not', async (t) => {
  const dev = await testDevice();
  const [O, K, N] = [12, 30, 8];
  const x = randomArray(K * N, 49);
  const w = randomArray(O * K, 50);
  const b = randomArray(O, 51);
  const mask = dropoutMask(O * N, 0.5, 52);
  const want = ref.dropoutForward(ref.reluForward(ref.fcForward(O, K, N, x, w, b)), mask);
  for (const block of [undefined, 4 * K]) {
    const k = new FullyConnected(dev, `fc-masked-${block ?? 'one'}`, O, K, N, block, true, true);
    await assertClose(t, await k.forward(x, w, b, mask), want, 1e-4, `y (blocks of ${block ?? 'all'} floats)`);
  }
  await t.throwsAsync(() => new FullyConnected(dev, 'fc-masked-none', O, K, N, undefined, true, true).forward(x, w, b), { message: /needs its mask/ });
});

test('softmax cross-entropy loss and gradient match the reference and finite differences', async (t) => {
  const dev = await testDevice();
  const [C, N] = [10, 7];
  const z = randomArray(C * N, 20, 3);
  const labels = Float32Array.from({ length: N }, (_, i) => (i * 3) % C);
  const k = new SoftmaxCrossEntropy(dev, 'xent', C, N);
  const r = ref.softmaxCrossEntropy(C, N, z, labels);
  await assertClose(t, await k.forward(z, labels), r.losses, 1e-5, 'losses');
  await assertClose(t, await k.backward(z, labels), r.dz, 1e-5, 'dz');
  const fd = finiteDifferences((zz) => ref.softmaxCrossEntropy(C, N, zz, labels).loss, f64(z), 20, 21);
  fd.idx.forEach((j, i) => t.true(Math.abs(r.dz[j]! - fd.grad[i]!) < 1e-6));
});

test("sgd follows the paper's update with momentum and weight decay", async (t) => {
  const dev = await testDevice();
  const w = randomArray(5000, 22);
  const v = randomArray(5000, 23, 0.1);
  const g = randomArray(5000, 24);
  const k = new Sgd(dev, 'sgd', 5000);
  const h = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };
  const want = ref.sgdStep(w, v, g, 0.01, 0.9, 0.0005);
  const once = await sgdStep(dev, k, w, v, g, h);
  t.is(once.packed, dev.resident, 'on webgpu one kernel updates weights and momentum packed in one tensor');
  await assertClose(t, once.v, want.v, 1e-5, 'v');
  await assertClose(t, once.w, want.w, 1e-5, 'w');
  const twice = await sgdStep(dev, k, once.w, once.v, g, h);
  const want2 = ref.sgdStep(want.w, want.v, g, 0.01, 0.9, 0.0005);
  // two float32 steps against two float64 ones
  await assertClose(t, twice.v, want2.v, 3e-5, 'v after two steps');
  await assertClose(t, twice.w, want2.w, 3e-5, 'w after two steps');
  if (k.packs) await t.throwsAsync(() => k.step(w, v, g, h), { message: /packed/ });
});

test('sgd over more floats than one kernel call takes (the paper\'s fc6) updates block by block, the same as at once', async (t) => {
  const dev = await testDevice();
  const n = 2500; // blocks of 1000, 1000 and 500: a short last block
  const w = randomArray(n, 25);
  const v = randomArray(n, 26, 0.1);
  const g = randomArray(n, 27);
  const k = new Sgd(dev, 'sgd-blocks', n, 1000);
  const got = await k.step(w, v, g, { lr: 0.02, momentum: 0.9, weightDecay: 0.0005 });
  const want = ref.sgdStep(w, v, g, 0.02, 0.9, 0.0005);
  t.is((await dev.toHost(got.w, n)).length, n);
  await assertClose(t, got.v, want.v, 1e-5, 'v');
  await assertClose(t, got.w, want.w, 1e-5, 'w');
});
