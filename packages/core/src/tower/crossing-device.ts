/**
 * The crossings of crossing.ts done on the device, for the one-process trainer on webgpu, whose two towers
 * share one GPU: the concatenation [tower 0's; tower 1's] and tower t's summed gradient slice are kernels, so
 * that a step reads back only its loss and logits instead of every crossing tensor, and uploads nothing but
 * its images. A worker on webgpu (packages/worker's crossing-tensors.ts) joins, slices and sums with them too, so
 * that only what travels over gRPC goes between host and GPU. The values are those of concatTowers, towerSlice
 * and sumSlices: copies, and one float32 addition per element in the same order.
 */
import type { Device, DeviceTensor } from '../device.js';
import { Kernel, type KernelThis } from '../kernels/kernel-runner.js';

const concatBody = function (this: KernelThis, a: Float32Array, b: Float32Array) {
  const x = this.thread.x;
  const na = this.constants.na!;
  if (x < na) return a[x]!;
  return b[x - na]!;
};

const sliceBody = function (this: KernelThis, g: Float32Array) {
  return g[this.constants.at! + this.thread.x]!;
};

// (tower 0's slice) + (tower 1's slice), in that order, as sumSlices adds them
const sliceSumBody = function (this: KernelThis, g0: Float32Array, g1: Float32Array) {
  const i = this.constants.at! + this.thread.x;
  return g0[i]! + g1[i]!;
};

/**
 * The crossing kernels of one device, one per crossing point, direction and size. Each writes every call into
 * one device buffer (KernelOptions.reuseOutput): a kernel runs once a step, and what it wrote (a segment's
 * input, kept for its backward pass; an output gradient) is dead before its next call, in the next step or
 * evaluation; its consumers' bind groups then stay the same from step to step. The results are tracked on
 * this device (the trainer's device 0) and read by both towers, so this device must not release them before
 * the other tower's backward pass is done: the one-process trainer updates (and so releases) only after both
 * towers' backward passes.
 */
export class DeviceCrossings {
  private readonly kernels = new Map<string, Kernel>();

  constructor(private readonly device: Device) {}

  private kernel(key: string, make: () => Kernel): Kernel {
    let k = this.kernels.get(key);
    if (!k) {
      k = make();
      this.kernels.set(key, k);
    }
    return k;
  }

  /** Segment i's input [out0; out1], each `n` floats. */
  concat(i: number, out0: DeviceTensor, out1: DeviceTensor, n: number): Promise<DeviceTensor> {
    return this.kernel(`concat ${i} ${n}`, () => new Kernel(this.device, 'crossing.concat', concatBody, { output: [2 * n], constants: { na: n }, reuseOutput: true })).exec(out0, out1);
  }

  /** Tower t's half of segment i's input gradient `dIn` (2 * `half` floats): towerSlice. */
  slice(i: number, dIn: DeviceTensor, half: number, t: 0 | 1): Promise<DeviceTensor> {
    return this.kernel(`slice ${i} ${half} ${t}`, () => new Kernel(this.device, 'crossing.slice', sliceBody, { output: [half], constants: { at: t * half }, reuseOutput: true })).exec(dIn);
  }

  /** Tower t's output gradient from both towers' gradients of segment i's input (2 * `half` floats each): sumSlices of their slices t. */
  sliceSum(i: number, g0: DeviceTensor, g1: DeviceTensor, half: number, t: 0 | 1): Promise<DeviceTensor> {
    return this.kernel(`sum ${i} ${half} ${t}`, () => new Kernel(this.device, 'crossing.sum', sliceSumBody, { output: [half], constants: { at: t * half }, reuseOutput: true })).exec(g0, g1);
  }

  /** A tower's output gradient from the two slices t (`half` floats each), tower 0's and tower 1's: sumSlices. */
  sum(i: number, from0: DeviceTensor, from1: DeviceTensor, half: number): Promise<DeviceTensor> {
    // two tensors of `half` floats are their own slices 0
    return this.sliceSum(i, from0, from1, half, 0);
  }
}

/** Crossing kernels by what owns them: a device (the one-process trainer) or a tower (a worker). */
const owned = new WeakMap<object, DeviceCrossings>();

function crossingsOf(owner: object, device: Device): DeviceCrossings {
  let c = owned.get(owner);
  if (!c) {
    c = new DeviceCrossings(device);
    owned.set(owner, c);
  }
  return c;
}

/**
 * The crossing kernels of one tower of a worker (a Tower object: the run's, a micro-batch's, an evaluation
 * size's), made at its first use: their buffers hold that tower's crossing tensors, and go with it when a new
 * run replaces it.
 */
export function towerCrossings(tower: { readonly device: Device }): DeviceCrossings {
  return crossingsOf(tower, tower.device);
}

/** The crossing kernels of `device`, made at the first use. */
export function deviceCrossings(device: Device): DeviceCrossings {
  return crossingsOf(device, device);
}
