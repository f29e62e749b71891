/**
 * Inverted dropout: y = x * mask, the mask holding 0 or 1/(1-rate), drawn from
 * a seeded generator (random.ts) so that the one-process and the two-worker
 * runs drop the same units. At test time the layer is the identity, which is
 * equivalent to the paper's multiplying by 0.5 at test time.
 *
 * In AlexNet dropout follows fc -> ReLU: the fc layer's GEMM then multiplies by the mask
 * itself (Gemm's `masked`, tower/fusion.ts) and only the backward runs here, with the ReLU's
 * backward folded in (`reluBefore`): dx = dy * mask where the ReLU's output was positive, else 0.
 * Reading the masked output y * mask instead of y, that is the same floats but for the sign of a
 * zero: where the mask dropped a unit whose y was positive, the ReLU's kernel passed dy * 0
 * (-0 for a negative dy), this one gives +0; sums and products of those gradients are equal.
 */
import type { Device, DeviceTensor } from '../device.js';
import { BACKWARD_REUSES_OUTPUT, FORWARD_REUSES_OUTPUT, Kernel, type KernelThis } from './kernel-runner.js';
import { Rng } from '../random.js';

const forwardBody = function (this: KernelThis, x: Float32Array, mask: Float32Array) {
  return x[this.thread.x] * mask[this.thread.x];
};

// y: the layer's input (the ReLU's output, or that output times the mask where the fc GEMM applied it)
const backwardBody = function (this: KernelThis, y: Float32Array, dy: Float32Array, mask: Float32Array) {
  let g = 0;
  if (this.constants.relu === 0 || y[this.thread.x] > 0) g = dy[this.thread.x] * mask[this.thread.x];
  return g;
};

export function dropoutMask(size: number, rate: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const keep = 1 / (1 - rate);
  const mask = new Float32Array(size);
  for (let i = 0; i < size; i++) mask[i] = rng.next() >= rate ? keep : 0;
  return mask;
}

export class Dropout {
  private readonly fwd: Kernel;
  private readonly bwd: Kernel;
  /** Without a ReLU folded in, the backward's unread y argument (one float). */
  private readonly noInput: Float32Array | null;
  /**
   * `reluBefore`: the input is a ReLU's output and backward() returns the gradient of the ReLU's
   * input (the ReLU's backward folded in).
   */
  constructor(device: Device, name: string, size: number, readonly reluBefore = false) {
    this.noInput = reluBefore ? null : new Float32Array(1);
    // not called where the GEMM before applies the mask (gpu.js builds a kernel on its first call)
    this.fwd = new Kernel(device, `${name}.forward`, forwardBody, { output: [size], reuseOutput: FORWARD_REUSES_OUTPUT });
    this.bwd = new Kernel(device, `${name}.backward`, backwardBody, { output: [size], constants: { relu: reluBefore ? 1 : 0 }, reuseOutput: BACKWARD_REUSES_OUTPUT });
  }
  /** x * mask. */
  forward(x: DeviceTensor, mask: DeviceTensor): Promise<DeviceTensor> {
    return this.fwd.exec(x, mask);
  }
  /** The gradient of the input from dy: y is the forward's input (read only where a ReLU is folded in). */
  backward(y: DeviceTensor, dy: DeviceTensor, mask: DeviceTensor): Promise<DeviceTensor> {
    return this.bwd.exec(this.noInput ?? y, dy, mask);
  }
}
