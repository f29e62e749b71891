/**
 * conv2d forward: im2col, then one GEMM per chunk of images, bias added in the GEMM.
 * x is CNHW [C][N][H][W]; w is [O][C][R][R]; y is CNHW [O][N][OH][OW].
 * Groups are not a kernel feature: AlexNet's groups are its two towers, each running
 * its own conv2d on its own (or, at conv3, the concatenated) input.
 */
import type { Device, DeviceTensor } from '../device.js';
import { Gemm, gemmShape } from './gemm.js';
import { Im2col, colStride } from './im2col.js';
import { chunkConv, placeImages, type Conv2dShape, type ConvChunking } from './conv2d-geometry.js';

export interface Conv2dForwardState {
  /**
   * The im2col buffers of each chunk, kept for the weight gradient when the batch is one chunk. On
   * webasm they are the Im2col kernel's one reused buffer (reused-output.ts): valid until this
   * layer's next forward, so a layer's forward and backward come in pairs, nothing between them.
   */
  readonly cols: DeviceTensor[] | null;
}

export class Conv2dForward {
  readonly chunks: ConvChunking;
  private readonly im2col: Im2col[] = [];
  private readonly gemm: Gemm[] = [];

  /** `relu` fuses the ReLU that follows the layer into its GEMM. */
  constructor(private readonly device: Device, name: string, readonly s: Conv2dShape, maxColFloats?: number, relu = false) {
    this.chunks = chunkConv(s, maxColFloats ?? device.maxKernelFloats);
    const K = s.C * s.R * s.R;
    for (const n0 of this.chunks.starts) {
      const n = Math.min(this.chunks.chunk, s.N - n0);
      if (this.gemm.length > 0 && n === this.chunks.chunk) {
        this.im2col.push(this.im2col[0]!);
        this.gemm.push(this.gemm[0]!);
        continue;
      }
      this.im2col.push(new Im2col(device, `${name}.im2col`, this.chunks.geometry(n)));
      const P = n * this.chunks.OH * this.chunks.OW;
      // B = col, rows colStride(P) apart
      this.gemm.push(new Gemm(device, `${name}.gemm`, { ...gemmShape(s.O, P, K), sbk: colStride(P, device) }, { relu }));
    }
  }

  async run(x: DeviceTensor, w: DeviceTensor, b: DeviceTensor): Promise<{ y: DeviceTensor; state: Conv2dForwardState }> {
    const { OH, OW, starts, chunk } = this.chunks;
    const plane = OH * OW;
    if (starts.length === 1) {
      const col = await this.im2col[0]!.run(x, 0);
      const y = await this.gemm[0]!.run(w, col, b);
      return { y, state: { cols: [col] } };
    }
    // several chunks are placed on the host: on webgpu a round trip (large batches of the paper preset)
    const y = new Float32Array(this.s.O * this.s.N * plane);
    for (let i = 0; i < starts.length; i++) {
      const n0 = starts[i]!;
      const n = Math.min(chunk, this.s.N - n0);
      const col = await this.im2col[i]!.run(x, n0);
      const part = await this.device.toHost(await this.gemm[i]!.run(w, col, b), this.s.O * n * plane);
      placeImages(y, part, this.s.O, this.s.N, plane, n0, n);
    }
    return { y, state: { cols: null } };
  }

  /** im2col of chunk i (the backward pass recomputes it when the batch spans several chunks). */
  col(i: number, x: DeviceTensor): Promise<DeviceTensor> {
    return this.im2col[i]!.run(x, this.chunks.starts[i]!);
  }
}
