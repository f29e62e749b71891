/**
 * im2col for conv2d in our activation layout CNHW ([channel][image][y][x]):
 *   col[(c, ky, kx)][(n, oy, ox)] = x[c][n][oy*s + ky - p][ox*s + kx - p]  (0 outside the image)
 * so that conv2d forward is one GEMM: out[o][(n, oy, ox)] = W[o][(c, ky, kx)] col + b[o],
 * which lands directly in CNHW. col2im is its adjoint, written gather-style
 * (each input pixel sums the columns that read it) so no two threads write one cell.
 */
import type { Device, DeviceTensor } from '../device.js';
import { BACKWARD_REUSES_OUTPUT, Kernel, type KernelThis } from './kernel-runner.js';

/**
 * Row stride of an im2col buffer with P columns. Rows a multiple of 4 KiB
 * apart map to the same cache sets, and the weight-gradient GEMM streams 8 of
 * them at once: cifar's conv1 (P = 64*32*32) ran at a quarter of the speed of
 * the other layers until its rows were padded.
 */
export function colStride(P: number, device: Device): number {
  // (on webgpu the GEMM is a plain kernel reading with other strides: no padding)
  return P % 1024 === 0 && !device.resident ? P + 16 : P;
}

export interface ConvGeometry {
  readonly C: number; // input channels
  readonly N: number; // images in this chunk
  readonly NT: number; // images in the whole activation (the chunk starts at image n0)
  readonly H: number;
  readonly W: number;
  readonly R: number; // kernel size
  readonly S: number; // stride
  readonly P: number; // padding
  readonly OH: number;
  readonly OW: number;
}

const im2colBody = function (this: KernelThis, x: Float32Array, n0: number) {
  const p = this.thread.x; // (n, oy, ox) within the chunk; p >= P is row padding
  const row = this.thread.y; // (c, ky, kx)
  // divisions by kernel constants: the patched gpu.js shifts for a power of two (1 included) and
  // multiplies by the reciprocal in f64 otherwise, on webasm (no division instruction)
  const c = Math.floor(row / (this.constants.R * this.constants.R));
  const kk = row - c * this.constants.R * this.constants.R;
  const ky = Math.floor(kk / this.constants.R);
  const kx = kk - ky * this.constants.R;
  const n = Math.floor(p / this.constants.OHW);
  const pp = p - n * this.constants.OHW;
  const oy = Math.floor(pp / this.constants.OW);
  const ox = pp - oy * this.constants.OW;
  const iy = oy * this.constants.S + ky - this.constants.P;
  const ix = ox * this.constants.S + kx - this.constants.P;
  let v = 0;
  if (iy >= 0 && iy < this.constants.H && ix >= 0 && ix < this.constants.W && p < this.constants.cols) {
    v = x[((c * this.constants.NT + n0 + n) * this.constants.H + iy) * this.constants.W + ix];
  }
  return v;
};

// dcol arrives as the GEMM packed it: row m, column p at (((p >> 2) * MQ + (m >> 2)) * 4 + (p & 3)) * 4 + (m & 3),
// MQ = ceil(C * R * R / 4) (gemm.ts unpackQuads)
// (constant packed = 0: a plain [m][p] array, as the webgpu GEMM leaves it)
const col2imBody = function (this: KernelThis, col: Float32Array) {
  const ix = this.thread.x;
  const iy = this.thread.y;
  const cn = this.thread.z; // c * N + n
  const N = this.constants.N;
  const c = Math.floor(cn / N);
  const n = cn - c * N;
  const R = this.constants.R;
  const S = this.constants.S;
  const P = this.constants.P;
  const OH = this.constants.OH;
  const OW = this.constants.OW;
  const cols = N * OH * OW;
  let sum = 0;
  for (let ky = 0; ky < R; ky++) {
    const ty = iy + P - ky;
    const oy = Math.floor(ty / this.constants.S);
    if (ty >= 0 && oy * S === ty && oy < OH) {
      for (let kx = 0; kx < R; kx++) {
        const tx = ix + P - kx;
        // a kernel constant as divisor: with stride 1 (or 2, 4) the patched gpu.js shifts instead of dividing
        const ox = Math.floor(tx / this.constants.S);
        if (tx >= 0 && ox * S === tx && ox < OW) {
          const m = (c * R + ky) * R + kx;
          const p = (n * OH + oy) * OW + ox;
          if (this.constants.packed === 1) {
            const q = Math.floor(m / 4);
            const pq = Math.floor(p / 4);
            sum += col[((pq * this.constants.MQ + q) * 4 + (p - pq * 4)) * 4 + (m - q * 4)];
          } else {
            sum += col[m * cols + p];
          }
        }
      }
    }
  }
  return sum;
};

// CPU backends: im2col in two passes without a division or a bounds test per column. The chunk's
// images are copied into a zero-bordered [c][n][H + 2P][W + 2P] array on the host (padInto; a plain
// copy of rows, the borders written once); then column p of row (c, ky, kx) is
// xp[offset(c, ky, kx) + q[p]], with q[p] = (n * Hp + oy * S) * Wp + ox * S read from a table made
// once (whole numbers below 2^24, exact in float32). The division-based kernel above spent most of its
// time on four divisions and four bounds tests per column (cifar conv2: 109 -> 44 ms a step, both
// towers, docs/performance.md).
const tableBody = function (this: KernelThis, xp: Float32Array, q: Float32Array) {
  const row = this.thread.y; // (c, ky, kx)
  const c = Math.floor(row / (this.constants.R * this.constants.R));
  const kk = row - c * this.constants.R * this.constants.R;
  const ky = Math.floor(kk / this.constants.R);
  const kx = kk - ky * this.constants.R;
  return xp[(c * this.constants.NHp + ky) * this.constants.Wp + kx + q[this.thread.x]];
};

/**
 * The column table of the two-pass im2col: q[p] for the chunk's columns, then (row padding, never
 * read by the GEMMs) the last column's again. Null when an index would reach 2^24 (float32 no
 * longer holds it exactly): the division-based kernel runs then.
 */
export function columnTable(g: ConvGeometry, stride: number): Float32Array | null {
  const { Hp, Wp } = bordered(g);
  if (g.C * g.N * Hp * Wp >= 2 ** 24) return null;
  const q = new Float32Array(stride);
  let p = 0;
  for (let n = 0; n < g.N; n++) {
    for (let oy = 0; oy < g.OH; oy++) {
      for (let ox = 0; ox < g.OW; ox++) q[p++] = (n * Hp + oy * g.S) * Wp + ox * g.S;
    }
  }
  q.fill(q[p - 1]!, p);
  return q;
}

export class Im2col {
  private readonly kernel: Kernel;
  /** The two-pass form (CPU backends): the zero-bordered copy (its borders stay zero) and the column table. */
  private readonly twoPass: { xp: Float32Array; q: Float32Array } | null = null;

  constructor(private readonly device: Device, name: string, readonly g: ConvGeometry) {
    const stride = colStride(g.N * g.OH * g.OW, device);
    // the columns are read by the same step's GEMMs (forward, then the weight gradient) before
    // this kernel runs again: the next step's forward, or the next chunk's recomputation
    const q = device.resident ? null : columnTable(g, stride);
    if (q) {
      const { Hp, Wp } = bordered(g);
      this.twoPass = { xp: new Float32Array(g.C * g.N * Hp * Wp), q };
      this.kernel = new Kernel(device, name, tableBody, { output: [stride, g.C * g.R * g.R], constants: { R: g.R, NHp: g.N * Hp, Wp }, reuseOutput: true });
      return;
    }
    this.kernel = new Kernel(device, name, im2colBody, {
      output: [stride, g.C * g.R * g.R],
      constants: { R: g.R, S: g.S, P: g.P, H: g.H, W: g.W, OH: g.OH, OW: g.OW, OHW: g.OH * g.OW, NT: g.NT, cols: g.N * g.OH * g.OW },
      reuseOutput: true,
    });
  }

  /**
   * col [(c, ky, kx)][colStride(P)] for images n0 .. n0+N-1 of x; on webasm valid until this Im2col
   * runs again. Columns past P (row padding) hold zeros or, in the two-pass form, copies of column
   * P - 1: the GEMMs never read them.
   */
  async run(x: DeviceTensor, n0: number): Promise<DeviceTensor> {
    if (!this.twoPass) return this.kernel.exec(x, n0);
    const g = this.g;
    padInto(this.twoPass.xp, await this.device.toHost(x, g.C * g.NT * g.H * g.W), g, n0);
    return this.kernel.exec(this.twoPass.xp, this.twoPass.q);
  }
}

/** Images n0 .. n0+N-1 of x [C][NT][H][W] into the interior of xp [C][N][H + 2P][W + 2P] (whose border is left as it is: zero). */
export function padInto(xp: Float32Array, x: Float32Array, g: ConvGeometry, n0: number): void {
  const { Hp, Wp } = bordered(g);
  for (let c = 0; c < g.C; c++) {
    for (let n = 0; n < g.N; n++) {
      for (let iy = 0; iy < g.H; iy++) {
        // a plain loop: rows are short (7-32 floats), and a subarray per row would be garbage to collect
        const src = ((c * g.NT + n0 + n) * g.H + iy) * g.W;
        const dst = ((c * g.N + n) * Hp + iy + g.P) * Wp + g.P;
        for (let ix = 0; ix < g.W; ix++) xp[dst + ix] = x[src + ix]!;
      }
    }
  }
}

/** The zero-bordered copy's plane: the image and P cells of border on every side. */
function bordered(g: ConvGeometry): { Hp: number; Wp: number } {
  return { Hp: g.H + 2 * g.P, Wp: g.W + 2 * g.P };
}

export class Col2im {
  private readonly kernel: Kernel;
  constructor(device: Device, name: string, readonly g: ConvGeometry, packed: boolean) {
    if (g.N !== g.NT) throw new Error('col2im works on whole activations');
    this.kernel = new Kernel(device, name, col2imBody, {
      output: [g.W, g.H, g.C * g.N],
      constants: { N: g.N, R: g.R, S: g.S, P: g.P, OH: g.OH, OW: g.OW, packed: packed ? 1 : 0, MQ: Math.ceil((g.C * g.R * g.R) / 4) },
      reuseOutput: BACKWARD_REUSES_OUTPUT,
    });
  }
  /** dx in CNHW from dcol [(c, ky, kx)][(n, oy, ox)], as Gemm.runPacked leaves it. */
  run(col: DeviceTensor): Promise<DeviceTensor> {
    return this.kernel.exec(col);
  }
}
