/**
 * The webgpu GEMM kernels (gemm.ts's Gemm picks one): the result stays on the device as a plain [M][N]
 * array, one or four outputs a thread (webgpuGemmKind), K split along a third thread axis where the
 * outputs are too few to keep a GPU busy (webgpuSplits) and the chunks added by a second kernel.
 * Operands are addressed with strides as in gemm.ts: A(m, k) = a[m*sam + k*sak], B(k, n) = b[k*sbk + n*sbn].
 * Each body repeats the bias, ReLU and mask steps: a gpu.js kernel is one self-contained function.
 */
import type { Device } from '../device.js';
import { Kernel, type KernelThis } from './kernel-runner.js';
import { EnvSettingError } from '../env-setting-error.js';
import type { GemmShape } from './gemm-shape.js';

// webgpu: four consecutive outputs n .. n+3 of one row m per thread, so that one load of A(m, k)
// serves four products and four sums run side by side. Returned as Array(4), the lanes land
// packed [m][n/4][lane] = [m][n]: a plain [M][N] array (N a multiple of 4) that the next kernel
// reads like any other (the gpu.js patch lets a vector result pass on as a kernel argument).
const gemmRowQuadBody = function (this: KernelThis, a: Float32Array, b: Float32Array, bias: Float32Array, mask: Float32Array) {
  const n = this.thread.x * 4;
  const m = this.thread.y;
  const sak = this.constants.sak;
  const sbk = this.constants.sbk;
  const sbn = this.constants.sbn;
  // split-K: thread.z sums its chunk of K (chunk = K when unsplit); the bias goes into chunk 0
  const k0 = this.thread.z * this.constants.chunk;
  const k1 = Math.min(k0 + this.constants.chunk, this.constants.K);
  let s0 = 0;
  if (this.thread.z === 0) {
    s0 = bias[m];
  }
  let s1 = s0;
  let s2 = s0;
  let s3 = s0;
  let ai = m * this.constants.sam + k0 * sak;
  let bi = n * sbn + k0 * sbk;
  for (let k = k0; k < k1; k++) {
    const av = a[ai];
    s0 += av * b[bi];
    s1 += av * b[bi + sbn];
    s2 += av * b[bi + 2 * sbn];
    s3 += av * b[bi + 3 * sbn];
    ai += sak;
    bi += sbk;
  }
  if (this.constants.relu === 1) {
    s0 = Math.max(s0, 0);
    s1 = Math.max(s1, 0);
    s2 = Math.max(s2, 0);
    s3 = Math.max(s3, 0);
  }
  if (this.constants.masked === 1) {
    const mi = m * this.constants.N + n;
    s0 *= mask[mi];
    s1 *= mask[mi + 1];
    s2 *= mask[mi + 2];
    s3 *= mask[mi + 3];
  }
  return [s0, s1, s2, s3];
};

// webgpu: four rows m .. m+3 of one column n per thread, in workgroups of 64 threads along x (one row
// quad, 64 columns). Threads next to each other take columns next to each other, so where B is row-major
// (sbn = 1) a warp's 32 B(k, n) are one contiguous 128-byte run (one coalesced load) and so are its
// outputs, and each of the four A(m, k) is one value for the whole warp (a broadcast): 8 sectors of
// memory traffic a warp per k where four columns of a row in 8 x 8 workgroups (gemmRowQuadBody) move 20.
// The four results land in four rows of a plain [M][N] array (gpu.js's componentsAsRows, patch item 13).
const gemmColQuadBody = function (this: KernelThis, a: Float32Array, b: Float32Array, bias: Float32Array, mask: Float32Array) {
  const n = this.thread.x;
  const m = this.thread.y * 4;
  const sam = this.constants.sam;
  const sak = this.constants.sak;
  const sbk = this.constants.sbk;
  const k0 = this.thread.z * this.constants.chunk;
  const k1 = Math.min(k0 + this.constants.chunk, this.constants.K);
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  if (this.thread.z === 0) {
    s0 = bias[m];
    s1 = bias[m + 1];
    s2 = bias[m + 2];
    s3 = bias[m + 3];
  }
  let a0 = m * sam + k0 * sak;
  let a1 = a0 + sam;
  let a2 = a1 + sam;
  let a3 = a2 + sam;
  let bi = n * this.constants.sbn + k0 * sbk;
  for (let k = k0; k < k1; k++) {
    const bv = b[bi];
    s0 += a[a0] * bv;
    s1 += a[a1] * bv;
    s2 += a[a2] * bv;
    s3 += a[a3] * bv;
    a0 += sak;
    a1 += sak;
    a2 += sak;
    a3 += sak;
    bi += sbk;
  }
  if (this.constants.relu === 1) {
    s0 = Math.max(s0, 0);
    s1 = Math.max(s1, 0);
    s2 = Math.max(s2, 0);
    s3 = Math.max(s3, 0);
  }
  if (this.constants.masked === 1) {
    const N = this.constants.N;
    const mi = m * N + n;
    s0 *= mask[mi];
    s1 *= mask[mi + N];
    s2 *= mask[mi + 2 * N];
    s3 *= mask[mi + 3 * N];
  }
  return [s0, s1, s2, s3];
};

// webgpu, one output per thread: where neither four rows nor four columns fit (or ALEXNET_WEBGPU_GEMM=scalar).
const gemmScalarBody = function (this: KernelThis, a: Float32Array, b: Float32Array, bias: Float32Array, mask: Float32Array) {
  const n = this.thread.x;
  const m = this.thread.y;
  const sak = this.constants.sak;
  const sbk = this.constants.sbk;
  const k0 = this.thread.z * this.constants.chunk;
  const k1 = Math.min(k0 + this.constants.chunk, this.constants.K);
  let s = 0;
  if (this.thread.z === 0) {
    s = bias[m];
  }
  let ai = m * this.constants.sam + k0 * sak;
  let bi = n * this.constants.sbn + k0 * sbk;
  for (let k = k0; k < k1; k++) {
    s += a[ai] * b[bi];
    ai += sak;
    bi += sbk;
  }
  if (this.constants.relu === 1) s = Math.max(s, 0);
  if (this.constants.masked === 1) s *= mask[m * this.constants.N + n];
  return s;
};

// webgpu split-K: the chunks' partial sums [S][M][N] added in chunk order, then the ReLU and the mask
const splitSumBody = function (this: KernelThis, raw: Float32Array, mask: Float32Array) {
  const i = this.thread.y * this.constants.N + this.thread.x;
  let s = raw[i];
  for (let z = 1; z < this.constants.S; z++) s += raw[z * this.constants.MN + i];
  if (this.constants.relu === 1) s = Math.max(s, 0);
  if (this.constants.masked === 1) s *= mask[i];
  return s;
};

/**
 * webgpu: the threads a GEMM should have before K is split across more of them. A GPU hides the latency of
 * its loads with many threads in flight (an H200 holds 132 x 2,048); a weight gradient has few outputs and a
 * K of the whole batch's positions (the paper's conv1 at batch 128: 48 x 363 outputs, K = 387,200), so a
 * thread per output leaves most of the GPU idle, each thread walking all of K alone.
 */
export const WEBGPU_SPLIT_THREADS = 1 << 17;
/** webgpu: the shortest chunk of K a thread sums when K is split. */
export const WEBGPU_MIN_CHUNK = 256;

/**
 * The chunks K is cut into on webgpu for a GEMM of `threads` threads: enough to reach WEBGPU_SPLIT_THREADS,
 * none shorter than WEBGPU_MIN_CHUNK; 1 where the threads suffice, K is short, or ALEXNET_WEBGPU_SPLIT_K=off.
 */
export function webgpuSplits(threads: number, K: number, env: NodeJS.ProcessEnv = process.env): number {
  const v = env.ALEXNET_WEBGPU_SPLIT_K;
  if (v !== undefined && v !== '' && v !== 'on' && v !== 'off') throw new EnvSettingError(`ALEXNET_WEBGPU_SPLIT_K=${v}: expected on or off`);
  if (v === 'off' || threads >= WEBGPU_SPLIT_THREADS) return 1;
  const wanted = Math.min(Math.ceil(WEBGPU_SPLIT_THREADS / threads), Math.floor(K / WEBGPU_MIN_CHUNK));
  if (wanted <= 1) return 1;
  // every chunk non-empty
  return Math.ceil(K / Math.ceil(K / wanted));
}

/** 'rows': four rows of one column a thread; 'quad': four columns of one row; 'scalar': one output. */
export type WebGPUGemmKind = 'rows' | 'quad' | 'scalar';

const gemmKinds: readonly WebGPUGemmKind[] = ['rows', 'quad', 'scalar'];

/**
 * Which webgpu GEMM computes an [M][N] output from `shape`: four rows of a column per thread where M is a
 * multiple of 4 and B is row-major (sbn = 1: the lanes' loads of B are contiguous), else four columns of a
 * row where N is a multiple of 4, else one output. ALEXNET_WEBGPU_GEMM=rows|quad|scalar asks for one kind
 * wherever it fits (for comparing them in the benchmark); where it does not, the next that fits runs.
 */
export function webgpuGemmKind(shape: Pick<GemmShape, 'M' | 'N' | 'sbn'>, env: NodeJS.ProcessEnv = process.env): WebGPUGemmKind {
  const forced = env.ALEXNET_WEBGPU_GEMM;
  if (forced !== undefined && !gemmKinds.includes(forced as WebGPUGemmKind)) throw new EnvSettingError(`ALEXNET_WEBGPU_GEMM=${forced}: expected rows, quad or scalar`);
  const fits: Record<WebGPUGemmKind, boolean> = { rows: shape.M % 4 === 0, quad: shape.N % 4 === 0, scalar: true };
  // in order of preference; scalar always fits
  const order: WebGPUGemmKind[] =
    forced === 'scalar' ? ['scalar'] : forced === 'rows' || (forced === undefined && fits.rows && shape.sbn === 1) ? ['rows', 'quad', 'scalar'] : ['quad', 'rows', 'scalar'];
  return order.find((k) => fits[k])!;
}

/** The kernels of one webgpu GEMM: the product (its chunks of K along z when split) and the chunks' sum. */
export interface WebGPUGemmKernels {
  readonly kind: WebGPUGemmKind;
  readonly splits: number;
  readonly kernel: Kernel;
  /** With K split: adds the chunks' partial sums, then the ReLU and the mask. */
  readonly splitSum: Kernel | null;
}

/** The kernels of a webgpu GEMM for `shape` (`splitK: false`: one chunk whatever the threads). */
export function webgpuGemmKernels(
  device: Device,
  name: string,
  shape: GemmShape,
  o: { splitK: boolean; relu: boolean; masked: boolean; webgpuKind?: WebGPUGemmKind },
): WebGPUGemmKernels {
  const { M, N, K } = shape;
  const kind = webgpuGemmKind(shape, o.webgpuKind === undefined ? process.env : { ALEXNET_WEBGPU_GEMM: o.webgpuKind });
  // the threads' grid [x, y] of each kind; K split along z where they are too few (webgpuSplits)
  const grid: [number, number] = kind === 'rows' ? [N, M / 4] : kind === 'quad' ? [N / 4, M] : [N, M];
  const splits = o.splitK ? webgpuSplits(grid[0] * grid[1], K) : 1;
  const split = splits > 1;
  const chunk = Math.ceil(K / splits);
  // with K split, the ReLU and the mask wait for the chunks' sum
  const constants = { K, N, chunk, sam: shape.sam, sak: shape.sak, sbk: shape.sbk, sbn: shape.sbn, relu: o.relu && !split ? 1 : 0, masked: o.masked && !split ? 1 : 0 };
  const output = split ? [...grid, splits] : grid;
  const kernel =
    kind === 'rows'
      ? new Kernel(device, name, gemmColQuadBody, { output, constants, returnType: 'Array(4)', componentsAsRows: true, workgroupShape: [64, 1], reuseOutput: true })
      : kind === 'quad'
        ? new Kernel(device, name, gemmRowQuadBody, { output, constants, returnType: 'Array(4)', reuseOutput: true })
        : new Kernel(device, name, gemmScalarBody, { output, constants, reuseOutput: true });
  const splitSum = split
    ? new Kernel(device, `${name}.splitSum`, splitSumBody, { output: [N, M], constants: { N, MN: M * N, S: splits, relu: o.relu ? 1 : 0, masked: o.masked ? 1 : 0 }, reuseOutput: true })
    : null;
  return { kind, splits, kernel, splitSum };
}
