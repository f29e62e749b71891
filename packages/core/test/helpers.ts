/** Shared test helpers: random data, comparisons, finite differences in float64. */
import type { ExecutionContext } from 'ava';
import { Rng } from '../src/random.js';
import { Device, type BackendMode, type DeviceTensor } from '../src/device.js';
import { maxRelError as coreMaxRelError } from '../src/reference/compare.js';
import { packsWithMomentum, type Sgd, type SgdHyper } from '../src/kernels/sgd.js';

export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => (r.next() * 2 - 1) * scale);
}

export function f64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a as ArrayLike<number>);
}

/** core's maxRelError with the kernel tests' floor: values of order 1, float32 arithmetic. */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>, atol = 1e-3): number {
  return coreMaxRelError(a, b, atol);
}

/** A kernel result on the host (read back from the GPU when it stayed there). */
export async function host(x: DeviceTensor | ArrayLike<number>): Promise<ArrayLike<number>> {
  if (x instanceof Float32Array || !('toArray' in x)) return x as ArrayLike<number>;
  return (await x.toArray()) as Float32Array;
}

export { scaledError } from '../src/reference/compare.js';
import { scaledError } from '../src/reference/compare.js';

/** assertClose on the tensor's scale (scaledError). */
export async function assertScaledClose(t: ExecutionContext, got: DeviceTensor | ArrayLike<number>, want: DeviceTensor | ArrayLike<number>, tol: number, what: string): Promise<void> {
  const e = scaledError(await host(got), await host(want));
  t.true(e < tol, `${what}: error ${e.toExponential(2)} of its largest value >= ${tol}`);
}

export async function assertClose(t: ExecutionContext, got: DeviceTensor | ArrayLike<number>, want: DeviceTensor | ArrayLike<number>, tol: number, what: string): Promise<void> {
  const e = maxRelError(await host(got), await host(want));
  t.true(e < tol, `${what}: relative error ${e.toExponential(2)} >= ${tol}`);
}

/**
 * Central finite differences of a scalar function of x in float64, at `count`
 * positions chosen by seed; returns the positions and the numerical gradient.
 */
export function finiteDifferences(f: (x: Float64Array) => number, x: Float64Array, count: number, seed: number, h = 1e-6): { idx: number[]; grad: number[] } {
  const r = new Rng(seed);
  const idx: number[] = [];
  const grad: number[] = [];
  for (let i = 0; i < count; i++) {
    const j = r.int(x.length);
    const old = x[j]!;
    x[j] = old + h;
    const fp = f(x);
    x[j] = old - h;
    const fm = f(x);
    x[j] = old;
    idx.push(j);
    grad.push((fp - fm) / (2 * h));
  }
  return { idx, grad };
}

/** L = sum(y * g) for a fixed random g: its gradient with respect to y is g. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * The backend the kernel tests run on: webasm here and in CI; ALEXNET_TEST_BACKEND=webgpu
 * runs the same tests on a GPU (bench/gpu-bench.sh) or the software
 * adapter (scripts/test-webgpu.sh, npm test's second half).
 */
export const testBackend: BackendMode = process.env.ALEXNET_TEST_BACKEND === 'webgpu' ? 'webgpu' : 'webasm';

let shared: Promise<Device> | null = null;
/** One device per test file; a kernel that silently falls back to cpu fails the test. */
export function testDevice(): Promise<Device> {
  shared ??= Device.create(testBackend, { onFallback: 'throw' });
  return shared;
}

/**
 * One SGD step from host arrays, as the tower takes it: on webgpu with weights and momentum packed in
 * one [w; v] tensor where they fit (packsWithMomentum), else apart. The new w and v on the host.
 */
export async function sgdStep(dev: Device, k: Sgd, w: Float32Array, v: Float32Array, g: DeviceTensor, h: SgdHyper): Promise<{ w: Float32Array; v: Float32Array; packed: boolean }> {
  const n = w.length;
  if (packsWithMomentum(dev, n) && k.packs) {
    const both = new Float32Array(2 * n);
    both.set(w);
    both.set(v, n);
    const wv = await dev.upload(both);
    const next = await k.step(wv, wv, g, h);
    const out = await dev.toHost(next.w, 2 * n);
    return { w: out.slice(0, n), v: out.slice(n), packed: true };
  }
  const next = await k.step(w, v, g, h);
  return { w: await dev.toHost(next.w, n), v: await dev.toHost(next.v, n), packed: false };
}
