/**
 * im2col against a plain loop: every column of every row, exactly (it only copies), on the test
 * backend; on CPU backends that is the two-pass form (a zero-bordered copy, then a column table).
 */
import test from 'ava';
import { Im2col, colStride, columnTable, type ConvGeometry } from '../src/kernels/im2col.js';
import { host, randomArray, testDevice } from './helpers.js';

function reference(g: ConvGeometry, x: Float32Array, n0: number): Float32Array {
  const P = g.N * g.OH * g.OW;
  const col = new Float32Array(g.C * g.R * g.R * P);
  for (let c = 0; c < g.C; c++) {
    for (let ky = 0; ky < g.R; ky++) {
      for (let kx = 0; kx < g.R; kx++) {
        const row = (c * g.R + ky) * g.R + kx;
        for (let n = 0; n < g.N; n++) {
          for (let oy = 0; oy < g.OH; oy++) {
            for (let ox = 0; ox < g.OW; ox++) {
              const iy = oy * g.S + ky - g.P;
              const ix = ox * g.S + kx - g.P;
              const inside = iy >= 0 && iy < g.H && ix >= 0 && ix < g.W;
              col[row * P + (n * g.OH + oy) * g.OW + ox] = inside ? x[((c * g.NT + n0 + n) * g.H + iy) * g.W + ix]! : 0;
            }
          }
        }
      }
    }
  }
  return col;
}

const geometry = (C: number, N: number, NT: number, H: number, R: number, S: number, P: number): ConvGeometry => {
  const O = Math.floor((H + 2 * P - R) / S) + 1;
  return { C, N, NT, H, W: H, R, S, P, OH: O, OW: O };
};

const cases: [string, ConvGeometry, number][] = [
  ['5x5 pad 2 (cifar conv1)', geometry(3, 2, 2, 9, 5, 1, 2), 0],
  ['11x11 stride 4 no padding (paper conv1)', geometry(3, 2, 2, 23, 11, 4, 0), 0],
  ['3x3 pad 1, images 2-4 of 5 (a chunk)', geometry(4, 3, 5, 7, 3, 1, 1), 2],
  ['1024 columns (rows padded)', geometry(2, 4, 4, 16, 3, 1, 1), 0],
];

for (const [name, g, n0] of cases) {
  test(`im2col, ${name}, copies every column the reference does`, async (t) => {
    const dev = await testDevice();
    const x = randomArray(g.C * g.NT * g.H * g.W, 5);
    const got = await host(await new Im2col(dev, `im2col-${name}`, g).run(x, n0));
    const want = reference(g, x, n0);
    const P = g.N * g.OH * g.OW;
    const stride = colStride(P, dev);
    const rows: number[] = [];
    for (let r = 0; r < g.C * g.R * g.R; r++) rows.push(...Array.from(got).slice(r * stride, r * stride + P));
    t.deepEqual(rows, Array.from(want));
  });
}

test('the column table holds whole-number offsets below 2^24, or is refused (the division-based kernel then runs)', (t) => {
  const g = geometry(3, 2, 2, 9, 5, 1, 2);
  const q = columnTable(g, 2 * 9 * 9 + 3)!;
  // image 1, row 2, column 3: (1 * 13 + 2) * 13 + 3
  t.is(q[(1 * 9 + 2) * 9 + 3], (1 * 13 + 2) * 13 + 3);
  t.is(q[q.length - 1], q[2 * 9 * 9 - 1]);
  t.is(columnTable(geometry(64, 128, 128, 200, 3, 1, 1), 128 * 200 * 200), null);
});

test('one im2col run again on other images of the batch (as a chunked layer does, and its backward recomputing) leaves nothing of the last call', async (t) => {
  const dev = await testDevice();
  const g = geometry(3, 2, 5, 9, 3, 2, 1); // stride 2, pad 1, chunks of 2 of 5 images
  const k = new Im2col(dev, 'im2col-again', g);
  const P = g.N * g.OH * g.OW;
  const stride = colStride(P, dev);
  const rows = (col: ArrayLike<number>) => Array.from({ length: g.C * g.R * g.R }, (_, r) => Array.from(col).slice(r * stride, r * stride + P)).flat();
  const x = randomArray(g.C * g.NT * g.H * g.W, 7);
  for (const n0 of [2, 0, 3, 2]) t.deepEqual(rows(await host(await k.run(x, n0))), Array.from(reference(g, x, n0)), `images ${n0}-${n0 + 1}`);
  // another batch through the same instance
  const x2 = randomArray(g.C * g.NT * g.H * g.W, 8);
  t.deepEqual(rows(await host(await k.run(x2, 0))), Array.from(reference(g, x2, 0)));
});
