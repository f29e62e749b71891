import test from 'ava';
import { dropoutMask } from '../src/kernels/dropout.js';
import { Gemm, gemmShape, webgpuGemmKind } from '../src/kernels/gemm.js';
import { assertClose, assertScaledClose, host, randomArray, testBackend, testDevice } from './helpers.js';

function reference(M: number, N: number, K: number, a: Float32Array, b: Float32Array, bias: Float32Array, ta: boolean, tb: boolean): Float64Array {
  const c = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias[m]!;
      for (let k = 0; k < K; k++) s += (ta ? a[k * M + m]! : a[m * K + k]!) * (tb ? b[n * K + k]! : b[k * N + n]!);
      c[m * N + n] = s;
    }
  }
  return c;
}

const cases: [number, number, number, boolean, boolean][] = [
  [7, 5, 3, false, false], // M not a multiple of 4, odd K
  [9, 13, 7, true, true],
  [16, 33, 1200, false, true], // long K: split-K and more than gpu.js's default 1000 loop iterations
  [75, 300, 32, true, false],
  [4, 4096, 5, false, false],
];

for (const [M, N, K, ta, tb] of cases) {
  test(`gemm ${M}x${N}x${K} transA=${ta} transB=${tb} matches float64 reference`, async (t) => {
    const dev = await testDevice();
    const a = randomArray(M * K, 1);
    const b = randomArray(K * N, 2);
    const bias = randomArray(M, 3);
    const g = new Gemm(dev, 'gemm', gemmShape(M, N, K, ta, tb));
    const got = await g.run(a, b, bias);
    await assertClose(t, got, reference(M, N, K, a, b, bias, ta, tb), 1e-3, 'C');
    t.is(dev.executed.get('gemm'), testBackend);
  });
}

test('gemm splits a long K when the output is small', async (t) => {
  const dev = await testDevice();
  const K = 40000;
  const g = new Gemm(dev, 'gemm-split', gemmShape(8, 16, K, false, true));
  if (testBackend === 'webasm') t.true(g.splits > 1);
  const a = randomArray(8 * K, 4);
  const b = randomArray(K * 16, 5);
  await assertClose(t, await g.run(a, b), reference(8, 16, K, a, b, new Float32Array(8), false, true), 1e-3, 'C');
  // enough chunks for the split output to reach the 4096 cells that run on the worker threads: the dot
  // kernel (B transposed, above) has 4 x 4 x 8 cells a chunk, the four-row kernel (B not transposed) 4 x 2 x 4
  if (testBackend === 'webasm') {
    t.true(g.dot && g.splits * 4 * 4 * 8 >= 4096, `dot kernel: ${g.splits} chunks`);
    const quad = new Gemm(dev, 'gemm-split-quad', gemmShape(8, 16, K));
    t.true(!quad.dot && quad.splits * 4 * 2 * 4 >= 4096, `four-row kernel: ${quad.splits} chunks`);
    const bq = randomArray(K * 16, 6);
    await assertClose(t, await quad.run(a, bq), reference(8, 16, K, a, bq, new Float32Array(8), false, false), 1e-3, 'C');
  }
});

// A and B both contiguous along K (weight gradients): on CPU backends the kernel whose lanes run along K
// (gemm-dot.ts). Odd M and N (clamped 2x2 blocks), K % 8 = 4 (the last step of four), split K, a bias.
for (const [M, N, K] of [[7, 5, 20], [3, 9, 44], [16, 33, 1200], [5, 7, 40004]] as const) {
  test(`gemm ${M}x${N}x${K} with both operands along K (lanes along K on CPU backends) matches float64 reference`, async (t) => {
    const dev = await testDevice();
    const a = randomArray(M * K, 21);
    const b = randomArray(K * N, 22);
    const bias = randomArray(M, 23);
    const g = new Gemm(dev, `gemm-dot-${K}`, gemmShape(M, N, K, false, true));
    t.is(g.dot, dev.mode !== 'webgpu');
    if (K > 16384 && dev.mode !== 'webgpu') t.true(g.splits > 1);
    await assertClose(t, await g.run(a, b, bias), reference(M, N, K, a, b, bias, false, true), 1e-3, 'C');
    // with the ReLU, and a dropout mask after it, applied after the lanes are summed
    const relu = new Gemm(dev, `gemm-dot-relu-${K}`, gemmShape(M, N, K, false, true), { relu: true });
    await assertClose(t, await relu.run(a, b, bias), reference(M, N, K, a, b, bias, false, true).map((v) => Math.max(v, 0)), 1e-3, 'relu(C)');
    const mask = dropoutMask(M * N, 0.5, 26);
    const masked = new Gemm(dev, `gemm-dot-masked-${K}`, gemmShape(M, N, K, false, true), { relu: true, masked: true });
    await assertClose(t, await masked.run(a, b, bias, mask), reference(M, N, K, a, b, bias, false, true).map((v, i) => Math.max(v, 0) * mask[i]!), 1e-3, 'relu(C) * mask');
  });
}

test('gemm keeps the four-row kernel where K is not a multiple of 4 or runPacked needs its layout', async (t) => {
  const dev = await testDevice();
  t.false(new Gemm(dev, 'gemm-k-odd', gemmShape(8, 8, 1201, false, true)).dot);
  const packed = new Gemm(dev, 'gemm-packed', gemmShape(8, 8, 1200, false, true), { splitK: false });
  t.false(packed.dot);
  const a = randomArray(8 * 1200, 24);
  const b = randomArray(8 * 1200, 25);
  await t.notThrowsAsync(packed.runPacked(a, b));
});

for (const [M, N, K] of [[9, 300, 20], [8, 16, 40000]] as const) {
  test(`gemm ${M}x${N}x${K} with the ReLU fused gives max(0, C)`, async (t) => {
    const dev = await testDevice();
    const a = randomArray(M * K, 6);
    const b = randomArray(K * N, 7);
    const bias = randomArray(M, 8);
    const g = new Gemm(dev, `gemm-relu-${K}`, gemmShape(M, N, K), { relu: true });
    const want = reference(M, N, K, a, b, bias, false, false).map((v) => Math.max(v, 0));
    t.true(want.some((v) => v === 0) && want.some((v) => v > 0));
    await assertClose(t, await g.run(a, b, bias), want, 1e-3, 'relu(C)');
  });

  test(`gemm ${M}x${N}x${K} with the ReLU and a dropout mask fused gives max(0, C) * mask`, async (t) => {
    const dev = await testDevice();
    const a = randomArray(M * K, 9);
    const b = randomArray(K * N, 10);
    const bias = randomArray(M, 11);
    const mask = dropoutMask(M * N, 0.5, 12);
    const g = new Gemm(dev, `gemm-masked-${K}`, gemmShape(M, N, K), { relu: true, masked: true });
    if (K > 16384 && dev.mode === 'webasm') t.true(g.splits > 1, 'the long K is split: the mask is applied after the chunks are summed');
    const got = Array.from(await host(await g.run(a, b, bias, mask)));
    // exactly the ReLU GEMM's floats times the mask (what the dropout layer computed from them)
    const relu = await host(await new Gemm(dev, `gemm-masked-relu-${K}`, gemmShape(M, N, K), { relu: true }).run(a, b, bias));
    t.deepEqual(got, Array.from(relu, (v, i) => v * mask[i]!));
    const want = reference(M, N, K, a, b, bias, false, false).map((v, i) => Math.max(v, 0) * mask[i]!);
    await assertScaledClose(t, got, want, 1e-4, 'relu(C) * mask');
  });
}

test('webgpu GEMM kind: four outputs per thread where N is a multiple of 4, one otherwise, ALEXNET_WEBGPU_GEMM=scalar forces one', (t) => {
  t.is(webgpuGemmKind(128, {}), 'quad');
  t.is(webgpuGemmKind(6050, {}), 'scalar');
  t.is(webgpuGemmKind(128, { ALEXNET_WEBGPU_GEMM: 'scalar' }), 'scalar');
  t.is(webgpuGemmKind(6050, { ALEXNET_WEBGPU_GEMM: 'quad' }), 'scalar');
  t.throws(() => webgpuGemmKind(128, { ALEXNET_WEBGPU_GEMM: 'tiled' }), { message: /expected quad or scalar/ });
});
