/**
 * General matrix multiply C[M][N] = A * B (+ bias[m]), the work-horse behind
 * conv2d (forward, weight and input gradients) and the fully connected layers.
 * `Gemm` picks the kernel for the backend and the shape:
 *   - webasm (and gpu.js's cpu mode): gemm-webasm.ts, four rows by four columns a thread, or gemm-dot.ts
 *     where both operands run contiguously along K (the weight gradients) and K is a multiple of 4;
 *   - webgpu: gemm-webgpu.ts, one or four outputs a thread, the result left on the device.
 *
 * Operands are flat arrays addressed with strides, so transposes cost nothing:
 *   A(m, k) = a[m*sam + k*sak],  B(k, n) = b[k*sbk + n*sbn]   (gemm-shape.ts).
 *
 * Split-K on CPU backends: when K is long (weight gradients sum over the whole batch) and the
 * output small, a third thread axis z sums K in chunks, at least enough of
 * them for the split output to reach gpu.js's threading threshold (4096 cells),
 * and the chunks are added afterwards (a small output with a long K: cifar conv1's
 * weight gradient, 32x75x65536, 17 ms in 4 chunks on the worker pool, bench/gemm.ts --layer conv1).
 */
import type { Device, DeviceTensor } from '../device.js';
import { Kernel } from './kernel-runner.js';
import { dotFits, gemmDotBody, rowPairs, unpackDot } from './gemm-dot.js';
import { gemmBody, unpackQuads } from './gemm-webasm.js';
import { webgpuGemmKernels, type WebGPUGemmKind } from './gemm-webgpu.js';
import type { GemmShape } from './gemm-shape.js';

export { gemmShape, type GemmShape } from './gemm-shape.js';
export { unpackQuads } from './gemm-webasm.js';
export { WEBGPU_MIN_CHUNK, WEBGPU_SPLIT_THREADS, webgpuGemmKind, webgpuSplits, type WebGPUGemmKind } from './gemm-webgpu.js';

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

  /** webgpu: which kernel computes the output (webgpuGemmKind); null elsewhere. */
  readonly webgpuKind: WebGPUGemmKind | null;
  /** webgpu with K split: the kernel that adds the chunks' partial sums (then the ReLU and the mask). */
  private readonly splitSum: Kernel | null;

  /**
   * `splitK: false` keeps the output unsplit (required by runPacked); `relu` fuses max(0, .) into the
   * output; `masked` multiplies it by run()'s mask, after the ReLU.
   */
  constructor(private readonly device: Device, readonly name: string, readonly shape: GemmShape, opts: { splitK?: boolean; relu?: boolean; masked?: boolean; webgpuKind?: WebGPUGemmKind } = {}, private readonly zeroBias = new Float32Array(shape.M)) {
    this.relu = opts.relu === true;
    this.masked = opts.masked === true;
    const { M, N, K } = shape;
    this.rowQuads = Math.ceil(M / 4);
    this.plain = device.resident;
    if (this.plain) {
      this.dot = false;
      const k = webgpuGemmKernels(device, name, shape, { splitK: opts.splitK !== false, relu: this.relu, masked: this.masked, webgpuKind: opts.webgpuKind });
      this.webgpuKind = k.kind;
      this.splits = k.splits;
      this.kernel = k.kernel;
      this.splitSum = k.splitSum;
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
