/**
 * The webasm GEMM kernel (gemm.ts's Gemm runs it, or gemm-dot.ts's for the weight gradients): four rows
 * and four columns a thread, the four columns being the SIMD lanes, and the unpacking of its result.
 * Operands are addressed with strides as in gemm.ts: A(m, k) = a[m*sam + k*sak], B(k, n) = b[k*sbk + n*sbn].
 *
 * Why this shape: on webasm, thread.x is the SIMD lane axis and a load that
 * depends on thread.x is a 4-load gather, while a load that depends only on
 * thread.y/z is one load and a splat. Each thread returns Array(4): four rows m
 * that share one gathered B(k, n), which cuts gathers per multiply-add by 4
 * (measured: 1.0 -> 2.5 GFLOP/s on 2 cores for 1024x512x800).
 */
import type { KernelThis } from './kernel-runner.js';

export const gemmBody = function (this: KernelThis, a: Float32Array, b: Float32Array, bias: Float32Array, mask: Float32Array) {
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
