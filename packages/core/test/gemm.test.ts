import test from 'ava';
import { dropoutMask } from '../src/kernels/dropout.js';
import { Gemm, WEBGPU_MIN_CHUNK, WEBGPU_SPLIT_THREADS, gemmShape, webgpuGemmKind, webgpuSplits } from '../src/kernels/gemm.js';
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
  if (testBackend !== 'cpu') t.true(g.splits > 1);
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

test('webgpu GEMM kind: four rows of a column where M is a multiple of 4 and B row-major, else four columns of a row where N is, else one output; ALEXNET_WEBGPU_GEMM asks for one where it fits', (t) => {
  const shape = (M: number, N: number, transB = false) => gemmShape(M, N, 16, false, transB);
  t.is(webgpuGemmKind(shape(64, 128), {}), 'rows');
  t.is(webgpuGemmKind(shape(64, 128, true), {}), 'quad', 'B transposed: its lanes are not contiguous either way');
  t.is(webgpuGemmKind(shape(66, 128), {}), 'quad');
  t.is(webgpuGemmKind(shape(64, 6050, true), {}), 'rows');
  t.is(webgpuGemmKind(shape(66, 6050), {}), 'scalar');
  t.is(webgpuGemmKind(shape(64, 128), { ALEXNET_WEBGPU_GEMM: 'scalar' }), 'scalar');
  t.is(webgpuGemmKind(shape(64, 128), { ALEXNET_WEBGPU_GEMM: 'quad' }), 'quad');
  t.is(webgpuGemmKind(shape(64, 6050), { ALEXNET_WEBGPU_GEMM: 'quad' }), 'rows');
  t.is(webgpuGemmKind(shape(64, 128, true), { ALEXNET_WEBGPU_GEMM: 'rows' }), 'rows');
  t.is(webgpuGemmKind(shape(66, 6050), { ALEXNET_WEBGPU_GEMM: 'rows' }), 'scalar');
  t.throws(() => webgpuGemmKind(shape(64, 128), { ALEXNET_WEBGPU_GEMM: 'tiled' }), { message: /expected rows, quad or scalar/ });
});

// every webgpu kernel on shapes where it runs (M and N multiples of 4), transposed or not, with the ReLU and a mask
for (const kind of ['rows', 'quad', 'scalar'] as const) {
  (testBackend === 'webgpu' ? test : test.skip)(`webgpu GEMM "${kind}": 12x20x37 in all four transposes, relu(C) * mask, against float64`, async (t) => {
    const dev = await testDevice();
    const [M, N, K] = [12, 20, 37];
    const bias = randomArray(M, 31);
    const mask = dropoutMask(M * N, 0.5, 32);
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const a = randomArray(M * K, 33);
      const b = randomArray(K * N, 34);
      const g = new Gemm(dev, `gemm-${kind}-${ta}-${tb}`, gemmShape(M, N, K, ta, tb), { webgpuKind: kind });
      t.is(g.webgpuKind, kind);
      await assertClose(t, await g.run(a, b, bias), reference(M, N, K, a, b, bias, ta, tb), 1e-3, `${kind} C, transA=${ta} transB=${tb}`);
      const masked = new Gemm(dev, `gemm-${kind}-masked-${ta}-${tb}`, gemmShape(M, N, K, ta, tb), { webgpuKind: kind, relu: true, masked: true });
      const want = reference(M, N, K, a, b, bias, ta, tb).map((v, i) => Math.max(v, 0) * mask[i]!);
      await assertScaledClose(t, await masked.run(a, b, bias, mask), want, 1e-4, `${kind} relu(C) * mask, transA=${ta} transB=${tb}`);
    }
  });
}

test('webgpu split-K: enough chunks of K for 2^17 threads, none shorter than 256, none where the threads suffice or ALEXNET_WEBGPU_SPLIT_K=off', (t) => {
  t.is(webgpuSplits(WEBGPU_SPLIT_THREADS, 1 << 20, {}), 1);
  t.is(webgpuSplits(1000, 200, {}), 1, 'K shorter than two chunks');
  // the paper's conv1 weight gradient at batch 128 on the four-rows kernel: 363 x 12 threads, K = 128 * 55 * 55
  const s = webgpuSplits(363 * 12, 387200, {});
  t.is(s, Math.ceil(WEBGPU_SPLIT_THREADS / (363 * 12)));
  t.true(363 * 12 * s >= WEBGPU_SPLIT_THREADS);
  t.is(webgpuSplits(10, 1000, {}), Math.floor(1000 / WEBGPU_MIN_CHUNK) - 0, 'as many as chunks of 256 allow');
  t.is(webgpuSplits(10, 1 << 20, { ALEXNET_WEBGPU_SPLIT_K: 'off' }), 1);
  t.throws(() => webgpuSplits(10, 1 << 20, { ALEXNET_WEBGPU_SPLIT_K: 'maybe' }), { message: /expected on or off/ });
});

// K split on every webgpu kernel, in all four transposes: a small output, a long K; the ReLU and the mask after the chunks' sum
for (const kind of ['rows', 'quad', 'scalar'] as const) {
  (testBackend === 'webgpu' ? test : test.skip)(`webgpu GEMM "${kind}" with K split: 8x12x3000 in all four transposes, relu(C) * mask, against float64`, async (t) => {
    const dev = await testDevice();
    const [M, N, K] = [8, 12, 3000];
    const bias = randomArray(M, 43);
    const mask = dropoutMask(M * N, 0.5, 44);
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const a = randomArray(M * K, 41);
      const b = randomArray(K * N, 42);
      const want = reference(M, N, K, a, b, bias, ta, tb);
      const g = new Gemm(dev, `gemm-split-${kind}-${ta}-${tb}`, gemmShape(M, N, K, ta, tb), { webgpuKind: kind });
      t.true(g.splits > 1, `${g.splits} chunks`);
      await assertClose(t, await g.run(a, b, bias), want, 1e-3, `${kind} C, transA=${ta} transB=${tb}`);
      const masked = new Gemm(dev, `gemm-split-${kind}-masked-${ta}-${tb}`, gemmShape(M, N, K, ta, tb), { webgpuKind: kind, relu: true, masked: true });
      await assertScaledClose(t, await masked.run(a, b, bias, mask), want.map((v, i) => Math.max(v, 0) * mask[i]!), 1e-4, `${kind} relu(C) * mask, transA=${ta} transB=${tb}`);
      // unsplit (runPacked's callers ask for it) the same values
      const whole = new Gemm(dev, `gemm-whole-${kind}-${ta}-${tb}`, gemmShape(M, N, K, ta, tb), { webgpuKind: kind, splitK: false });
      t.is(whole.splits, 1);
      await assertClose(t, await whole.run(a, b, bias), want, 1e-3, `${kind} C unsplit, transA=${ta} transB=${tb}`);
    }
  });
}

(testBackend === 'webgpu' ? test : test.skip)('webgpu GEMM "rows" 4,200,000 columns wide (more workgroups of 64 than one dispatch dimension takes: x folds into z)', async (t) => {
  const dev = await testDevice();
  const [M, N, K] = [4, 4200000, 3];
  const a = randomArray(M * K, 51);
  const b = randomArray(K * N, 52);
  const bias = randomArray(M, 53);
  const g = new Gemm(dev, 'gemm-rows-wide', gemmShape(M, N, K), { webgpuKind: 'rows' });
  t.is(g.webgpuKind, 'rows');
  await assertClose(t, await g.run(a, b, bias), reference(M, N, K, a, b, bias, false, false), 1e-3, 'C');
});
