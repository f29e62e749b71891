/**
 * gpu.js's WebAssembly backend (webasm) as patches/gpu.js+2.24.1.patch extends it: with the kernel setting
 * `strictIntegers` integer arithmetic stays i32 (exact past 2^24, and no float-to-integer conversion before
 * each load), a load whose four SIMD lanes read consecutive elements (`a[u + this.thread.x]`) is one 16-byte
 * load, and a uniform value loaded for all lanes is one v128.load32_splat. Every result here is checked
 * against JavaScript's own arithmetic; the kernels run on the CPU, no GPU needed.
 */
import test from 'ava';
import { createRequire } from 'node:module';
import { Device } from '../src/device.js';
import { Kernel, type KernelThis } from '../src/kernels/kernel-runner.js';
import { gemmDotBody, rowPairs, unpackDot } from '../src/kernels/gemm-dot.js';

let shared: Promise<Device> | null = null;
function webasm(): Promise<Device> {
  shared ??= Device.create('webasm', { onFallback: 'throw' });
  return shared;
}

type Fn = (this: KernelThis, a: Float32Array) => number;

async function run(name: string, fn: Fn, width: number, constants: Record<string, number>, a: Float32Array): Promise<Float32Array> {
  const dev = await webasm();
  const k = new Kernel(dev, name, fn, { output: [width], constants });
  const out = await k.run(a);
  if (dev.executed.get(name) !== 'webasm') throw new Error(`${name} ran on ${dev.executed.get(name)}`);
  return out;
}

const none = new Float32Array(16);
const WIDTH = 13; // three SIMD quads and a scalar tail

// lane-varying operands (thread.x) and uniform ones (a constant) go through different code in the backend
const cases: [string, Fn, (i: number, d: number) => number][] = [
  ['floor-div varying', function (this: KernelThis, a: Float32Array) { const i = this.thread.x - 6; return Math.floor(i / this.constants.d) + a[0]; }, (i, d) => Math.floor(i / d)],
  ['floor-div uniform', function (this: KernelThis, a: Float32Array) { const i = this.constants.c - 6; return Math.floor(i / this.constants.d) + a[this.thread.x]; }, (_i, d) => Math.floor((7 - 6) / d)],
  ['rem varying', function (this: KernelThis, a: Float32Array) { const i = this.thread.x - 6; return (i % this.constants.d) + a[0]; }, (i, d) => i % d],
  ['rem uniform', function (this: KernelThis, a: Float32Array) { const i = this.constants.c - 13; return (i % this.constants.d) + a[this.thread.x]; }, (_i, d) => (7 - 13) % d],
  ['min/max/abs varying', function (this: KernelThis, a: Float32Array) { const i = this.thread.x - 6; return Math.min(i, 2) * 100 + Math.max(i, -2) * 10 + Math.abs(i) + a[0]; }, (i) => Math.min(i, 2) * 100 + Math.max(i, -2) * 10 + Math.abs(i)],
  ['min/max/abs uniform', function (this: KernelThis, a: Float32Array) { const i = this.constants.c - 13; return Math.min(i, 2) * 100 + Math.max(i, -2) * 10 + Math.abs(i) + a[this.thread.x]; }, () => Math.min(-6, 2) * 100 + Math.max(-6, -2) * 10 + Math.abs(-6)],
];

for (const [name, fn, expected] of cases) {
  for (const d of [4, -4, 3, 1, 2]) { // 1, 2 and 4: the shift the patched gpu.js uses for constant powers of two
    test(`strictIntegers on webasm: ${name}, divisor ${d}, equals JavaScript`, async (t) => {
      const out = await run(`${name.replace(/\W/g, '-')}${d}`, fn, WIDTH, { d, c: 7 }, none);
      // an integer has no -0: JavaScript's -0 (from -6 % 3, or Math.floor(-0)) is 0 here
      t.deepEqual([...out], Array.from({ length: WIDTH }, (_, x) => expected(x - 6, d) + 0));
    });
  }
}

test('strictIntegers on webasm: floor division and remainder of integers near 2^31, SIMD lanes, equal JavaScript', async (t) => {
  for (const [big, d] of [[2 ** 31 - 20, 7], [-(2 ** 31) + 20, 7], [-(2 ** 31), 3], [-(2 ** 31), 2 ** 31 - 1], [2 ** 30 + 3, -(2 ** 24) - 1], [123456789, 2 ** 31 - 1]]) {
    const q = await run(`big-floor-${big}-${d}`, function (this: KernelThis, a: Float32Array) {
      const i = this.constants.big + this.thread.x;
      return Math.floor(i / this.constants.d) - this.constants.q0 + a[0];
    }, WIDTH, { big: big!, d: d!, q0: Math.floor(big! / d!) }, none);
    t.deepEqual([...q], Array.from({ length: WIDTH }, (_, x) => Math.floor((big! + x) / d!) - Math.floor(big! / d!) + 0), `floor ${big} / ${d}`);
    const r = await run(`big-rem-${big}-${d}`, function (this: KernelThis, a: Float32Array) {
      const i = this.constants.big + this.thread.x;
      return (i % this.constants.d) + a[0];
    }, WIDTH, { big: big!, d: d! }, none);
    // remainders above 2^24 are rounded to float32 on the way out, as JavaScript's would be
    t.deepEqual([...r], Array.from({ length: WIDTH }, (_, x) => Math.fround(((big! + x) % d!)) + 0), `${big} % ${d}`);
  }
});

test('strictIntegers on webasm: floor division by a constant (a multiply by its reciprocal in SIMD code) is exact at and beside every multiple, over the whole i32 range', async (t) => {
  const width = 4096;
  // 49, 75, 98, ...: divisors where a multiply by the rounded reciprocal alone falls short at a multiple
  for (const d of [3, 5, 7, 15, 25, 49, 75, 98, 225, 800, 14400, 65537, 2 ** 31 - 1]) {
    // numerators k*d - 1, k*d, k*d + 1 for 1365 consecutive multiples k from -600, and for 1365 multiples k
    // spread from the most negative to the most positive
    const families: [number, number][] = [[-(2 ** 31) + 2, Math.max(1, Math.floor((2 ** 31 - 2) / d / 1365))]];
    if (1365 * d < 2 ** 30) families.push([-600 * d, 1]);
    for (const [base, step] of families) {
      const first = Math.ceil(base / d) * d;
      const q = await run(`const-floor-${d}-${base}`, function (this: KernelThis, a: Float32Array) {
        const j = Math.floor(this.thread.x / 3);
        const i = this.constants.first + j * this.constants.stepd + (this.thread.x - j * 3) - 1;
        return Math.floor(i / this.constants.d) - (Math.floor(this.constants.first / this.constants.d) + j * this.constants.step) + a[0];
      }, width, { d, first, step, stepd: step * d }, none);
      const want = Array.from({ length: width }, (_, x) => {
        const j = Math.floor(x / 3);
        const i = first + j * step * d + (x - j * 3) - 1;
        return i > 2 ** 31 - 1 || i < -(2 ** 31) ? NaN : Math.floor(i / d) - (Math.floor(first / d) + j * step) + 0;
      });
      const wrong = want.map((w, x) => (Number.isNaN(w) || w === q[x] ? -1 : x)).filter((x) => x >= 0);
      t.deepEqual(wrong, [], `divisor ${d}, from ${first - 1}: lanes ${wrong.slice(0, 5)}`);
    }
  }
  // a divisor that is a product of constants (this.constants.R * this.constants.R) is a constant too
  const out = await run('const-floor-product', function (this: KernelThis, a: Float32Array) {
    return Math.floor((this.thread.x - 6) / (this.constants.R * this.constants.R)) + a[0];
  }, WIDTH, { R: 3 }, none);
  t.deepEqual([...out], Array.from({ length: WIDTH }, (_, x) => Math.floor((x - 6) / 9) + 0));
});

/** The WebAssembly module gpu.js built for a Kernel's last call. */
function moduleBytes(k: Kernel): Uint8Array {
  return (k as unknown as { k: { kernel: { _active: { bytes: Uint8Array } } } }).k.kernel._active.bytes;
}

/** Whether `bytes` contains the byte sequence `seq`. */
const contains = (bytes: Uint8Array, seq: number[]) => bytes.some((_, i) => seq.every((b, j) => bytes[i + j] === b));

test('the SIMD floor division by a constant multiplies (f64x2.mul) and does not divide; by a varying divisor it divides (f64x2.div)', async (t) => {
  const dev = await webasm();
  const F64X2_MUL = [0xfd, 0xf2, 0x01];
  const F64X2_DIV = [0xfd, 0xf3, 0x01];
  const byConstant = new Kernel(dev, 'bytes-const-divisor', function (this: KernelThis, a: Float32Array) {
    return Math.floor((this.thread.x - 6) / this.constants.d) + a[0];
  }, { output: [WIDTH], constants: { d: 7 } });
  t.deepEqual([...(await byConstant.run(none))], Array.from({ length: WIDTH }, (_, x) => Math.floor((x - 6) / 7) + 0));
  t.true(contains(moduleBytes(byConstant), F64X2_MUL));
  t.false(contains(moduleBytes(byConstant), F64X2_DIV));
  const byVarying = new Kernel(dev, 'bytes-varying-divisor', function (this: KernelThis, a: Float32Array) {
    return Math.floor(this.constants.c / (this.thread.x + 1)) + a[0];
  }, { output: [WIDTH], constants: { c: 100 } });
  t.deepEqual([...(await byVarying.run(none))], Array.from({ length: WIDTH }, (_, x) => Math.floor(100 / (x + 1))));
  t.true(contains(moduleBytes(byVarying), F64X2_DIV));
});

test('a contiguous load with every lane active is one v128.load, no bounds test; inside a lane-varying branch it keeps the clamped fallback', async (t) => {
  const dev = await webasm();
  const IF_V128 = [0x04, 0x7b]; // if with a v128 result: the in-bounds test around the 16-byte load
  const a = Float32Array.from({ length: 20 }, (_, i) => 100 + i);
  const plain = new Kernel(dev, 'bytes-contiguous-plain', function (this: KernelThis, x: Float32Array) {
    return x[this.constants.u + this.thread.x];
  }, { output: [16], constants: { u: 4 } });
  t.deepEqual([...(await plain.run(a))], Array.from({ length: 16 }, (_, i) => 104 + i));
  t.false(contains(moduleBytes(plain), IF_V128));
  // lanes with x >= 10 skip the load; their index would run past the end of a (20 + 10 - 10 > 19)
  const guarded = new Kernel(dev, 'bytes-contiguous-guarded', function (this: KernelThis, x: Float32Array) {
    let v = -1;
    if (this.thread.x < 10) v = x[this.constants.u + this.thread.x];
    return v;
  }, { output: [16], constants: { u: 10 } });
  t.deepEqual([...(await guarded.run(a))], Array.from({ length: 16 }, (_, i) => (i < 10 ? 110 + i : -1)));
  t.true(contains(moduleBytes(guarded), IF_V128));
  // after a lane-varying return the retired lanes (here the whole last quad) must not read either
  const retired = new Kernel(dev, 'bytes-contiguous-after-return', function (this: KernelThis, x: Float32Array) {
    if (this.thread.x >= 10) return -1;
    return x[this.constants.u + this.thread.x];
  }, { output: [16], constants: { u: 10 } });
  t.deepEqual([...(await retired.run(a))], Array.from({ length: 16 }, (_, i) => (i < 10 ? 110 + i : -1)));
  t.true(contains(moduleBytes(retired), IF_V128));
});

test('the weight-gradient GEMM (gemm-dot.ts) loads every operand with 16-byte loads: no per-lane gather in its module', async (t) => {
  const dev = await webasm();
  const F32X4_REPLACE_LANE = [0xfd, 0x20]; // the gather's lane inserts
  const [M, N, K] = [4, 6, 64];
  const k = new Kernel(dev, 'bytes-gemm-dot', gemmDotBody, { output: [4, rowPairs(M) * Math.ceil(N / 2), 1], constants: { M, N, K, MP: rowPairs(M), chunk: K, sam: K, sbn: K }, returnType: 'Array(4)' });
  const a = Float32Array.from({ length: M * K }, (_, i) => (i % 7) - 3);
  const b = Float32Array.from({ length: N * K }, (_, i) => (i % 5) - 2);
  const got = unpackDot(await k.run(a, b), M, N, 1);
  const want = Array.from({ length: M * N }, (_, i) => {
    let s = 0;
    for (let kk = 0; kk < K; kk++) s += a[Math.floor(i / N) * K + kk]! * b[(i % N) * K + kk]!;
    return s;
  });
  t.deepEqual([...got], want);
  t.false(contains(moduleBytes(k), F32X4_REPLACE_LANE));
});

test('threaded runs of rows whose width is not a multiple of 4 (SIMD quads and a scalar tail per row) compute every cell', async (t) => {
  const dev = await webasm();
  // 13 x 403 = 5239 cells: past the 4096 that send a kernel to the worker threads, split between the two
  // mid-row (2620 = 201 rows and 7 cells: a scalar head, quads and a tail); rows of 3 cells: no quad at all
  for (const [w, h] of [[13, 403], [3, 1500]] as const) {
    const k = new Kernel(dev, `threaded-rows-${w}`, function (this: KernelThis, x: Float32Array) {
      return x[this.thread.y * this.constants.w + this.thread.x] * 2 + this.thread.x * 1000 + this.thread.y;
    }, { output: [w, h], constants: { w } });
    const x = Float32Array.from({ length: w * h }, (_, i) => i % 97);
    const out = await k.run(x);
    t.deepEqual([...out], Array.from({ length: w * h }, (_, i) => (i % 97) * 2 + (i % w) * 1000 + Math.floor(i / w)), `rows of ${w}`);
    t.is((k as unknown as { k: { kernel: { _lastRunPath: string } } }).k.kernel._lastRunPath, 'threaded');
  }
});

test('strictIntegers on webasm: indices past 2^24 are exact, contiguous and strided, SIMD and scalar', async (t) => {
  const base = 2 ** 24 + 1; // rounds to 2^24 in f32
  const a = new Float32Array(2 ** 24 + 64);
  for (let i = 2 ** 24 - 8; i < a.length; i++) a[i] = i - 2 ** 24; // small integers, exact in f32
  const contiguous = await run('past-2-24-contiguous', function (this: KernelThis, x: Float32Array) {
    return x[this.constants.base + this.thread.x];
  }, WIDTH, { base }, a);
  t.deepEqual([...contiguous], Array.from({ length: WIDTH }, (_, x) => base + x - 2 ** 24));
  const strided = await run('past-2-24-strided', function (this: KernelThis, x: Float32Array) {
    const i = this.constants.base + this.thread.x * 3;
    return x[i];
  }, WIDTH, { base }, a);
  t.deepEqual([...strided], Array.from({ length: WIDTH }, (_, x) => base + 3 * x - 2 ** 24));
});

test('a load of consecutive elements (u + thread.x, or thread.x alone) reads the same values as per-lane loads, up to the end of the array', async (t) => {
  const a = Float32Array.from({ length: 10 }, (_, i) => 100 + i);
  // width 7 with offset 3: the second quad's last lane would read a[10], past the end (it is not an output)
  for (const [name, fn] of [
    ['contiguous-plus', function (this: KernelThis, x: Float32Array) { return x[this.constants.u + this.thread.x]; }],
    ['contiguous-times-one', function (this: KernelThis, x: Float32Array) { const n = this.thread.x; return x[n * this.constants.one + this.constants.u]; }],
    ['per-lane', function (this: KernelThis, x: Float32Array) { const n = this.thread.x; return x[n * this.constants.two - n + this.constants.u]; }],
  ] as [string, Fn][]) {
    const out = await run(name, fn, 7, { u: 3, one: 1, two: 2 }, a);
    t.deepEqual([...out], [103, 104, 105, 106, 107, 108, 109], name);
  }
  const alone = await run('thread-x-alone', function (this: KernelThis, x: Float32Array) { return x[this.thread.x]; }, 10, {}, a);
  t.deepEqual([...alone], [...a]);
});

test('the wasm emitter turns f32.load + f32x4.splat into one v128.load32_splat, and leaves other splats alone', (t) => {
  const { WasmFunctionEmitter } = createRequire(import.meta.url)('gpu.js/src/backend/web-assembly/wasm-builder.js') as {
    WasmFunctionEmitter: new (builder: null, name: string, params: string[], results: string[], locals: string[]) => { bytes: number[]; i32Const(v: number): unknown; f32Load(offset: number): unknown; f32Const(v: number): unknown; f32x4Splat(): unknown };
  };
  const em = new WasmFunctionEmitter(null, 'f', [], [], []);
  em.i32Const(0);
  em.f32Load(300);
  em.f32x4Splat();
  // i32.const 0; v128.load32_splat align=2 offset=300 (uleb 0xac 0x02)
  t.deepEqual(em.bytes, [0x41, 0x00, 0xfd, 0x09, 0x02, 0xac, 0x02]);
  const other = new WasmFunctionEmitter(null, 'g', [], [], []);
  other.f32Const(1);
  other.f32x4Splat();
  t.deepEqual(other.bytes.slice(-2), [0xfd, 0x13]);
});

test('kernels with sharedWorkerPool share one pool of worker threads; one destroyed, the others still run', async (t) => {
  const { GPU } = createRequire(import.meta.url)('gpu.js') as { GPU: new (s: object) => { createKernel(f: unknown, s: object): { (...a: unknown[]): Promise<Float32Array>; kernel: { _pool: unknown }; destroy(): void }; destroy(): Promise<void> | void } };
  const gpu = new GPU({ mode: 'webasm' });
  const settings = { output: [8192], asyncMode: true, sharedWorkerPool: true, strictIntegers: true };
  const plusOne = gpu.createKernel(function (this: KernelThis, a: Float32Array) { return a[this.thread.x] + 1; }, settings);
  const twice = gpu.createKernel(function (this: KernelThis, a: Float32Array) { return a[this.thread.x] * 2; }, settings);
  const a = Float32Array.from({ length: 8192 }, (_, i) => i);
  const [p, q] = await Promise.all([plusOne(a), twice(a)]);
  t.is(p[8191], 8192);
  t.is(q[8191], 16382);
  t.truthy(plusOne.kernel._pool, 'ran threaded (8192 cells)');
  t.is(plusOne.kernel._pool, twice.kernel._pool);
  plusOne.destroy();
  t.is((await twice(a))[100], 200);
  twice.destroy();
  await gpu.destroy();
});
