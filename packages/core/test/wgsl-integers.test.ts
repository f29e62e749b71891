/**
 * The WGSL that gpu.js writes for our kernels on webgpu does its index arithmetic in i32, so that
 * tensors past 2^24 floats (f32's exact-integer range) are addressed exactly. This is the text of the
 * shaders, produced without a GPU: gpu.js translates and assembles WGSL before it asks for a device.
 * The behaviour comes from gpu.js's `strictIntegers` setting as patches/gpu.js+2.24.1.patch extends it.
 */
import test from 'ava';
import { createRequire } from 'node:module';
import type { Device } from '../src/device.js';
import { Lrn } from '../src/kernels/lrn.js';
import { MaxPool } from '../src/kernels/maxpool.js';
import { Col2im, Im2col } from '../src/kernels/im2col.js';
import { Gemm, gemmShape } from '../src/kernels/gemm.js';
import { Relu } from '../src/kernels/relu.js';
import { Dropout } from '../src/kernels/dropout.js';
import { Flatten } from '../src/kernels/flatten.js';
import { RowSum } from '../src/kernels/row-sum.js';
import { SoftmaxCrossEntropy } from '../src/kernels/softmax-xent.js';
import { Sgd } from '../src/kernels/sgd.js';

interface WebGPUKernelLike {
  compiledSource: string | null;
  build(...args: unknown[]): Promise<void>;
}
const { WebGPUKernel } = createRequire(import.meta.url)('gpu.js') as { WebGPUKernel: new (source: string, settings: object) => WebGPUKernelLike };

/** The WGSL for a kernel body and gpu.js settings, given sample arguments. */
function wgsl(fn: string, settings: object, args: unknown[]): string {
  const k = new WebGPUKernel(fn, settings);
  // the device part of the build fails without an adapter; the WGSL is written before it
  k.build(...args).catch(() => undefined);
  if (!k.compiledSource) throw new Error('gpu.js wrote no WGSL');
  return k.compiledSource;
}

/** The argument lists of every array read (get_user_x(z, y, x)) in a WGSL text. */
function accessorArguments(code: string): string[] {
  const out: string[] = [];
  for (const m of code.matchAll(/get_user_\w+\(/g)) {
    let depth = 1;
    let i = m.index + m[0].length;
    const start = i;
    for (; depth > 0; i++) depth += code[i] === '(' ? 1 : code[i] === ')' ? -1 : 0;
    out.push(code.slice(start, i - 1));
  }
  return out;
}

/** Only the body of main() and helper functions: what the kernel's own code became. */
function kernelCode(source: string): string {
  return source.slice(source.indexOf('fn main'));
}

test('strictIntegers: integer variables stay i32, Math.floor of an integer quotient is an exact i32 division, % and min/max of integers are i32', (t) => {
  const body = String(function (this: { thread: { x: number }; constants: { p: number } }, a: Float32Array, n0: number) {
    const i = this.thread.x + n0;
    const q = Math.floor(i / this.constants.p);
    const r = i % this.constants.p;
    const m = Math.min(q, 7);
    return a[q * this.constants.p + r] + m + i / 2;
  });
  const strict = kernelCode(wgsl(body, { output: [8], constants: { p: 3 }, strictIntegers: true }, [new Float32Array(8), 2]));
  t.regex(strict, /var user_i : i32 = /);
  t.regex(strict, /var user_q : i32 = i32\(_floor_div_i32\(/);
  t.regex(strict, /var user_r : i32 = .*%/);
  t.regex(strict, /var user_m : i32 = i32\(min\(/);
  t.notRegex(strict, /floor\(\(f32\(/, 'no integer quotient floored in f32');
  t.regex(strict, /f32\(user_i\)\/2\.0/, 'a plain division stays fractional, as in JavaScript');
  // without the setting gpu.js keeps its float typing (other users of the library see no change)
  const loose = kernelCode(wgsl(body, { output: [8], constants: { p: 3 } }, [new Float32Array(8), 2]));
  t.regex(loose, /var user_i : f32 = /);
  t.notRegex(loose, /_floor_div_i32/);
});

test('every kernel of the model indexes in i32 on webgpu: no thread index or integer quotient goes through f32', (t) => {
  const created: { name: string; fn: string; settings: Record<string, unknown> }[] = [];
  let current = '';
  // a device that records what the kernels ask gpu.js for instead of running them
  const recorder = {
    mode: 'webgpu',
    resident: true,
    maxKernelFloats: 1 << 28,
    gpu: {
      createKernel(fn: (...a: unknown[]) => unknown, settings: Record<string, unknown>) {
        created.push({ name: current, fn: String(fn), settings });
        return () => undefined;
      },
    },
    adopt: () => {},
  } as unknown as Device;
  const make = (name: string, build: () => unknown) => {
    current = name;
    build();
  };
  make('lrn', () => new Lrn(recorder, 'lrn', { type: 'lrn', name: 'lrn', size: 5, alpha: 1e-4, beta: 0.75, k: 2 }, 48, 128 * 55 * 55));
  make('lrn-relu', () => new Lrn(recorder, 'lrn', { type: 'lrn', name: 'lrn', size: 3, alpha: 1e-4, beta: 0.75, k: 2 }, 48, 128 * 55 * 55, true));
  make('maxpool', () => new MaxPool(recorder, 'pool', 48 * 128, 55, 55, 3, 2));
  make('maxpool-relu', () => new MaxPool(recorder, 'pool', 128 * 128, 13, 13, 3, 2, true));
  const g = { C: 3, N: 30, NT: 128, H: 227, W: 227, R: 11, S: 4, P: 0, OH: 55, OW: 55 };
  make('im2col', () => new Im2col(recorder, 'im2col', g));
  make('col2im', () => new Col2im(recorder, 'col2im', { ...g, NT: 30 }, false));
  make('gemm', () => new Gemm(recorder, 'gemm', gemmShape(2048, 128, 9216, false, true), { relu: true }));
  make('relu', () => new Relu(recorder, 'relu', 1000));
  make('dropout', () => new Dropout(recorder, 'dropout', 1000));
  make('dropout-relu', () => new Dropout(recorder, 'dropout', 1000, true));
  make('gemm-masked', () => new Gemm(recorder, 'gemm', gemmShape(2048, 128, 9216, false, true), { relu: true, masked: true }));
  // four rows of a column, K split (the paper's conv1 weight gradient at batch 128), and unsplit with B row-major (conv2's forward)
  make('gemm-rows-split', () => new Gemm(recorder, 'gemm', gemmShape(48, 363, 387200, false, true)));
  make('gemm-rows', () => new Gemm(recorder, 'gemm', gemmShape(128, 93312, 1200), { relu: true }));
  make('flatten', () => new Flatten(recorder, 'flatten', 128, 128, 36));
  make('rowsum', () => new RowSum(recorder, 'rowsum', 48, 1000));
  make('softmax', () => new SoftmaxCrossEntropy(recorder, 'loss', 1000, 128));
  make('sgd', () => new Sgd(recorder, 'sgd', 1000));
  t.true(created.length >= 15, `${created.length} kernels`);
  for (const k of created) {
    t.is(k.settings.strictIntegers, true, `${k.name}: asked for strictIntegers`);
    // sample arguments: arrays, but the one integer argument (im2col's first image)
    const params = /\(([^)]*)\)/.exec(k.fn)![1]!.split(',').map((p) => p.trim().split(/[\s:]/)[0]!).filter((p) => p !== 'this');
    const args = params.map((p) => (p === 'n0' ? 4 : new Float32Array(64)));
    const code = kernelCode(wgsl(k.fn, k.settings, args));
    t.notRegex(code, /f32\(i32\(threadGid/, `${k.name}: a thread index converted to f32\n${code}`);
    t.notRegex(code, /floor\(\(f32\(/, `${k.name}: an integer quotient floored in f32\n${code}`);
    for (const index of accessorArguments(code)) t.false(index.includes('f32('), `${k.name}: an array index computed in f32: ${index}`);
  }
  const rows = created.find((k) => k.name === 'gemm-rows')!;
  t.is(rows.settings.componentsAsRows, true);
  const rowsCode = wgsl(rows.fn, rows.settings, [new Float32Array(64), new Float32Array(64), new Float32Array(64), new Float32Array(64)]);
  t.regex(rowsCode, /@workgroup_size\(64, 1, 1\)/, 'the four-rows GEMM runs 64 columns a workgroup');
  t.regex(kernelCode(rowsCode), /result\[\(\(i32\(threadGid\.z\) \* i32\(params\.outputY\) \+ i32\(threadGid\.y\)\) \* 4 \+ 3\) \* i32\(params\.outputX\) \+ i32\(threadGid\.x\)\]/, 'component 3 of thread (x, y, z) written to row 4y + 3');
  t.true(created.some((k) => k.name === 'gemm-rows-split' && (k.settings.output as number[]).length === 3), 'the split GEMM runs its chunks on z');
  const im2col = created.find((k) => k.name === 'im2col')!;
  t.regex(kernelCode(wgsl(im2col.fn, im2col.settings, [new Float32Array(64), 4])), /_floor_div_i32/, 'im2col decomposes its indices by exact integer division');
});

test('workgroupShape: a 2D kernel in workgroups of x by y threads; more than 256 threads, or not whole numbers, refused', (t) => {
  const body = String(function (this: { thread: { x: number; y: number } }, a: Float32Array) {
    return a[this.thread.y * 4 + this.thread.x]!;
  });
  t.regex(wgsl(body, { output: [4, 4], workgroupShape: [32, 2], strictIntegers: true }, [new Float32Array(16)]), /@workgroup_size\(32, 2, 1\)/);
  t.regex(wgsl(body, { output: [4, 4], strictIntegers: true }, [new Float32Array(16)]), /@workgroup_size\(8, 8, 1\)/);
  for (const bad of [[32, 16], [0, 4], [2.5, 2]]) {
    t.throws(() => wgsl(body, { output: [4, 4], workgroupShape: bad, strictIntegers: true }, [new Float32Array(16)]), { message: /workgroupShape/ });
  }
});
