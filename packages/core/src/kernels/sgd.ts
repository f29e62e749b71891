/**
 * The paper's update (section 5):
 *   v <- momentum v - weightDecay lr w - lr dL/dw
 *   w <- w + v
 */
import type { Device, DeviceTensor } from '../device.js';
import { Kernel, WEBGPU_MAX_FLOATS, type KernelThis } from './kernel-runner.js';

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
  /**
   * Whether weight decay applies to the biases too (default false). The paper's rule is written for
   * the weights; cuda-convnet's layer configs and Caffe's AlexNet give biases no decay. Runs checkpointed
   * before this option existed decayed their biases and keep doing so when resumed (legacyHyper).
   */
  readonly decayBiases?: boolean;
}

export const paperSgd: SgdHyper = { lr: 0.01, momentum: 0.9, weightDecay: 0.0005, decayBiases: false };

/** The update rule of a checkpoint's saved hyper-parameters: those saved without `decayBiases` decayed the biases. */
export function legacyHyper<H extends Partial<SgdHyper>>(saved: H): H & { decayBiases: boolean } {
  return { ...saved, decayBiases: saved.decayBiases ?? true };
}

/** The hyper-parameters that update a layer's biases: no weight decay unless asked for. */
export function biasHyper(h: SgdHyper): SgdHyper {
  return h.decayBiases === true ? h : { ...h, weightDecay: 0 };
}

/** Parameters are updated in blocks of at most this many (the paper's fc6 has 18.9 M per tower; see WEBGPU_MAX_FLOATS). */
const SGD_BLOCK = WEBGPU_MAX_FLOATS;

export class Sgd {
  private readonly velocity: Kernel[] = [];
  private readonly weight: Kernel[] = [];
  /** `block`: floats per kernel call (tests make it small to run the blocked path on small arrays). */
  constructor(private readonly device: Device, name: string, readonly size: number, private readonly block = SGD_BLOCK) {
    for (let i0 = 0; i0 < size; i0 += block) {
      const n = Math.min(block, size - i0);
      this.velocity.push(new Kernel(device, `${name}.velocity`, velocityBody, { output: [n] }));
      this.weight.push(new Kernel(device, `${name}.weight`, weightBody, { output: [n] }));
    }
  }
  /** Returns the new weights and velocity. */
  async step(w: DeviceTensor, v: DeviceTensor, g: DeviceTensor, h: SgdHyper): Promise<{ w: DeviceTensor; v: DeviceTensor }> {
    if (this.velocity.length === 1) {
      const vNew = await this.velocity[0]!.exec(w, v, g, h.lr, h.momentum, h.weightDecay);
      return { w: await this.weight[0]!.exec(w, vNew), v: vNew };
    }
    // blocks are slices of host arrays: on webgpu this is a round trip (the paper's fc6 only)
    [w, v, g] = await Promise.all([w, v, g].map((t) => this.device.toHost(t, this.size)));
    const wOut = new Float32Array(this.size);
    const vOut = new Float32Array(this.size);
    for (let b = 0; b < this.velocity.length; b++) {
      const i0 = b * this.block;
      const i1 = Math.min(this.size, i0 + this.block);
      const wb = (w as Float32Array).subarray(i0, i1);
      const vNew = await this.velocity[b]!.run(wb, (v as Float32Array).subarray(i0, i1), (g as Float32Array).subarray(i0, i1), h.lr, h.momentum, h.weightDecay);
      vOut.set(vNew, i0);
      wOut.set(await this.weight[b]!.run(wb, vNew), i0);
    }
    return { w: wOut, v: vOut };
  }
}
