/**
 * Fully connected layer on [feature][image] activations: three GEMMs.
 *   forward:  y[o][n]  = W[o][k] x[k][n] + b[o]
 *   backward: dW[o][k] = dy[o][n] x[k][n]^T ;  dx[k][n] = W^T dy ;  db = row sums of dy
 */
import type { Device } from '../device.js';
import { Gemm, gemmShape } from './gemm.js';
import { RowSum } from './row-sum.js';

export class FullyConnected {
  private readonly fwd: Gemm;
  private readonly weightGrad: Gemm;
  private readonly inputGrad: Gemm;
  private readonly biasGrad: RowSum;

  constructor(device: Device, name: string, readonly O: number, readonly K: number, readonly N: number) {
    this.fwd = new Gemm(device, `${name}.forward`, gemmShape(O, N, K));
    this.weightGrad = new Gemm(device, `${name}.weightGrad`, gemmShape(O, K, N, false, true));
    this.inputGrad = new Gemm(device, `${name}.inputGrad`, gemmShape(K, N, O, true, false));
    this.biasGrad = new RowSum(device, `${name}.biasGrad`, O, N);
  }

  forward(x: Float32Array, w: Float32Array, b: Float32Array): Promise<Float32Array> {
    return this.fwd.run(w, x, b);
  }

  async backward(x: Float32Array, w: Float32Array, dy: Float32Array): Promise<{ dx: Float32Array; dw: Float32Array; db: Float32Array }> {
    const [dw, dx, db] = [await this.weightGrad.run(dy, x), await this.inputGrad.run(w, dy), await this.biasGrad.run(dy)];
    return { dx, dw, db };
  }
}
