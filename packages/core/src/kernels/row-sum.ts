/** Sum along rows: out[m] = sum_n x[m][n]. The bias gradient of conv and fc layers (x = dy in [out][positions]). */
import type { Device, DeviceTensor } from '../device.js';
import { Kernel, type KernelThis } from './kernel-runner.js';

const body = function (this: KernelThis, x: Float32Array) {
  const base = this.thread.x * this.constants.N;
  let s = 0;
  for (let n = 0; n < this.constants.N; n++) s += x[base + n];
  return s;
};

export class RowSum {
  private readonly kernel: Kernel;
  constructor(device: Device, name: string, M: number, N: number) {
    // a bias gradient is read by the layer's update in the same step, before this kernel's next call (as
    // the weight gradient's GEMM, whose result is reused the same way)
    this.kernel = new Kernel(device, name, body, { output: [M], constants: { N }, reuseOutput: true });
  }
  run(x: DeviceTensor): Promise<DeviceTensor> {
    return this.kernel.exec(x);
  }
}
