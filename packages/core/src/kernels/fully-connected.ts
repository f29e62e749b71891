/**
 * Fully connected layer on [feature][image] activations: three GEMMs.
 *   forward:  y[o][n]  = W[o][k] x[k][n] + b[o]
 *   backward: dW[o][k] = dy[o][n] x[k][n]^T ;  dx[k][n] = W^T dy ;  db = row sums of dy
 * Weights larger than one kernel may address (Device.maxKernelFloats: on webasm the
 * paper's fc6, 2048 x 9216 per tower) are processed in blocks of output rows through
 * the host; dx then sums the blocks' contributions. On webgpu fc6 is one block.
 */
import type { Device, DeviceTensor } from '../device.js';
import { Gemm, gemmShape } from './gemm.js';
import { RowSum } from './row-sum.js';

interface Block {
  readonly o0: number;
  readonly rows: number;
  readonly fwd: Gemm;
  readonly weightGrad: Gemm;
  readonly inputGrad: Gemm;
}

export class FullyConnected {
  private readonly blocks: Block[] = [];
  private readonly biasGrad: RowSum;

  /**
   * `relu` fuses the ReLU that follows the layer into its forward GEMM; `masked` the dropout after that
   * ReLU as well (forward() then takes the mask, [unit][image]).
   */
  constructor(private readonly device: Device, name: string, readonly O: number, readonly K: number, readonly N: number, maxBlockFloats = device.maxKernelFloats, relu = false, masked = false) {
    const rowsPerBlock = Math.max(4, Math.floor(maxBlockFloats / K / 4) * 4);
    for (let o0 = 0; o0 < O; o0 += rowsPerBlock) {
      const rows = Math.min(rowsPerBlock, O - o0);
      const prev = this.blocks[0];
      if (prev && prev.rows === rows) {
        this.blocks.push({ ...prev, o0 });
        continue;
      }
      this.blocks.push({
        o0,
        rows,
        fwd: new Gemm(device, `${name}.forward`, gemmShape(rows, N, K), { relu, masked }),
        weightGrad: new Gemm(device, `${name}.weightGrad`, gemmShape(rows, K, N, false, true)),
        inputGrad: new Gemm(device, `${name}.inputGrad`, gemmShape(K, N, rows, true, false)),
      });
    }
    this.biasGrad = new RowSum(device, `${name}.biasGrad`, O, N);
  }

  async forward(x: DeviceTensor, w: DeviceTensor, b: DeviceTensor, mask?: DeviceTensor): Promise<DeviceTensor> {
    if (this.blocks.length === 1) return this.blocks[0]!.fwd.run(w, x, b, mask);
    // blocks are slices of host arrays: on webgpu a round trip (the paper's fc6 only)
    const [wh, bh] = [await this.device.toHost(w, this.O * this.K), await this.device.toHost(b, this.O)];
    const mh = mask === undefined ? undefined : await this.device.toHost(mask, this.O * this.N);
    const y = new Float32Array(this.O * this.N);
    for (const blk of this.blocks) {
      const { o0, rows } = blk;
      const part = await blk.fwd.run(wh.subarray(o0 * this.K, (o0 + rows) * this.K), x, bh.subarray(o0, o0 + rows), mh?.subarray(o0 * this.N, (o0 + rows) * this.N));
      y.set(await this.device.toHost(part, rows * this.N), o0 * this.N);
    }
    return y;
  }

  /**
   * backward() with the input gradient first and the weight and bias gradients when `weights` is called: where
   * dx crosses to the other tower, it travels while they are computed (the same kernels on the same inputs:
   * the same floats). `x`, `w` and `dy` must be unchanged until then. Weights in blocks through the host: all
   * three at once, as backward().
   */
  async backwardInputFirst(x: DeviceTensor, w: DeviceTensor, dy: DeviceTensor): Promise<{ dx: DeviceTensor; weights: () => Promise<{ dw: DeviceTensor; db: DeviceTensor }> }> {
    if (this.blocks.length !== 1) {
      const { dx, dw, db } = await this.backward(x, w, dy);
      return { dx, weights: async () => ({ dw, db }) };
    }
    const blk = this.blocks[0]!;
    const dx = await blk.inputGrad.run(w, dy);
    return { dx, weights: async () => ({ db: await this.biasGrad.run(dy), dw: await blk.weightGrad.run(dy, x) }) };
  }

  async backward(x: DeviceTensor, w: DeviceTensor, dy: DeviceTensor): Promise<{ dx: DeviceTensor; dw: DeviceTensor; db: DeviceTensor }> {
    const db = await this.biasGrad.run(dy);
    if (this.blocks.length === 1) {
      const blk = this.blocks[0]!;
      return { dw: await blk.weightGrad.run(dy, x), dx: await blk.inputGrad.run(w, dy), db };
    }
    const [wh, dyh] = [await this.device.toHost(w, this.O * this.K), await this.device.toHost(dy, this.O * this.N)];
    const dw = new Float32Array(this.O * this.K);
    const dx = new Float32Array(this.K * this.N);
    for (const blk of this.blocks) {
      const { o0, rows } = blk;
      const dyb = dyh.subarray(o0 * this.N, (o0 + rows) * this.N);
      dw.set(await this.device.toHost(await blk.weightGrad.run(dyb, x), rows * this.K), o0 * this.K);
      const part = await this.device.toHost(await blk.inputGrad.run(wh.subarray(o0 * this.K, (o0 + rows) * this.K), dyb), this.K * this.N);
      for (let i = 0; i < dx.length; i++) dx[i] += part[i]!;
    }
    return { dx, dw, db };
  }
}
