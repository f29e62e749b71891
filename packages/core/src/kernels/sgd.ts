/**
 * The paper's update (section 5):
 *   v <- momentum v - weightDecay lr w - lr dL/dw
 *   w <- w + v
 */
import type { Device, DeviceTensor } from '../device.js';
import { Kernel, type KernelThis } from './kernel-runner.js';

// h = [lr, momentum, weightDecay]: a tensor rather than three numbers, so that no value is ever typed as
// an integer argument (on webgpu gpu.js types a whole number as i32 on its first call: strictIntegers)
const velocityBody = function (this: KernelThis, w: Float32Array, v: Float32Array, g: Float32Array, h: Float32Array) {
  const i = this.thread.x;
  const lr = h[0];
  return h[1] * v[i] - h[2] * lr * w[i] - lr * g[i];
};

const weightBody = function (this: KernelThis, w: Float32Array, v: Float32Array) {
  return w[this.thread.x] + v[this.thread.x];
};

// webgpu: weights and momentum packed in one tensor [w; v] (n each) and updated by one kernel: row 0
// of the output is the new w, row 1 the new v, so the result is the next step's packed tensor
const packedBody = function (this: KernelThis, wv: Float32Array, g: Float32Array, h: Float32Array) {
  const i = this.thread.x;
  const w = wv[i];
  const lr = h[0];
  const v = h[1] * wv[this.constants.n + i] - h[2] * lr * w - lr * g[i];
  let out = v;
  if (this.thread.y === 0) out = w + v;
  return out;
};

/**
 * Whether a parameter tensor of `size` floats lives packed with its momentum, [w; v] in one device
 * tensor, so that one kernel updates both (ParamStore packs them; Sgd.step sees w === v): on webgpu,
 * where the pair fits in one binding.
 */
export function packsWithMomentum(device: Device, size: number): boolean {
  return device.resident && 2 * size <= device.maxKernelFloats;
}

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

/** Packed [w; v] tensors up to this many floats (8 MiB) are updated by two kernels taking turns (Sgd.packed). */
export const TURNS_MAX_FLOATS = 1 << 21;

export class Sgd {
  private readonly velocity: Kernel[] = [];
  private readonly weight: Kernel[] = [];
  /** The hyper-parameters as the kernels read them, uploaded again only when they change. */
  private hyper: { key: string; t: DeviceTensor } | null = null;
  /**
   * `block`: floats per kernel call; by default all a kernel may address (Device.maxKernelFloats: on
   * webgpu every layer is one block and stays on the device; on webasm the paper's fc6 is updated in
   * blocks). Tests make it small to run the blocked path on small arrays.
   */
  /**
   * The one-kernel update of a packed [w; v] tensor (packsWithMomentum). Up to TURNS_MAX_FLOATS, two kernels
   * taking turns: each writes into one device buffer of its own (KernelOptions.reuseOutput), reading the
   * other's, so that no step allocates a new one and the kernels that read the weights bind the same two
   * buffers step after step. Larger tensors (the paper's fc7 and fc8) would hold a second copy for the whole
   * run for a saving that is small beside their update: one kernel, a fresh buffer each step.
   */
  private readonly packed: [Kernel, Kernel] | [Kernel] | null;
  /** The result each of the two gave last (the next step reads it: the other kernel takes that turn). */
  private readonly lastPacked: [DeviceTensor | null, DeviceTensor | null] = [null, null];

  /** Whether step() takes weights and momentum packed in one [w; v] tensor. */
  get packs(): boolean {
    return this.packed !== null;
  }

  constructor(private readonly device: Device, name: string, readonly size: number, private readonly block = device.maxKernelFloats) {
    const turns = 2 * size <= TURNS_MAX_FLOATS;
    const packed = () => new Kernel(device, `${name}.update`, packedBody, { output: [size, 2], constants: { n: size }, reuseOutput: turns });
    this.packed = packsWithMomentum(device, size) && 2 * size <= block ? (turns ? [packed(), packed()] : [packed()]) : null;
    if (this.packed) return;
    for (let i0 = 0; i0 < size; i0 += block) {
      const n = Math.min(block, size - i0);
      this.velocity.push(new Kernel(device, `${name}.velocity`, velocityBody, { output: [n] }));
      this.weight.push(new Kernel(device, `${name}.weight`, weightBody, { output: [n] }));
    }
  }

  private async hyperTensor(h: SgdHyper): Promise<DeviceTensor> {
    const key = `${h.lr} ${h.momentum} ${h.weightDecay}`;
    if (this.hyper?.key !== key) {
      if (this.hyper) this.device.drop(this.hyper.t);
      const t = await this.device.upload(Float32Array.of(h.lr, h.momentum, h.weightDecay));
      this.device.keep(t);
      this.hyper = { key, t };
    }
    return this.hyper.t;
  }

  /**
   * Returns the new weights and velocity. Where they are packed (w and v the same [w; v] tensor,
   * see packsWithMomentum) one kernel updates both and returns the next packed tensor as both.
   */
  async step(w: DeviceTensor, v: DeviceTensor, g: DeviceTensor, h: SgdHyper): Promise<{ w: DeviceTensor; v: DeviceTensor }> {
    const ht = await this.hyperTensor(h);
    if (this.packed) {
      if (w !== v) throw new Error(`${this.packed[0].name}: weights and momentum arrive packed, as one [w; v] tensor`);
      // taking turns: the kernel that did not write w (a kernel reads no buffer of its own)
      const k = this.packed.length === 2 && this.lastPacked[0] === w ? 1 : 0;
      const wv = await this.packed[k]!.exec(w, g, ht);
      this.lastPacked[k] = wv;
      return { w: wv, v: wv };
    }
    if (this.velocity.length === 1) {
      const vNew = await this.velocity[0]!.exec(w, v, g, ht);
      return { w: await this.weight[0]!.exec(w, vNew), v: vNew };
    }
    // blocks are slices of host arrays (webasm's fc6; on webgpu only where a layer is larger than the GPU binds)
    [w, v, g] = await Promise.all([w, v, g].map((t) => this.device.toHost(t, this.size)));
    const wOut = new Float32Array(this.size);
    const vOut = new Float32Array(this.size);
    for (let b = 0; b < this.velocity.length; b++) {
      const i0 = b * this.block;
      const i1 = Math.min(this.size, i0 + this.block);
      const wb = (w as Float32Array).subarray(i0, i1);
      const vNew = await this.velocity[b]!.run(wb, (v as Float32Array).subarray(i0, i1), (g as Float32Array).subarray(i0, i1), ht);
      vOut.set(vNew, i0);
      wOut.set(await this.weight[b]!.run(wb, vNew), i0);
    }
    return { w: wOut, v: vOut };
  }
}
