/**
 * Inverted dropout: y = x * mask, the mask holding 0 or 1/(1-rate), drawn from
 * a seeded generator (random.ts) so that the one-process and the two-worker
 * runs drop the same units. At test time the layer is the identity, which is
 * equivalent to the paper's multiplying by 0.5 at test time.
 */
import type { Device, DeviceTensor } from '../device.js';
import { Kernel, type KernelThis } from './kernel-runner.js';
import { Rng } from '../random.js';

const body = function (this: KernelThis, x: Float32Array, mask: Float32Array) {
  return x[this.thread.x] * mask[this.thread.x];
};

export function dropoutMask(size: number, rate: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const keep = 1 / (1 - rate);
  const mask = new Float32Array(size);
  for (let i = 0; i < size; i++) mask[i] = rng.next() >= rate ? keep : 0;
  return mask;
}

export class Dropout {
  private readonly kernel: Kernel;
  constructor(device: Device, name: string, size: number) {
    this.kernel = new Kernel(device, name, body, { output: [size] });
  }
  /** Forward (x) and backward (dy) are the same product with the mask. */
  apply(x: DeviceTensor, mask: DeviceTensor): Promise<DeviceTensor> {
    return this.kernel.exec(x, mask);
  }
}
