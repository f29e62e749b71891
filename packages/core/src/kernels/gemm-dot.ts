/**
 * The webasm GEMM for operands that both run contiguously along K (A(m, k) = a[m*sam + k],
 * B(k, n) = b[n*sbn + k]): the weight gradients, dW = dy colᵀ for a conv layer and dyᵀ x for an fc
 * layer, where K is the batch's positions or images.
 *
 * gemm.ts's kernel puts the SIMD lanes along n, so with B stored this way each of its B loads is a
 * four-lane gather. Here the four lanes of a thread are four consecutive k instead: every load is
 * one 16-byte load of four k (the patched gpu.js emits v128.load for `u + this.thread.x`), each lane
 * sums every fourth k, and the four lanes' partial sums are added when the result is unpacked. A
 * thread computes a 2x2 block of outputs (rows m, m+1, columns n, n+1: the four results gpu.js lets
 * a thread return), so 4 loads feed 16 multiply-adds.
 * Measured on webasm, 2 cores (bench/gemm.ts --layer conv2): cifar conv2's weight gradient,
 * 64x800x14400, 43 ms against 75-99 ms on gemm.ts's kernel (docs/performance.md).
 *
 * K must be a multiple of 4. The raw result is split z, block t (row pairs before column pairs),
 * lane l, value c (s00, s01, s10, s11) at ((z * T + t) * 4 + l) * 4 + c.
 */
import type { KernelThis } from './kernel-runner.js';

export const gemmDotBody = function (this: KernelThis, a: Float32Array, b: Float32Array) {
  const lane = this.thread.x; // k phase: lane l sums k = k0 + l, k0 + l + 4, ...
  const np = Math.floor(this.thread.y / this.constants.MP);
  const mp = this.thread.y - np * this.constants.MP;
  const M1 = this.constants.M - 1;
  const N1 = this.constants.N - 1;
  const sam = this.constants.sam;
  const sbn = this.constants.sbn;
  // rows and columns past the end are clamped (uniform across lanes) and dropped when unpacking
  const m0 = Math.min(mp * 2, M1);
  const m1 = Math.min(mp * 2 + 1, M1);
  const n0 = Math.min(np * 2, N1);
  const n1 = Math.min(np * 2 + 1, N1);
  const k0 = this.thread.z * this.constants.chunk;
  const k1 = Math.min(k0 + this.constants.chunk, this.constants.K);
  let a0 = m0 * sam + k0;
  let a1 = m1 * sam + k0;
  let b0 = n0 * sbn + k0;
  let b1 = n1 * sbn + k0;
  let s00 = 0;
  let s01 = 0;
  let s10 = 0;
  let s11 = 0;
  // eight k a step (two loads of four per operand row), then four if K's chunk leaves them
  const k8 = k0 + Math.floor((k1 - k0) / 8) * 8;
  for (let k = k0; k < k8; k += 8) {
    const x0 = a[a0 + lane];
    const x1 = a[a1 + lane];
    const y0 = b[b0 + lane];
    const y1 = b[b1 + lane];
    const u0 = a[a0 + 4 + lane];
    const u1 = a[a1 + 4 + lane];
    const v0 = b[b0 + 4 + lane];
    const v1 = b[b1 + 4 + lane];
    s00 += x0 * y0 + u0 * v0;
    s01 += x0 * y1 + u0 * v1;
    s10 += x1 * y0 + u1 * v0;
    s11 += x1 * y1 + u1 * v1;
    a0 += 8;
    a1 += 8;
    b0 += 8;
    b1 += 8;
  }
  if (k8 < k1) {
    const x0 = a[a0 + lane];
    const x1 = a[a1 + lane];
    const y0 = b[b0 + lane];
    const y1 = b[b1 + lane];
    s00 += x0 * y0;
    s01 += x0 * y1;
    s10 += x1 * y0;
    s11 += x1 * y1;
  }
  return [s00, s01, s10, s11];
};

/** Whether the dot kernel can run a GEMM of this shape: both operands contiguous along K, K a multiple of 4. */
export function dotFits(shape: { K: number; sak: number; sbk: number }): boolean {
  return shape.sak === 1 && shape.sbk === 1 && shape.K % 4 === 0;
}

/** Row pairs of an M-row output (the kernel's MP). */
export function rowPairs(M: number): number {
  return Math.ceil(M / 2);
}

/** The dot kernel's raw result as a flat [M][N] array: the splits and the four lanes summed, plus bias[m]. */
export function unpackDot(raw: Float32Array, M: number, N: number, splits: number, bias?: Float32Array): Float32Array {
  const MP = rowPairs(M);
  const NP = Math.ceil(N / 2);
  const T = MP * NP;
  const out = new Float32Array(M * N);
  for (let z = 0; z < splits; z++) {
    let src = z * T * 16;
    for (let np = 0; np < NP; np++) {
      const n = np * 2;
      for (let mp = 0; mp < MP; mp++, src += 16) {
        const m = mp * 2;
        // lanes l at src + 4l; values s00 s01 s10 s11
        const s00 = raw[src]! + raw[src + 4]! + raw[src + 8]! + raw[src + 12]!;
        const s01 = raw[src + 1]! + raw[src + 5]! + raw[src + 9]! + raw[src + 13]!;
        const s10 = raw[src + 2]! + raw[src + 6]! + raw[src + 10]! + raw[src + 14]!;
        const s11 = raw[src + 3]! + raw[src + 7]! + raw[src + 11]! + raw[src + 15]!;
        out[m * N + n] += s00;
        if (n + 1 < N) out[m * N + n + 1] += s01;
        if (m + 1 < M) {
          out[(m + 1) * N + n] += s10;
          if (n + 1 < N) out[(m + 1) * N + n + 1] += s11;
        }
      }
    }
  }
  if (bias) for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) out[m * N + n] += bias[m]!;
  return out;
}
