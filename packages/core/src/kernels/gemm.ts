/**
 * General matrix multiply C[M][N] = A * B (+ bias[m]), the work-horse behind
 * conv2d (forward, weight and input gradients) and the fully connected layers.
 *
 * Operands are flat arrays addressed with strides, so transposes cost nothing:
 *   A(m, k) = a[m*sam + k*sak],  B(k, n) = b[k*sbk + n*sbn].
 *
 * Why this shape: on webasm, thread.x is the SIMD lane axis and a load that
 * depends on thread.x is a 4-load gather, while a load that depends only on
 * thread.y/z is one load and a splat. Each thread returns Array(4): four rows m
 * that share one gathered B(k, n), which cuts gathers per multiply-add by 4
 * (measured: 1.0 -> 2.5 GFLOP/s on 2 cores for 1024x512x800).
 *
 * Split-K: when K is long (weight gradients sum over the whole batch) and the
 * output small, a third thread axis z sums K in chunks, at least enough of
 * them for the split output to reach gpu.js's threading threshold (4096 cells),
 * and the chunks are added afterwards (a small output with a long K: cifar conv1's
 * weight gradient, 32x75x65536, 17 ms in 4 chunks on the worker pool, bench/gemm.ts --layer conv1).
 *
 * Where both operands run contiguously along K (A(m, k) at m*sam + k, B(k, n) at n*sbn + k: the
 * weight gradients) and K is a multiple of 4, CPU backends run gemm-dot.ts's kernel instead, whose
 * lanes run along K; it splits K the same way.
 */
import type { Device, DeviceTensor } from '../device.js';
import { Kernel, type KernelThis } from './kernel-runner.js';
import { EnvSettingError } from '../env-setting-error.js';
import { dotFits, gemmDotBody, rowPairs, unpackDot } from './gemm-dot.js';

export interface GemmShape {
  readonly M: number;
  readonly N: number;
  readonly K: number;
  readonly sam: number;
  readonly sak: number;
  readonly sbk: number;
  readonly sbn: number;
}

/** Strides for the common cases: C = op(A) op(B) with A stored [M][K] (or [K][M] if transA) and B stored [K][N] (or [N][K] if transB). */
export function gemmShape(M: number, N: number, K: number, transA = false, transB = false): GemmShape {
  return {
    M, N, K,
    sam: transA ? 1 : K,
    sak: transA ? M : 1,
    sbk: transB ? 1 : N,
    sbn: transB ? K : 1,
  };
}

const gemmBody = function (this: KernelThis, a: Float32Array, b: Float32Array, bias: Float32Array, mask: Float32Array) {
  // thread.y runs over the row quads first, then the column quads: the threads that follow one
  // another share one strip of B (four columns), which stays in cache instead of streaming all of B
  // from memory once per row quad; thread.x (0..3) is the SIMD lane, the column within the quad
  const lane = this.thread.x;
  const nq = Math.floor(this.thread.y / this.constants.MQ);
  const mq = (this.thread.y - nq * this.constants.MQ) * 4;
  const n = nq * 4 + lane;
  const M1 = this.constants.M - 1;
  const sam = this.constants.sam;
  const sak = this.constants.sak;
  const sbk = this.constants.sbk;
  // rows past the end are clamped (uniform across lanes) and dropped when flattening
  const m0 = Math.min(mq, M1);
  const m1 = Math.min(mq + 1, M1);
  const m2 = Math.min(mq + 2, M1);
  const m3 = Math.min(mq + 3, M1);
  const k0 = this.thread.z * this.constants.chunk;
  const k1 = Math.min(k0 + this.constants.chunk, this.constants.K);
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  if (this.thread.z === 0) {
    s0 = bias[m0];
    s1 = bias[m1];
    s2 = bias[m2];
    s3 = bias[m3];
  }
  // indices advance by their strides (no multiply per step) and K is unrolled
  // by two: both measured to matter on webasm (1.3 -> 3.2 GFLOP/s at 64x14400x800).
  // B's index is (uniform row offset) + n * sbn: with sbn = 1 (B row-major) the
  // patched gpu.js loads the four lanes' B values with one 16-byte load, else per lane
  let bk = k0 * sbk + nq * 4 * this.constants.sbn;
  let a0 = m0 * sam + k0 * sak;
  let a1 = m1 * sam + k0 * sak;
  let a2 = m2 * sam + k0 * sak;
  let a3 = m3 * sam + k0 * sak;
  const sbk2 = 2 * sbk;
  const sak2 = 2 * sak;
  // an integer loop counter (k from k0): an i32 in the compiled kernel
  const kPairs = k0 + Math.floor((k1 - k0) / 2) * 2;
  for (let k = k0; k < kPairs; k += 2) {
    const bv = b[bk + lane * this.constants.sbn];
    const bw = b[bk + sbk + lane * this.constants.sbn];
    s0 += a[a0] * bv + a[a0 + sak] * bw;
    s1 += a[a1] * bv + a[a1 + sak] * bw;
    s2 += a[a2] * bv + a[a2 + sak] * bw;
    s3 += a[a3] * bv + a[a3 + sak] * bw;
    bk += sbk2;
    a0 += sak2;
    a1 += sak2;
    a2 += sak2;
    a3 += sak2;
  }
  if (kPairs < k1) {
    const bv = b[bk + lane * this.constants.sbn];
    s0 += a[a0] * bv;
    s1 += a[a1] * bv;
    s2 += a[a2] * bv;
    s3 += a[a3] * bv;
  }
  if (this.constants.relu === 1) {
    s0 = Math.max(s0, 0);
    s1 = Math.max(s1, 0);
    s2 = Math.max(s2, 0);
    s3 = Math.max(s3, 0);
  }
  // a dropout mask [M][N] (masked), after the ReLU: the products the dropout layer made
  if (this.constants.masked === 1) {
    const N = this.constants.N;
    s0 *= mask[m0 * N + n];
    s1 *= mask[m1 * N + n];
    s2 *= mask[m2 * N + n];
    s3 *= mask[m3 * N + n];
  }
  return [s0, s1, s2, s3];
};

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

/** gpu.js webasm hands a kernel to its worker pool from this many output cells. */
const THREAD_CELLS = 4096;
const MAX_CHUNK = 16384;

export class Gemm {
  private readonly kernel: Kernel;
  readonly splits: number;
  private readonly rowQuads: number;
  /** webasm: the lanes run along K (gemm-dot.ts), for operands both contiguous along K. */
  readonly dot: boolean;
  /** webgpu: the result stays on the device as a plain [M][N] array (one or four outputs per thread, see webgpuGemmKind). */
  readonly plain: boolean;

  /** Whether a ReLU is applied to the output (a conv or fc layer followed by ReLU, fused). */
  readonly relu: boolean;
  /** Whether the output is multiplied by a mask [M][N] (after the ReLU): the dropout after an fc layer's ReLU, fused. */
  readonly masked: boolean;
  /** The mask argument of an unmasked GEMM (never read). */
  private readonly noMask = new Float32Array(1);

  /**
   * `splitK: false` keeps the output unsplit (required by runPacked); `relu` fuses max(0, .) into the
   * output; `masked` multiplies it by run()'s mask, after the ReLU.
   */
  /** webgpu: which kernel computes the output (webgpuGemmKind); null elsewhere. */
  readonly webgpuKind: WebGPUGemmKind | null;
  /** webgpu with K split: the kernel that adds the chunks' partial sums (then the ReLU and the mask). */
  private readonly splitSum: Kernel | null;

  constructor(private readonly device: Device, readonly name: string, readonly shape: GemmShape, opts: { splitK?: boolean; relu?: boolean; masked?: boolean; webgpuKind?: WebGPUGemmKind } = {}, private readonly zeroBias = new Float32Array(shape.M)) {
    this.relu = opts.relu === true;
    this.masked = opts.masked === true;
    const { M, N, K } = shape;
    this.rowQuads = Math.ceil(M / 4);
    this.plain = device.resident;
    if (this.plain) {
      this.dot = false;
      const kind = webgpuGemmKind(shape, opts.webgpuKind === undefined ? process.env : { ALEXNET_WEBGPU_GEMM: opts.webgpuKind });
      this.webgpuKind = kind;
      // the threads' grid [x, y] of each kind; K split along z where they are too few (webgpuSplits)
      const grid: [number, number] = kind === 'rows' ? [N, M / 4] : kind === 'quad' ? [N / 4, M] : [N, M];
      this.splits = opts.splitK === false ? 1 : webgpuSplits(grid[0] * grid[1], K);
      const split = this.splits > 1;
      const chunk = Math.ceil(K / this.splits);
      // with K split, the ReLU and the mask wait for the chunks' sum
      const constants = { K, N, chunk, sam: shape.sam, sak: shape.sak, sbk: shape.sbk, sbn: shape.sbn, relu: this.relu && !split ? 1 : 0, masked: this.masked && !split ? 1 : 0 };
      const output = split ? [...grid, this.splits] : grid;
      this.kernel =
        kind === 'rows'
          ? new Kernel(device, name, gemmColQuadBody, { output, constants, returnType: 'Array(4)', componentsAsRows: true, workgroupShape: [64, 1], reuseOutput: true })
          : kind === 'quad'
            ? new Kernel(device, name, gemmRowQuadBody, { output, constants, returnType: 'Array(4)', reuseOutput: true })
            : new Kernel(device, name, gemmScalarBody, { output, constants, reuseOutput: true });
      this.splitSum = split
        ? new Kernel(device, `${name}.splitSum`, splitSumBody, { output: [N, M], constants: { N, MN: M * N, S: this.splits, relu: this.relu ? 1 : 0, masked: this.masked ? 1 : 0 }, reuseOutput: true })
        : null;
      return;
    }
    this.splitSum = null;
    this.webgpuKind = null;
    // on webasm, operands both contiguous along K (weight gradients) take the dot kernel, unless
    // the caller needs runPacked's layout
    this.dot = device.mode !== 'webgpu' && opts.splitK !== false && dotFits(shape);
    // a thread computes a block of outputs (2x2 on the dot kernel, 4x4 on the other), four threads (its SIMD lanes) a
    // block: the kernel's output is [4, blocks, splits]
    const blocks = this.dot ? rowPairs(M) * Math.ceil(N / 2) : this.rowQuads * Math.ceil(N / 4);
    const cells = 4 * blocks;
    // split K only on CPU backends, and only for outputs too small to be threaded anyway
    const wantSplits = device.mode === 'webgpu' || opts.splitK === false || cells >= THREAD_CELLS ? 1 : Math.ceil(K / MAX_CHUNK);
    // enough chunks for the split output to reach the threading threshold: both cores then share the sum
    const splits = wantSplits > 1 ? Math.max(wantSplits, Math.ceil(THREAD_CELLS / cells)) : 1;
    // the dot kernel's chunks are whole steps of eight k (K itself is a multiple of 4)
    const chunk = this.dot ? Math.ceil(K / splits / 8) * 8 : Math.ceil(K / splits);
    // every chunk non-empty
    this.splits = Math.ceil(K / chunk);
    if (this.dot) {
      this.kernel = new Kernel(device, name, gemmDotBody, {
        output: [4, blocks, this.splits],
        constants: { M, N, K, MP: rowPairs(M), chunk, sam: shape.sam, sbn: shape.sbn },
        returnType: 'Array(4)',
        // run() sums the lanes at once
        reuseOutput: true,
      });
      return;
    }
    this.kernel = new Kernel(device, name, gemmBody, {
      output: [4, blocks, this.splits],
      // with K split, the ReLU and the mask wait for the chunks' sum (in run())
      constants: { M, N, K, MQ: this.rowQuads, chunk, sam: shape.sam, sak: shape.sak, sbk: shape.sbk, sbn: shape.sbn, relu: this.relu && this.splits === 1 ? 1 : 0, masked: this.masked && this.splits === 1 ? 1 : 0 },
      returnType: 'Array(4)',
      // run() de-interleaves the raw result at once; runPacked()'s caller hands it straight to col2im
      reuseOutput: true,
    });
  }

  /**
   * C = A B (+ bias) as the kernel packs it (see packedIndex: C(m, n) at
   * (((n >> 2) * ceil(M / 4) + (m >> 2)) * 4 + (n & 3)) * 4 + (m & 3)), for a consumer that reads that layout
   * directly (col2im) instead of paying for a de-interleave. No split-K. The result is only valid
   * until this Gemm runs again (KernelOptions.reuseOutput): read it before that.
   */
  async runPacked(a: DeviceTensor, b: DeviceTensor, bias?: DeviceTensor): Promise<DeviceTensor> {
    if (this.splits !== 1 || this.dot) throw new Error(`${this.name}: packed output needs an unsplit GEMM (splitK: false)`);
    return this.kernel.exec(a, b, bias ?? this.zeroBias, this.maskArg());
  }

  private maskArg(mask?: DeviceTensor): DeviceTensor {
    if (this.masked !== (mask !== undefined)) throw new Error(`${this.name}: ${this.masked ? 'a masked GEMM needs its mask' : 'an unmasked GEMM takes no mask'}`);
    return mask ?? this.noMask;
  }

  /** Whether runPacked's result is packed in quads of rows (false: plain [M][N], on webgpu). */
  get packed(): boolean {
    return !this.plain;
  }

  /**
   * C = A B (+ bias per row m), as a flat [M][N] array (left on the device on webgpu, where it is
   * valid until this Gemm runs again: a layer's forward output until the next forward, its
   * gradients until the next backward). `mask` [M][N]: a masked GEMM's mask.
   */
  async run(a: DeviceTensor, b: DeviceTensor, bias?: DeviceTensor, mask?: DeviceTensor): Promise<DeviceTensor> {
    const maskArg = this.maskArg(mask);
    if (this.plain) {
      const out = await this.kernel.exec(a, b, bias ?? this.zeroBias, maskArg);
      return this.splitSum ? this.splitSum.exec(out, maskArg) : out;
    }
    const { M, N } = this.shape;
    if (this.dot) {
      const raw = await this.kernel.run(a, b);
      const out = unpackDot(raw, M, N, this.splits, bias === undefined ? undefined : await this.device.toHost(bias, M));
      return this.afterSum(out, maskArg);
    }
    const raw = await this.kernel.run(a, b, bias ?? this.zeroBias, maskArg);
    const out = unpackQuads(raw, M, N, this.splits);
    return this.splits > 1 ? this.afterSum(out, maskArg) : out;
  }

  /** The ReLU and the mask, where the kernel could not apply them (K summed after it). */
  private async afterSum(out: Float32Array, maskArg: DeviceTensor): Promise<Float32Array> {
    if (this.relu) for (let i = 0; i < out.length; i++) out[i] = Math.max(out[i]!, 0);
    if (this.masked) {
      const m = await this.device.toHost(maskArg, out.length);
      for (let i = 0; i < out.length; i++) out[i] = out[i]! * m[i]!;
    }
    return out;
  }
}

/**
 * The webasm GEMM's raw result, split s, row m, column n (four rows and four columns a thread, row
 * quads before column quads): at ((((s * NQ + (n >> 2)) * MQ + (m >> 2)) * 4 + (n & 3)) * 4 + (m & 3)
 * with MQ = ceil(M / 4), NQ = ceil(N / 4). As a flat [M][N] array, the splits summed.
 */
export function unpackQuads(raw: Float32Array, M: number, N: number, splits: number): Float32Array {
  const MQ = Math.ceil(M / 4);
  const NQ = Math.ceil(N / 4);
  const out = new Float32Array(M * N);
  // raw is read in order, one 4x4 block (16 floats: lane-major, then row) at a time, and each block's four
  // rows land in four rows of out: the writes stay within 4 * MQ lines, the reads stream
  let src = 0;
  for (let z = 0; z < splits; z++) {
    for (let nq = 0; nq < NQ; nq++) {
      const n0 = nq * 4;
      const lanes = Math.min(4, N - n0);
      for (let mq = 0; mq < MQ; mq++, src += 16) {
        const m0 = mq * 4;
        const rows = Math.min(4, M - m0);
        for (let r = 0; r < rows; r++) {
          const dst = (m0 + r) * N + n0;
          const s0 = src + r;
          if (lanes === 4) {
            if (z === 0) {
              out[dst] = raw[s0]!;
              out[dst + 1] = raw[s0 + 4]!;
              out[dst + 2] = raw[s0 + 8]!;
              out[dst + 3] = raw[s0 + 12]!;
            } else {
              out[dst] += raw[s0]!;
              out[dst + 1] += raw[s0 + 4]!;
              out[dst + 2] += raw[s0 + 8]!;
              out[dst + 3] += raw[s0 + 12]!;
            }
          } else if (z === 0) {
            for (let l = 0; l < lanes; l++) out[dst + l] = raw[s0 + l * 4]!;
          } else {
            for (let l = 0; l < lanes; l++) out[dst + l] += raw[s0 + l * 4]!;
          }
        }
      }
    }
  }
  return out;
}
