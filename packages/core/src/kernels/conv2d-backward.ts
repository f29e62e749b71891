/**
 * conv2d backward, per chunk of images:
 *   db[o]        = sum over positions of dy[o]                       (row sum)
 *   dW[o][crr]   = sum_p dy[o][p] col[crr][p]                        (GEMM, B transposed, split over K)
 *   dcol[crr][p] = sum_o W[o][crr] dy[o][p]                          (GEMM, A transposed)
 *   dx           = col2im(dcol)                                      (gather, no write conflicts)
 * `needInput: false` skips dx for the first layer, whose input is the image.
 */
import type { Device, DeviceTensor } from '../device.js';
import { Gemm, gemmShape } from './gemm.js';
import { Col2im, colStride } from './im2col.js';
import { RowSum } from './row-sum.js';
import { placeImages, sliceImages, type Conv2dShape } from './conv2d-geometry.js';
import type { Conv2dForward, Conv2dForwardState } from './conv2d-forward.js';

/** [rows][P] copied into rows colStride(P) apart (the same array when no padding is needed). */
async function padRows(device: Device, t: DeviceTensor, rows: number, P: number): Promise<DeviceTensor> {
  const stride = colStride(P, device);
  if (stride === P) return t;
  const x = await device.toHost(t, rows * P);
  const out = new Float32Array(rows * stride);
  for (let r = 0; r < rows; r++) out.set(x.subarray(r * P, (r + 1) * P), r * stride);
  return out;
}

export interface Conv2dGradients {
  readonly dx: DeviceTensor | null;
  readonly dw: DeviceTensor;
  readonly db: DeviceTensor;
}

export class Conv2dBackward {
  private readonly biasGrad: RowSum;
  private readonly weightGrad: Gemm[] = [];
  private readonly colGrad: Gemm[] = [];
  private readonly col2im: Col2im[] = [];
  private readonly s: Conv2dShape;

  constructor(private readonly device: Device, name: string, private readonly fwd: Conv2dForward, readonly needInput: boolean) {
    const s = (this.s = fwd.s);
    const { OH, OW, starts, chunk } = fwd.chunks;
    const K = s.C * s.R * s.R;
    this.biasGrad = new RowSum(device, `${name}.biasGrad`, s.O, s.N * OH * OW);
    for (const n0 of starts) {
      const n = Math.min(chunk, s.N - n0);
      const P = n * OH * OW;
      if (this.weightGrad.length > 0 && n === chunk) {
        this.weightGrad.push(this.weightGrad[0]!);
        if (needInput) {
          this.colGrad.push(this.colGrad[0]!);
          this.col2im.push(this.col2im[0]!);
        }
        continue;
      }
      // A = dy and B^T = col, both with rows colStride(P) apart (dy is copied into that stride when it differs)
      const stride = colStride(P, device);
      this.weightGrad.push(new Gemm(device, `${name}.weightGrad`, { ...gemmShape(s.O, K, P, false, true), sam: stride, sbn: stride }));
      if (needInput) {
        this.colGrad.push(new Gemm(device, `${name}.colGrad`, gemmShape(K, P, s.O, true, false), { splitK: false }));
        const colGrad = this.colGrad[this.colGrad.length - 1]!;
        this.col2im.push(new Col2im(device, `${name}.col2im`, { ...fwd.chunks.geometry(n), NT: n }, colGrad.packed));
      }
    }
  }

  async run(x: DeviceTensor, w: DeviceTensor, dy: DeviceTensor, state: Conv2dForwardState): Promise<Conv2dGradients> {
    const s = this.s;
    const { OH, OW, starts } = this.fwd.chunks;
    const db = await this.biasGrad.run(dy);
    if (starts.length === 1) {
      // the whole batch in one chunk: everything stays on the device
      const col = state.cols?.[0] ?? (await this.fwd.col(0, x));
      const dw = await this.weightGrad[0]!.run(await padRows(this.device, dy, s.O, s.N * OH * OW), col);
      if (!this.needInput) return { dx: null, dw, db };
      const dx = await this.col2im[0]!.run(await this.colGrad[0]!.runPacked(w, dy));
      return { dx, dw, db };
    }
    return this.runChunks(x, w, await this.device.toHost(dy, s.O * s.N * OH * OW), state, db);
  }

  /**
   * run() with the input gradient first and the weight and bias gradients when `weights` is called: where dx
   * crosses to the other tower, it travels while they are computed (the same kernels on the same inputs: the
   * same floats). `x`, `dy` and the forward state must be unchanged until then. A batch in several chunks:
   * all three at once, as run().
   */
  async runInputFirst(x: DeviceTensor, w: DeviceTensor, dy: DeviceTensor, state: Conv2dForwardState): Promise<{ dx: DeviceTensor | null; weights: () => Promise<{ dw: DeviceTensor; db: DeviceTensor }> }> {
    if (this.fwd.chunks.starts.length !== 1 || !this.needInput) {
      const { dx, dw, db } = await this.run(x, w, dy, state);
      return { dx, weights: async () => ({ dw, db }) };
    }
    const s = this.s;
    const { OH, OW } = this.fwd.chunks;
    const dx = await this.col2im[0]!.run(await this.colGrad[0]!.runPacked(w, dy));
    return {
      dx,
      weights: async () => {
        const db = await this.biasGrad.run(dy);
        const col = state.cols?.[0] ?? (await this.fwd.col(0, x));
        return { db, dw: await this.weightGrad[0]!.run(await padRows(this.device, dy, s.O, s.N * OH * OW), col) };
      },
    };
  }

  /** Several chunks of images: their results are combined on the host (on webgpu, a round trip). */
  private async runChunks(x: DeviceTensor, w: DeviceTensor, dy: Float32Array, state: Conv2dForwardState, db: DeviceTensor): Promise<Conv2dGradients> {
    const s = this.s;
    const { OH, OW, starts, chunk } = this.fwd.chunks;
    const plane = OH * OW;
    const K = s.C * s.R * s.R;
    let dw: Float32Array | null = null;
    const dx = this.needInput ? new Float32Array(s.C * s.N * s.H * s.W) : null;
    for (let i = 0; i < starts.length; i++) {
      const n0 = starts[i]!;
      const n = Math.min(chunk, s.N - n0);
      const col = state.cols?.[i] ?? (await this.fwd.col(i, x));
      const dyChunk = sliceImages(dy, s.O, s.N, plane, n0, n);
      const part = await this.device.toHost(await this.weightGrad[i]!.run(await padRows(this.device, dyChunk, s.O, n * plane), col), s.O * K);
      if (dw === null) dw = Float32Array.from(part);
      else for (let j = 0; j < dw.length; j++) dw[j] += part[j]!;
      if (dx) {
        const dcol = await this.colGrad[i]!.runPacked(w, dyChunk);
        const dxChunk = await this.device.toHost(await this.col2im[i]!.run(dcol), s.C * n * s.H * s.W);
        placeImages(dx, dxChunk, s.C, s.N, s.H * s.W, n0, n);
      }
    }
    return { dx, dw: dw!, db };
  }

}
