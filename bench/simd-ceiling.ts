/**
 * The machine's WebAssembly SIMD ceiling, measured rather than assumed: a loop of independent
 * f32x4 multiply-adds (twelve accumulators: fewer leave the floating-point units idle between dependent operations) on one
 * thread, then on as many threads as the machine has cores at once. The benchmark divides the
 * convolutions' GFLOP/s by the all-thread figure (bench/conv-share.ts). Assembled with the wasm
 * emitter of the gpu.js that the project installs (the same instructions gpu.js's webasm kernels use).
 */
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';

interface Emitter {
  localGet(i: number): Emitter;
  localSet(i: number): Emitter;
  f32Const(v: number): Emitter;
  i32Const(v: number): Emitter;
  i32Sub(): Emitter;
  i32Eqz(): Emitter;
  f32x4Splat(): Emitter;
  f32x4Mul(): Emitter;
  f32x4Add(): Emitter;
  f32x4ExtractLane(l: number): Emitter;
  loop(type?: string): Emitter;
  brIf(depth: number): Emitter;
  end(): Emitter;
}
interface Builder {
  addFunction(name: string, sig: { params: string[]; results: string[]; locals: string[] }): Emitter;
  exportFunction(name: string): void;
  toBytes(): Uint8Array;
}

const ACCUMULATORS = 12;
/** Floating-point operations one loop iteration does: a multiply and an add on four lanes, per accumulator. */
const FLOPS_PER_ITERATION = ACCUMULATORS * 4 * 2;

/** A module exporting `fma(iterations) -> f32`. */
export function probeModule(): Uint8Array {
  const { WasmModuleBuilder } = createRequire(import.meta.url)('gpu.js/src/backend/web-assembly/wasm-builder.js') as { WasmModuleBuilder: new () => Builder };
  const b = new WasmModuleBuilder();
  // param 0: iterations; locals 1..ACCUMULATORS the accumulators, then the factor and the addend
  const em = b.addFunction('fma', { params: ['i32'], results: ['f32'], locals: [...Array<string>(ACCUMULATORS + 2).fill('v128')] });
  const factor = ACCUMULATORS + 1;
  const addend = ACCUMULATORS + 2;
  em.f32Const(0.999).f32x4Splat().localSet(factor);
  em.f32Const(0.001).f32x4Splat().localSet(addend);
  for (let i = 1; i <= ACCUMULATORS; i++) em.f32Const(i).f32x4Splat().localSet(i);
  em.loop();
  for (let i = 1; i <= ACCUMULATORS; i++) em.localGet(i).localGet(factor).f32x4Mul().localGet(addend).f32x4Add().localSet(i);
  em.localGet(0).i32Const(1).i32Sub().localSet(0);
  // back to the loop while iterations remain
  em.localGet(0).i32Eqz().i32Eqz().brIf(0);
  em.end();
  em.localGet(1);
  for (let i = 2; i <= ACCUMULATORS; i++) em.localGet(i).f32x4Add();
  em.f32x4ExtractLane(0);
  b.exportFunction('fma');
  return b.toBytes();
}

export interface SimdCeiling {
  /** GFLOP/s of f32x4 multiply-adds on one thread. */
  readonly perThread: number;
  /** The same on `threads` threads at once (the sum). */
  readonly allThreads: number;
  readonly threads: number;
}

/** The part of the WebAssembly global this file uses (the project's TypeScript lib has no WebAssembly types). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

function timeOneThread(bytes: Uint8Array, iterations: number): number {
  const fma = new wasm.Instance(new wasm.Module(bytes)).exports.fma as (n: number) => number;
  fma(iterations / 10);
  const t0 = performance.now();
  fma(iterations);
  return (iterations * FLOPS_PER_ITERATION) / ((performance.now() - t0) / 1000) / 1e9;
}

const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const fma = new WebAssembly.Instance(new WebAssembly.Module(workerData.bytes)).exports.fma;
fma(workerData.iterations / 10);
parentPort.postMessage('ready');
parentPort.once('message', () => { fma(workerData.iterations); parentPort.postMessage('done'); });
`;

/** Measures the ceiling; about a second of work on each core. */
export async function simdCeiling(threads = cpus().length, iterations = 20_000_000): Promise<SimdCeiling> {
  const bytes = probeModule();
  const perThread = timeOneThread(bytes, iterations);
  const workers = Array.from({ length: threads }, () => new Worker(workerSource, { eval: true, workerData: { bytes, iterations } }));
  try {
    await Promise.all(workers.map((w) => new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); })));
    const t0 = performance.now();
    await Promise.all(workers.map((w) => new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); w.postMessage('go'); })));
    const allThreads = (threads * iterations * FLOPS_PER_ITERATION) / ((performance.now() - t0) / 1000) / 1e9;
    return { perThread, allThreads, threads };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
