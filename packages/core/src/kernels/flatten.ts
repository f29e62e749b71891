/**
 * Between the conv stack (CNHW: [channel][image][y][x]) and the fully connected
 * layers ([feature][image] with feature = (c, y, x), PyTorch's flatten order).
 */
import type { Device, DeviceTensor } from '../device.js';
import { BACKWARD_REUSES_OUTPUT, FORWARD_REUSES_OUTPUT, Kernel, type KernelThis } from './kernel-runner.js';

// out[(c*HW + hw)][n] = in[c][n][hw]
const toFeaturesBody = function (this: KernelThis, x: Float32Array) {
  const n = this.thread.x;
  const f = this.thread.y;
  const HW = this.constants.HW;
  const c = Math.floor(f / HW);
  const hw = f - c * HW;
  return x[(c * this.constants.N + n) * HW + hw];
};

// out[c][n][hw] = in[(c*HW + hw)][n]
const fromFeaturesBody = function (this: KernelThis, g: Float32Array) {
  const hw = this.thread.x;
  const cn = this.thread.y;
  const N = this.constants.N;
  const c = Math.floor(cn / N);
  const n = cn - c * N;
  return g[(c * this.constants.HW + hw) * N + n];
};

export class Flatten {
  private readonly fwd: Kernel;
  private readonly bwd: Kernel;
  constructor(device: Device, name: string, C: number, N: number, HW: number) {
    // the fc layer's input: read by its forward and its backward's weight gradient, before the next forward
    this.fwd = new Kernel(device, `${name}.forward`, toFeaturesBody, { output: [N, C * HW], constants: { N, HW }, reuseOutput: FORWARD_REUSES_OUTPUT });
    this.bwd = new Kernel(device, `${name}.backward`, fromFeaturesBody, { output: [HW, C * N], constants: { N, HW }, reuseOutput: BACKWARD_REUSES_OUTPUT });
  }
  forward(x: DeviceTensor): Promise<DeviceTensor> {
    return this.fwd.exec(x);
  }
  backward(g: DeviceTensor): Promise<DeviceTensor> {
    return this.bwd.exec(g);
  }
}
