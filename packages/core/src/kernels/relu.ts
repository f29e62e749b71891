/** ReLU forward (max(0, x)) and backward (dy where the forward output was positive), elementwise. */
import type { Device, DeviceTensor } from '../device.js';
import { BACKWARD_REUSES_OUTPUT, Kernel, type KernelThis } from './kernel-runner.js';

const forwardBody = function (this: KernelThis, x: Float32Array) {
  return Math.max(x[this.thread.x], 0);
};

const backwardBody = function (this: KernelThis, y: Float32Array, dy: Float32Array) {
  let g = 0;
  if (y[this.thread.x] > 0) g = dy[this.thread.x];
  return g;
};

export class Relu {
  private readonly fwd: Kernel;
  private readonly bwd: Kernel;
  constructor(device: Device, name: string, readonly size: number) {
    this.fwd = new Kernel(device, `${name}.forward`, forwardBody, { output: [size] });
    this.bwd = new Kernel(device, `${name}.backward`, backwardBody, { output: [size], reuseOutput: BACKWARD_REUSES_OUTPUT });
  }
  forward(x: DeviceTensor): Promise<DeviceTensor> {
    return this.fwd.exec(x);
  }
  /** Gradient through ReLU, from its output y (y > 0 exactly where x > 0). */
  backward(y: DeviceTensor, dy: DeviceTensor): Promise<DeviceTensor> {
    return this.bwd.exec(y, dy);
  }
}
