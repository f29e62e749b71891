/**
 * conv2d backward, per chunk of images:
 *   db[o]        = sum over positions of dy[o]                       (row sum)
 *   dW[o][crr]   = sum_p dy[o][p] col[crr][p]                        (GEMM, B transposed, split over K)
 *   dcol[crr][p] = sum_o W[o][crr] dy[o][p]                          (GEMM, A transposed)
 *   dx           = col2im(dcol)                                      (gather, no write conflicts)
 * `needInput: false` skips dx for the first layer, whose input is the image.
 */
import type { Device } from '../device.js';
import { Gemm, gemmShape } from './gemm.js';
import { Col2im, colStride } from './im2col.js';
import { RowSum } from './row-sum.js';
import { placeImages, sliceImages, type Conv2dShape } from './conv2d-geometry.js';
import type { Conv2dForward, Conv2dForwardState } from './conv2d-forward.js';

/** [rows][P] copied into rows colStride(P) apart (the same array when no padding is needed). */
function padRows(x: Float32Array, rows: number, P: number): Float32Array {
  const stride = colStride(P);
  if (stride === P) return x;
  const out = new Float32Array(rows * stride);
  for (let r = 0; r < rows; r++) out.set(x.subarray(r * P, (r + 1) * P), r * stride);
  return out;
}

export interface Conv2dGradients {
  readonly dx: Float32Array | null;
  readonly dw: Float32Array;
  readonly db: Float32Array;
}

export class Conv2dBackward {
  private readonly biasGrad: RowSum;
  private readonly weightGrad: Gemm[] = [];
  private readonly colGrad: Gemm[] = [];
  private readonly col2im: Col2im[] = [];
  private readonly s: Conv2dShape;

  constructor(device: Device, name: string, private readonly fwd: Conv2dForward, readonly needInput: boolean) {
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
      const stride = colStride(P);
      this.weightGrad.push(new Gemm(device, `${name}.weightGrad`, { ...gemmShape(s.O, K, P, false, true), sam: stride, sbn: stride }));
      if (needInput) {
        this.colGrad.push(new Gemm(device, `${name}.colGrad`, gemmShape(K, P, s.O, true, false), { splitK: false }));
        this.col2im.push(new Col2im(device, `${name}.col2im`, { ...fwd.chunks.geometry(n), NT: n }));
      }
    }
  }

  async run(x: Float32Array, w: Float32Array, dy: Float32Array, state: Conv2dForwardState): Promise<Conv2dGradients> {
    const s = this.s;
    const { OH, OW, starts, chunk } = this.fwd.chunks;
    const plane = OH * OW;
    const db = await this.biasGrad.run(dy);
    let dw: Float32Array | null = null;
    const dx = this.needInput ? new Float32Array(s.C * s.N * s.H * s.W) : null;
    for (let i = 0; i < starts.length; i++) {
      const n0 = starts[i]!;
      const n = Math.min(chunk, s.N - n0);
      const col = state.cols?.[i] ?? (await this.fwd.col(i, x));
      const dyChunk = sliceImages(dy, s.O, s.N, plane, n0, n);
      const part = await this.weightGrad[i]!.run(padRows(dyChunk, s.O, n * plane), col);
      if (dw === null) dw = part;
      else for (let j = 0; j < dw.length; j++) dw[j] += part[j]!;
      if (dx) {
        const dcol = await this.colGrad[i]!.runPacked(w, dyChunk);
        const dxChunk = await this.col2im[i]!.run(dcol);
        if (starts.length === 1) return { dx: dxChunk, dw, db };
        placeImages(dx, dxChunk, s.C, s.N, s.H * s.W, n0, n);
      }
    }
    return { dx, dw: dw!, db };
  }
}
