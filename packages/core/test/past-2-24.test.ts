/**
 * Tensors past 2^24 floats on webgpu, where float32 index arithmetic would read the wrong elements:
 * the paper preset's activations at batch 128 and fc6's weights, at their real sizes, against the
 * float64 references. webgpu only (ALEXNET_TEST_BACKEND=webgpu; on a CPU machine the software adapter
 * of scripts/lavapipe.sh): webasm cuts such work into blocks of at most 2^24 floats (the other tests).
 */
import test from 'ava';
import { Kernel, type KernelThis } from '../src/kernels/kernel-runner.js';
import { Lrn } from '../src/kernels/lrn.js';
import { MaxPool } from '../src/kernels/maxpool.js';
import { Conv2dForward } from '../src/kernels/conv2d-forward.js';
import { Conv2dBackward } from '../src/kernels/conv2d-backward.js';
import { FullyConnected } from '../src/kernels/fully-connected.js';
import { Sgd } from '../src/kernels/sgd.js';
import * as ref from '../src/reference/layers.js';
import { conv2dBackward, conv2dForward, convOut, type ConvParams } from '../src/reference/conv2d.js';
import { assertClose, assertScaledClose, randomArray, sgdStep, testBackend, testDevice } from './helpers.js';

const PAST = 1 << 24;
const onWebGPU = testBackend === 'webgpu' ? test.serial : test.serial.skip;

onWebGPU('Math.floor of an integer quotient is exact past 2^24 and for negative numbers (the gpu.js patch)', async (t) => {
  const dev = await testDevice();
  const body = function (this: KernelThis, base: number) {
    const v = this.thread.x + base;
    // v mod d in [0, d), from the floor division: small and exact whatever v is
    return v - Math.floor(v / this.constants.d) * this.constants.d;
  };
  for (const base of [PAST + 1, 3 * PAST - 5, -PAST - 3, -40]) {
    const k = new Kernel(dev, `floordiv${base}`, body, { output: [64], constants: { d: 7 } });
    const got = await k.run(base);
    const want = Float32Array.from({ length: 64 }, (_, i) => (((base + i) % 7) + 7) % 7);
    t.deepEqual(Array.from(got), Array.from(want), `base ${base}`);
  }
});

onWebGPU('outputs wider or deeper than the GPU dispatches in one dimension (x past 65535 workgroups of 8, z past 65535) reach every cell once (the gpu.js patch)', async (t) => {
  const dev = await testDevice();
  // each cell holds its own flat index: a cell written by another thread, or by none, shows
  const body = function (this: KernelThis) {
    return (this.thread.z * this.constants.Y + this.thread.y) * this.constants.X + this.thread.x;
  };
  // the paper's conv1 at batch 256 has 774,400 columns: im2col's and the GEMM's output width
  // and the paper's conv3 col2im at batch 256: 13 x 13 x 65,536 (256 channels x 256 images)
  for (const output of [[774400, 2], [600000, 1, 2], [3, 13, 65536 + 7]] as const) {
    const [X, Y, Z] = [output[0], output[1], output[2] ?? 1];
    const k = new Kernel(dev, `wide${output.join('x')}`, body, { output: [...output], constants: { X, Y } });
    const got = await k.run();
    let bad = 0;
    for (let i = 0; i < X * Y * Z; i++) if (got[i] !== i) bad++;
    t.is(bad, 0, `output ${output.join('x')}`);
  }
});

onWebGPU("LRN over lrn1's input at batch 128 (48 x 128 x 55 x 55 = 18.6 M floats per tower) matches the reference", async (t) => {
  const dev = await testDevice();
  const p = { C: 48, plane: 128 * 55 * 55, size: 5, alpha: 1e-4, beta: 0.75, k: 2 };
  t.true(p.C * p.plane > PAST);
  const a = randomArray(p.C * p.plane, 3, 40);
  const dy = randomArray(a.length, 4);
  const k = new Lrn(dev, 'lrn-big', { type: 'lrn', name: 'lrn', size: p.size, alpha: p.alpha, beta: p.beta, k: p.k }, p.C, p.plane);
  const st = await k.forward(a);
  await assertClose(t, st.b, ref.lrnForward(p, a), 1e-4, 'b');
  await assertClose(t, await k.backward(st, dy), ref.lrnBackward(p, a, dy), 1e-3, 'da');
});

onWebGPU("max-pool over pool1's input at batch 128 (18.6 M floats) matches the reference", async (t) => {
  const dev = await testDevice();
  const p = { CN: 48 * 128, H: 55, W: 55, K: 3, S: 2 };
  const { OH, OW } = ref.poolOut(p);
  const x = randomArray(p.CN * p.H * p.W, 8);
  t.true(x.length > PAST);
  const dy = randomArray(p.CN * OH * OW, 9);
  const k = new MaxPool(dev, 'pool-big', p.CN, p.H, p.W, p.K, p.S);
  const { y, state } = await k.forward(x);
  await assertClose(t, y, ref.maxPoolForward(p, x).y, 1e-7, 'y');
  await assertScaledClose(t, await k.backward(state, dy), ref.maxPoolBackward(p, x, dy), 1e-6, 'dx');
});

onWebGPU("conv1's im2col past 2^24 floats in one chunk (16 images of 224x224): forward and backward match the reference", async (t) => {
  const dev = await testDevice();
  // conv1's geometry with a few filters: the im2col buffer (363 x 48,400) does not depend on them
  const p: ConvParams = { C: 3, N: 16, H: 224, W: 224, O: 4, R: 11, stride: 4, pad: 2, groups: 1 };
  const { OH, OW } = convOut(p);
  const shape = { C: p.C, N: p.N, H: p.H, W: p.W, O: p.O, R: p.R, stride: p.stride, pad: p.pad };
  const fwd = new Conv2dForward(dev, 'conv-big', shape);
  t.is(fwd.chunks.starts.length, 1, 'one chunk: the whole batch stays on the device');
  t.true(p.C * p.R * p.R * p.N * OH * OW > PAST, 'the im2col buffer passes 2^24 floats');
  const bwd = new Conv2dBackward(dev, 'conv-big', fwd, true);
  const x = randomArray(p.C * p.N * p.H * p.W, 21, 50);
  const w = randomArray(p.O * p.C * p.R * p.R, 22, 0.05);
  const b = randomArray(p.O, 23);
  const dy = randomArray(p.O * p.N * OH * OW, 24);
  const before = dev.readbacks;
  const { y, state } = await fwd.run(x, w, b);
  const g = await bwd.run(x, w, dy, state);
  t.is(dev.readbacks, before, 'nothing read back to the host');
  // float32 sums of 363 (forward), 48,400 (dw) and up to 36 (dx) products against float64 ones
  await assertScaledClose(t, y, conv2dForward(p, x, w, b), 1e-5, 'y');
  const want = conv2dBackward(p, x, w, dy);
  await assertScaledClose(t, g.dw, want.dw, 1e-4, 'dw');
  await assertScaledClose(t, g.db, want.db, 1e-4, 'db');
  await assertScaledClose(t, g.dx!, want.dx, 1e-5, 'dx');
});

onWebGPU("fc6 at the paper's size (2048 x 9216 = 18.9 M weights per tower) is one block on the device: forward, backward and SGD match the reference", async (t) => {
  const dev = await testDevice();
  const [O, K, N] = [2048, 9216, 4];
  t.true(O * K > PAST);
  const x = randomArray(K * N, 31);
  const w = randomArray(O * K, 32, 0.01);
  const b = randomArray(O, 33);
  const dy = randomArray(O * N, 34);
  const fc = new FullyConnected(dev, 'fc6-big', O, K, N);
  const sgd = new Sgd(dev, 'fc6-big.sgd', O * K);
  const [xd, wd, bd, dyd] = await Promise.all([x, w, b, dy].map((a) => dev.upload(a)));
  const v = randomArray(O * K, 35, 0.001);
  const before = dev.readbacks;
  const y = await fc.forward(xd!, wd!, bd!);
  const g = await fc.backward(xd!, wd!, dyd!);
  t.is(dev.readbacks, before, 'nothing read back to the host');
  const h = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };
  const next = await sgdStep(dev, sgd, w, v, g.dw, h);
  // float32 sums of 9216 (forward), 4 (dw) and 2048 (dx) products against float64 ones
  await assertScaledClose(t, y, ref.fcForward(O, K, N, x, w, b), 1e-5, 'y');
  const want = ref.fcBackward(O, K, N, x, w, dy);
  await assertScaledClose(t, g.dw, want.dw, 1e-5, 'dw');
  await assertScaledClose(t, g.dx, want.dx, 1e-5, 'dx');
  const step = ref.sgdStep(w, v, want.dw, h.lr, h.momentum, h.weightDecay);
  await assertScaledClose(t, next.w, step.w, 1e-6, 'w after the update');
  await assertScaledClose(t, next.v, step.v, 1e-5, 'momentum after the update');
  dev.release();
});
