/**
 * TensorFlow.js peer for the training-step benchmark: the same two-tower
 * AlexNet as packages/core (built from the same ModelSpec), one full training
 * step (forward, backward, SGD-with-momentum update) per iteration on the
 * tfjs-backend-wasm backend (XNNPACK, SIMD) in Node.
 *
 * What differs from a stock tfjs setup, and why:
 *  - tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter kernel, so the filter
 *    gradient of every conv would fail. `registerWasmFallbacks` registers a
 *    plain-JS kernel for it (and for any other kernel in FALLBACKS the wasm
 *    backend lacks), and the result names every fallback that was registered.
 *    Every other kernel of the step (forward and backward) is tfjs's own wasm
 *    kernel; note that tfjs's own Conv2DBackpropInput is a plain C++ loop, not XNNPACK.
 *  - tfjs-core's Node entry point registers no gradients (the union package
 *    @tensorflow/tfjs does that), so `registerGradients` (tfjs-model.ts, shared
 *    with the WebGPU peer) registers tfjs-core's own definitions for the seven
 *    kernels on this graph's backward path.
 *  - In Node, tfjs never picks the multi-threaded wasm binary (its feature
 *    flag says "no threads" whenever IS_NODE). With `threads > 1` we build the
 *    backend ourselves from the package's threaded-SIMD binary, with
 *    worker_threads as the pthreads, and XNNPACK runs that many threads. The
 *    JS fallback kernels, and tfjs's non-XNNPACK kernels, stay single-threaded.
 *
 * The model itself, its gradients and the timing loop are in tfjs-model.ts.
 */
import { createRequire } from 'node:module';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
import type { ModelSpec } from '../../packages/core/src/model/spec.js';
import { MODEL_DESCRIPTION, TFJS_VERSION, registerGradients, timeTfjsSteps, type PeerResult } from './tfjs-model.js';

export { buildTfjsModel, randomBatch, registerGradients, type PeerResult, type TfjsModel } from './tfjs-model.js';

export interface TfjsPeerOptions {
  spec: ModelSpec;
  batch: number;
  warmup: number;
  iters: number;
  /** XNNPACK threads. Default: tfjs's default, which in Node is the single-threaded SIMD binary. */
  threads?: number;
  seed?: number;
}

const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------
// Fallback kernels
// ---------------------------------------------------------------------------

/** Scratch buffers reused across calls of the JS Conv2DBackpropFilter. */
let packA: Float32Array = new Float32Array(0);
let packD: Float32Array = new Float32Array(0);
let accum: Float32Array = new Float32Array(0);

function scratch(buf: Float32Array, n: number): Float32Array {
  return buf.length >= n ? buf : new Float32Array(n);
}

/**
 * dW[kh, kw, ci, co] = sum over (b, oh, ow) of x[b, oh*sh + kh - pt, ow*sw + kw - pl, ci] * dy[b, oh, ow, co]
 * (NHWC x and dy, [kh, kw, ci, co] filter), as a GEMM dW[K, CO] = A^T dY with
 * K = kh*kw*ci and the sum over n = (b, oh, ow). Tiles of `nt` rows of A (im2col of x)
 * and of dY are packed transposed (k-major, co-major) so the 4x4 register-blocked
 * micro-kernel reads both operands contiguously.
 */
export function conv2dBackpropFilterNHWC(
  x: Float32Array, dy: Float32Array, out: Float32Array,
  g: { batch: number; inH: number; inW: number; inC: number; outH: number; outW: number; outC: number;
       fh: number; fw: number; sh: number; sw: number; padTop: number; padLeft: number },
): void {
  const { batch, inH, inW, inC, outH, outW, outC, fh, fw, sh, sw, padTop, padLeft } = g;
  const K = fh * fw * inC;
  const Kp = (K + 3) & ~3;
  const Cp = (outC + 3) & ~3;
  const N = batch * outH * outW;
  // Tile of n so that the packed A tile stays around 256 KiB.
  const NT = Math.max(16, Math.min(512, Math.floor(65536 / Kp) & ~3));
  packA = scratch(packA, Kp * NT);
  packD = scratch(packD, Cp * NT);
  accum = scratch(accum, Kp * Cp);
  const A = packA, D = packD, acc = accum;
  A.fill(0, 0, Kp * NT);
  D.fill(0, 0, Cp * NT);
  acc.fill(0, 0, Kp * Cp);
  const hw = outH * outW;

  for (let n0 = 0; n0 < N; n0 += NT) {
    const nt = Math.min(NT, N - n0);
    // Pack: D[co*NT + j] = dy[n0 + j, co]; A[k*NT + j] = im2col(x)[n0 + j, k].
    for (let j = 0; j < nt; j++) {
      const n = n0 + j;
      const dyOff = n * outC;
      for (let co = 0; co < outC; co++) D[co * NT + j] = dy[dyOff + co];
      const b = (n / hw) | 0;
      const r = n - b * hw;
      const oh = (r / outW) | 0;
      const ow = r - oh * outW;
      for (let kh = 0; kh < fh; kh++) {
        const ih = oh * sh - padTop + kh;
        const rowOk = ih >= 0 && ih < inH;
        for (let kw = 0; kw < fw; kw++) {
          const iw = ow * sw - padLeft + kw;
          const kBase = (kh * fw + kw) * inC;
          if (rowOk && iw >= 0 && iw < inW) {
            const xOff = ((b * inH + ih) * inW + iw) * inC;
            for (let ci = 0; ci < inC; ci++) A[(kBase + ci) * NT + j] = x[xOff + ci];
          } else {
            for (let ci = 0; ci < inC; ci++) A[(kBase + ci) * NT + j] = 0;
          }
        }
      }
    }
    if (nt < NT) {
      // Last, partial tile: clear the stale columns j >= nt so they add nothing.
      for (let k = 0; k < K; k++) A.fill(0, k * NT + nt, (k + 1) * NT);
      for (let co = 0; co < outC; co++) D.fill(0, co * NT + nt, (co + 1) * NT);
    }
    // Micro-kernel: 4 rows of A^T x 4 columns of dY, dot products over the tile.
    for (let k = 0; k < Kp; k += 4) {
      const a0 = k * NT, a1 = a0 + NT, a2 = a1 + NT, a3 = a2 + NT;
      for (let c = 0; c < Cp; c += 4) {
        const d0 = c * NT, d1 = d0 + NT, d2 = d1 + NT, d3 = d2 + NT;
        let s00 = 0, s01 = 0, s02 = 0, s03 = 0;
        let s10 = 0, s11 = 0, s12 = 0, s13 = 0;
        let s20 = 0, s21 = 0, s22 = 0, s23 = 0;
        let s30 = 0, s31 = 0, s32 = 0, s33 = 0;
        for (let j = 0; j < nt; j++) {
          const x0 = A[a0 + j], x1 = A[a1 + j], x2 = A[a2 + j], x3 = A[a3 + j];
          const y0 = D[d0 + j], y1 = D[d1 + j], y2 = D[d2 + j], y3 = D[d3 + j];
          s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3;
          s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3;
          s20 += x2 * y0; s21 += x2 * y1; s22 += x2 * y2; s23 += x2 * y3;
          s30 += x3 * y0; s31 += x3 * y1; s32 += x3 * y2; s33 += x3 * y3;
        }
        let o = k * Cp + c;
        acc[o] += s00; acc[o + 1] += s01; acc[o + 2] += s02; acc[o + 3] += s03; o += Cp;
        acc[o] += s10; acc[o + 1] += s11; acc[o + 2] += s12; acc[o + 3] += s13; o += Cp;
        acc[o] += s20; acc[o + 1] += s21; acc[o + 2] += s22; acc[o + 3] += s23; o += Cp;
        acc[o] += s30; acc[o + 1] += s31; acc[o + 2] += s32; acc[o + 3] += s33;
      }
    }
  }
  for (let k = 0; k < K; k++) {
    const src = k * Cp, dst = k * outC;
    for (let co = 0; co < outC; co++) out[dst + co] = acc[src + co];
  }
}

const conv2DBackpropFilterWasm: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const be = backend as BackendWasm;
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new Error(`Conv2DBackpropFilter fallback: only NHWC, got ${dataFormat}`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) {
    throw new Error('Conv2DBackpropFilter fallback: dilations are not supported');
  }
  // Allocate first: views into the wasm heap are taken after the last allocation.
  const out = be.makeOutput(filterShape, 'float32');
  const xs = be.typedArrayFromHeap(x) as Float32Array;
  const dys = be.typedArrayFromHeap(dy) as Float32Array;
  const os = be.typedArrayFromHeap(out) as Float32Array;
  conv2dBackpropFilterNHWC(xs, dys, os, {
    batch: info.batchSize, inH: info.inHeight, inW: info.inWidth, inC: info.inChannels,
    outH: info.outHeight, outW: info.outWidth, outC: info.outChannels,
    fh: info.filterHeight, fw: info.filterWidth, sh: info.strideHeight, sw: info.strideWidth,
    padTop: info.padInfo.top, padLeft: info.padInfo.left,
  });
  return out;
};

/** JS implementations for kernels this graph needs that tfjs-backend-wasm may lack. */
const FALLBACKS: Record<string, tf.KernelFunc> = {
  Conv2DBackpropFilter: conv2DBackpropFilterWasm,
};

/** Registers the JS fallback kernels the wasm backend lacks; returns their names (idempotent). */
export function registerWasmFallbacks(): string[] {
  const registered: string[] = [];
  for (const [kernelName, kernelFunc] of Object.entries(FALLBACKS)) {
    const existing = tf.getKernel(kernelName, 'wasm');
    if (existing === undefined) {
      tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
      registered.push(kernelName);
    } else if (existing.kernelFunc === kernelFunc) {
      registered.push(kernelName);
    }
  }
  return registered;
}

// ---------------------------------------------------------------------------
// Backend set-up (single- or multi-threaded)
// ---------------------------------------------------------------------------

let backendThreads: number | null = null;
let backendVariant = '';

interface EmscriptenModule {
  cwrap: (name: string, ret: string | null, args: string[]) => (...a: number[]) => unknown;
  [k: string]: unknown;
}

/** The pthread worker script, written once per process (Node's Worker needs a file). */
let workerFile: string | null = null;

/**
 * Builds the wasm backend ourselves from the package's Emscripten modules. For
 * threads > 1 this is the multi-threaded backend tfjs does not build in Node:
 * the threaded-SIMD module, given file paths (not the Blob URLs tfjs uses in
 * browsers) for its worker script and main script so that Node's
 * worker_threads can load them. For threads <= 1 it is the plain SIMD module,
 * as tfjs's own init() builds it in Node.
 */
async function createWasmBackend(threads: number): Promise<BackendWasm> {
  const wasmDir = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out');
  let module: EmscriptenModule;
  if (threads > 1) {
    const mainScript = join(wasmDir, 'tfjs-backend-wasm-threaded-simd.js');
    const factory = require(mainScript) as (cfg: object) => Promise<EmscriptenModule>;
    const { wasmWorkerContents } = require(join(wasmDir, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
    if (workerFile === null) {
      workerFile = join(mkdtempSync(join(tmpdir(), 'tfjs-wasm-')), 'tfjs-backend-wasm-threaded-simd.worker.cjs');
      // The contents came through a template literal: its "\n" escapes are real newlines
      // now, inside string literals. Re-escape them, as tfjs does before making its Blob.
      writeFileSync(workerFile, wasmWorkerContents.replace(/\n/g, '\\n'));
    }
    const worker = workerFile;
    // tfjs's C++ caps the XNNPACK pool at emscripten_num_logical_cores() / 2
    // (it assumes two hyper-threads per core), read from os.cpus() in Node when
    // the module initialises. Let it see enough cores for `threads` meanwhile.
    const os = require('node:os') as typeof import('node:os');
    const cpus = os.cpus;
    const logical = cpus().length;
    if (threads * 2 > logical) os.cpus = () => Array.from({ length: threads * 2 }, (_, i) => cpus()[i % logical]);
    try {
      module = await factory({
        mainScriptUrlOrBlob: mainScript,
        locateFile: (path: string) => (path.endsWith('.worker.js') ? worker : join(wasmDir, path)),
      });
    } finally {
      os.cpus = cpus;
    }
  } else {
    const factory = require(join(wasmDir, 'tfjs-backend-wasm.js')) as (cfg: object) => Promise<EmscriptenModule>;
    module = await factory({
      locateFile: (path: string) => join(wasmDir, path.endsWith('.wasm') ? 'tfjs-backend-wasm-simd.wasm' : path),
    });
  }
  // The same bridge tfjs's own init() attaches.
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  // Read by the BackendWasm constructor (init_with_threads_count), which starts the pool.
  tfwasm.setThreadsCount(Math.max(1, threads));
  const backend = new tfwasm.BackendWasm(module as unknown as BackendWasm['wasm']);
  // The pool's pthreads wait forever on their workers, which Emscripten keeps
  // ref'd: unref them so that the process can exit when the caller is done.
  const pthread = module.PThread as { runningWorkers?: { unref(): void }[]; unusedWorkers?: { unref(): void }[] } | undefined;
  for (const w of [...(pthread?.runningWorkers ?? []), ...(pthread?.unusedWorkers ?? [])]) w.unref();
  return backend;
}

async function setUpBackend(threads: number | undefined): Promise<void> {
  const want = threads ?? 0; // 0: tfjs's default
  if (backendThreads !== want) {
    if (backendThreads === null && want <= 1) {
      // The stock registration from importing @tensorflow/tfjs-backend-wasm
      // (in Node: the SIMD binary, one thread). Point it at the .wasm files in
      // the package's dist/ explicitly so another cwd or a bundler cannot break the look-up.
      tfwasm.setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/');
      backendVariant = 'SIMD';
    } else {
      // Replace the backend (registered kernels and fallbacks stay: they are keyed by name).
      if (tf.findBackendFactory('wasm') != null) tf.removeBackend('wasm');
      tf.registerBackend('wasm', () => createWasmBackend(want), 2);
      backendVariant = want > 1 ? 'SIMD, threaded binary on worker_threads' : 'SIMD';
    }
  }
  const ok = await tf.setBackend('wasm');
  if (!ok) throw new Error('tfjs: could not initialise the wasm backend');
  await tf.ready();
  backendThreads = want;
}

export async function setUpTfjsWasm(threads?: number): Promise<{ fallbacks: string[]; gradients: string[]; threads: number; variant: string }> {
  const fallbacks = registerWasmFallbacks();
  const gradients = registerGradients();
  await setUpBackend(threads);
  return { fallbacks, gradients, threads: tfwasm.getThreadsCount(), variant: backendVariant };
}

export async function runTfjsPeer(opts: TfjsPeerOptions): Promise<PeerResult> {
  const { fallbacks, gradients, threads, variant } = await setUpTfjsWasm(opts.threads);
  const timed = await timeTfjsSteps(opts);
  const description =
    `TensorFlow.js ${TFJS_VERSION} wasm backend (XNNPACK, ${variant}, ${threads} thread${threads === 1 ? '' : 's'}), ` +
    `${MODEL_DESCRIPTION}, ` +
    `fallback JS kernels: ${fallbacks.length > 0 ? fallbacks.join(', ') : 'none'}` +
    (gradients.length > 0 ? `; gradients registered here (tfjs-core's Node bundle ships none): ${gradients.join(', ')}` : '');
  return { ...timed, description, fallbacks, threads };
}
