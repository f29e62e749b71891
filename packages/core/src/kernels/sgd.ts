/**
 * The paper's update (section 5):
 *   v <- momentum v - weightDecay lr w - lr dL/dw
 *   w <- w + v
 */
import type { Device } from '../device.js';
import { Kernel, type KernelThis } from './kernel-runner.js';

const velocityBody = function (this: KernelThis, w: Float32Array, v: Float32Array, g: Float32Array, lr: number, momentum: number, weightDecay: number) {
  const i = this.thread.x;
  return momentum * v[i] - weightDecay * lr * w[i] - lr * g[i];
};

const weightBody = function (this: KernelThis, w: Float32Array, v: Float32Array) {
  return w[this.thread.x] + v[this.thread.x];
};

export interface SgdHyper {
  readonly lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
}

export const paperSgd: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005 };

export class Sgd {
  private readonly velocity: Kernel;
  private readonly weight: Kernel;
  constructor(device: Device, name: string, size: number) {
    this.velocity = new Kernel(device, `${name}.velocity`, velocityBody, { output: [size] });
    this.weight = new Kernel(device, `${name}.weight`, weightBody, { output: [size] });
  }
  /** Returns the new weights and velocity. */
  async step(w: Float32Array, v: Float32Array, g: Float32Array, h: SgdHyper): Promise<{ w: Float32Array; v: Float32Array }> {
    const vNew = await this.velocity.run(w, v, g, h.lr, h.momentum, h.weightDecay);
    const wNew = await this.weight.run(w, vNew);
    return { w: wNew, v: vNew };
  }
}
