import test from 'ava';
import { Kernel, type KernelThis } from '../src/kernels/kernel-runner.js';
import { Gemm, gemmShape } from '../src/kernels/gemm.js';
import { Im2col, colStride } from '../src/kernels/im2col.js';
import { host, randomArray, testBackend, testDevice } from './helpers.js';

const scaleBody = function (this: KernelThis, a: Float32Array, s: number) {
  return a[this.thread.x]! * s;
};

// 100 cells run on the main thread, 20000 on gpu.js's worker pool: both paths take results out with slice()
for (const n of [100, 20000]) {
  test(`a kernel with reuseOutput returns correct results as views of its own memory (${n} cells)`, async (t) => {
    const dev = await testDevice();
    const reused = new Kernel(dev, `scale-reused-${n}`, scaleBody, { output: [n], reuseOutput: true });
    const fresh = new Kernel(dev, `scale-fresh-${n}`, scaleBody, { output: [n] });
    const a = randomArray(n, 1);
    const results: Float32Array[] = [];
    for (const s of [2, 3, 5]) {
      const got = await reused.run(a, s);
      // each result is right when it comes back, before the next call
      t.deepEqual(Array.from(got), Array.from(a, (v) => Math.fround(v * s)));
      results.push(got);
    }
    if (testBackend === 'webasm') {
      // the first call copies (the module does not exist before it); every later one returns a view of the
      // kernel's own memory, where the result lies: the same memory each time, no copy
      t.not(results[0]!.buffer, results[1]!.buffer);
      t.is(results[1]!.buffer, results[2]!.buffer);
      t.is(results[1]!.byteOffset, results[2]!.byteOffset);
      t.true(results[1]!.buffer.byteLength > n * 4, 'a view into the kernel memory, not a buffer of its own');
      t.is(Object.getPrototypeOf(results[2]), Float32Array.prototype, 'a plain Float32Array');
      const copy = results[2]!.slice();
      t.not(copy.buffer, results[2]!.buffer, "slice() of a result copies, as for any array");
      t.deepEqual(Array.from(results[0]!), Array.from(a, (v) => Math.fround(v * 2)), 'the first, copied result stays intact');
      // a result stays right while other kernels run, until its own kernel runs again
      const f1 = await fresh.run(a, 2);
      const f2 = await fresh.run(a, 3);
      t.deepEqual(Array.from(results[2]!), Array.from(a, (v) => Math.fround(v * 5)));
      await reused.run(a, 7);
      t.deepEqual(Array.from(copy), Array.from(a, (v) => Math.fround(v * 5)), 'the copy keeps its values');
      t.not(f1, f2, 'without reuseOutput every call returns a new array');
      t.deepEqual(Array.from(f1), Array.from(a, (v) => Math.fround(v * 2)));
    } else {
      // on a resident device (webgpu) results stay on the device: reuseOutput does not apply
      t.pass();
    }
  });
}

test('im2col and the GEMM reuse their results and still compute the same as fresh kernels', async (t) => {
  const dev = await testDevice();
  const g = { N: 2, C: 3, H: 9, W: 9, R: 3, S: 2, P: 1, OH: 5, OW: 5, NT: 2 };
  const im2col = new Im2col(dev, 'im2col-reuse', g);
  const M = 7;
  const P = g.N * g.OH * g.OW;
  const K = g.C * g.R * g.R;
  const shape = { ...gemmShape(M, P, K), sbk: colStride(P, dev) };
  const gemmA = new Gemm(dev, 'gemm-reuse-a', shape);
  const gemmB = new Gemm(dev, 'gemm-reuse-b', shape);
  const w = randomArray(M * K, 2);
  const seen = new Set<unknown>();
  for (let i = 0; i < 3; i++) {
    const x = randomArray(g.C * g.N * g.H * g.W, 10 + i);
    const col = await im2col.run(x, 0);
    seen.add(`${(col as Float32Array).byteOffset}/${(col as Float32Array).buffer.byteLength}`);
    // gemmB reads a copy of the columns, gemmA the view of im2col's memory itself
    const want = Array.from(await host(await gemmB.run(w, Float32Array.from(await host(col)))));
    t.deepEqual(Array.from(await host(await gemmA.run(w, col))), want);
  }
  if (testBackend === 'webasm') t.is(seen.size, 2, 'calls after the first return the same place in the kernel memory');
});
