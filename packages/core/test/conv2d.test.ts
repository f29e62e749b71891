import test from 'ava';
import { Conv2dForward } from '../src/kernels/conv2d-forward.js';
import { Conv2dBackward } from '../src/kernels/conv2d-backward.js';
import { conv2dBackward, conv2dForward, convOut, type ConvParams } from '../src/reference/conv2d.js';
import { assertClose, dot, f64, finiteDifferences, randomArray, testDevice } from './helpers.js';

interface Case { name: string; p: ConvParams; maxCol?: number }

const cases: Case[] = [
  { name: '3x3 pad 1', p: { C: 3, N: 2, H: 11, W: 11, O: 4, R: 3, stride: 1, pad: 1, groups: 1 } },
  { name: '11x11 stride 4 pad 2 (paper conv1 shape)', p: { C: 3, N: 2, H: 27, W: 27, O: 8, R: 11, stride: 4, pad: 2, groups: 1 } },
  { name: 'odd sizes, stride 2', p: { C: 5, N: 3, H: 7, W: 9, O: 6, R: 5, stride: 2, pad: 2, groups: 1 } },
  { name: 'P = 1024 columns (padded im2col rows)', p: { C: 2, N: 4, H: 16, W: 16, O: 4, R: 3, stride: 1, pad: 1, groups: 1 } },
  { name: 'batch cut into im2col chunks', p: { C: 4, N: 5, H: 6, W: 6, O: 4, R: 3, stride: 1, pad: 1, groups: 1 }, maxCol: 36 * 36 * 2 },
];

for (const c of cases) {
  test(`conv2d forward and backward, ${c.name}, match the float64 reference`, async (t) => {
    const dev = await testDevice();
    const p = c.p;
    const { OH, OW } = convOut(p);
    const x = randomArray(p.C * p.N * p.H * p.W, 1);
    const w = randomArray(p.O * p.C * p.R * p.R, 2, 0.3);
    const b = randomArray(p.O, 3);
    const dy = randomArray(p.O * p.N * OH * OW, 4);
    const shape = { C: p.C, N: p.N, H: p.H, W: p.W, O: p.O, R: p.R, stride: p.stride, pad: p.pad };
    const fwd = new Conv2dForward(dev, 'conv.fwd', shape, c.maxCol);
    if (c.maxCol) t.true(fwd.chunks.starts.length > 1, 'the batch is cut into chunks');
    const bwd = new Conv2dBackward(dev, 'conv.bwd', fwd, true);
    const { y, state } = await fwd.run(x, w, b);
    await assertClose(t, y, conv2dForward(p, x, w, b), 1e-3, 'y');
    const g = await bwd.run(x, w, dy, state);
    const ref = conv2dBackward(p, x, w, dy);
    await assertClose(t, g.dx!, ref.dx, 1e-3, 'dx');
    await assertClose(t, g.dw, ref.dw, 1e-3, 'dw');
    await assertClose(t, g.db, ref.db, 1e-3, 'db');
  });
}

test('conv2d reference backward (groups 2, stride 2) matches finite differences in float64', (t) => {
  const p: ConvParams = { C: 4, N: 2, H: 7, W: 7, O: 6, R: 3, stride: 2, pad: 1, groups: 2 };
  const { OH, OW } = convOut(p);
  const x = f64(randomArray(p.C * p.N * p.H * p.W, 5));
  const w = f64(randomArray((p.O * p.C * p.R * p.R) / p.groups, 6));
  const b = f64(randomArray(p.O, 7));
  const g = f64(randomArray(p.O * p.N * OH * OW, 8));
  const { dx, dw, db } = conv2dBackward(p, x, w, g);
  const fx = finiteDifferences((xx) => dot(conv2dForward(p, xx, w, b), g), x, 20, 1);
  fx.idx.forEach((j, i) => t.true(Math.abs(dx[j]! - fx.grad[i]!) < 1e-6, `dx[${j}]`));
  const fw = finiteDifferences((ww) => dot(conv2dForward(p, x, ww, b), g), w, 20, 2);
  fw.idx.forEach((j, i) => t.true(Math.abs(dw[j]! - fw.grad[i]!) < 1e-6, `dw[${j}]`));
  const fb = finiteDifferences((bb) => dot(conv2dForward(p, x, w, bb), g), b, 6, 3);
  fb.idx.forEach((j, i) => t.true(Math.abs(db[j]! - fb.grad[i]!) < 1e-6, `db[${j}]`));
});

test('a grouped conv (groups 2) is two towers each convolving its own half', (t) => {
  const p: ConvParams = { C: 4, N: 2, H: 5, W: 5, O: 6, R: 3, stride: 1, pad: 1, groups: 2 };
  const x = randomArray(p.C * p.N * p.H * p.W, 9);
  const w = randomArray((p.O * p.C * p.R * p.R) / 2, 10);
  const b = randomArray(p.O, 11);
  const grouped = conv2dForward(p, x, w, b);
  const half: ConvParams = { ...p, C: 2, O: 3, groups: 1 };
  const xs = [x.subarray(0, x.length / 2), x.subarray(x.length / 2)];
  const ws = [w.subarray(0, w.length / 2), w.subarray(w.length / 2)];
  const towers = [0, 1].map((i) => conv2dForward(half, xs[i]!, ws[i]!, b.subarray(i * 3, i * 3 + 3)));
  t.deepEqual(Array.from(grouped), [...towers[0]!, ...towers[1]!]);
});
