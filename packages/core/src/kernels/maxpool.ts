/**
 * Overlapping max-pooling (3x3, stride 2 in AlexNet) in layout CNHW.
 * The forward takes each window's maximum and records, per output, which cell of its window won (0 .. size*size-1,
 * first maximum in row-major order): a window offset rather than a flat index,
 * so it stays exact in float32 at any activation size. The backward is
 * gather-style: each input cell sums the gradients of the windows it won. Where a ReLU comes
 * right before the pool (conv5 -> relu5 -> pool5 in AlexNet), its backward is folded into the
 * pool's (`reluBefore`): a window whose maximum is not positive (all zeros after the ReLU) records
 * no winner, so its gradient reaches no cell. That is exactly the ReLU's backward: a cell gets
 * gradient only from windows it won, and it won a window with a positive maximum only if it is
 * positive itself; one pass over memory less, and no extra load in the pool's backward.
 */
import type { Device, DeviceTensor } from '../device.js';
import { BACKWARD_REUSES_OUTPUT, FORWARD_REUSES_OUTPUT, Kernel, type KernelThis } from './kernel-runner.js';

const argmaxBody = function (this: KernelThis, x: Float32Array) {
  const ox = this.thread.x;
  const oy = this.thread.y;
  const cn = this.thread.z;
  const base = cn * this.constants.H * this.constants.W;
  const y0 = oy * this.constants.S;
  const x0 = ox * this.constants.S;
  let best = x[base + y0 * this.constants.W + x0];
  let arg = 0;
  for (let ky = 0; ky < this.constants.K; ky++) {
    for (let kx = 0; kx < this.constants.K; kx++) {
      const v = x[base + (y0 + ky) * this.constants.W + x0 + kx];
      if (v > best) {
        best = v;
        arg = ky * this.constants.K + kx;
      }
    }
  }
  // the ReLU before (reluBefore): a window of zeros has no winner (K*K matches no cell)
  if (this.constants.relu === 1 && !(best > 0)) arg = this.constants.K * this.constants.K;
  return arg;
};

// the window's maximum, read again rather than gathered through the argmax: the winner's offset is a
// float (the argmax result), and an index computed from it would be float arithmetic on webgpu
const maxBody = function (this: KernelThis, x: Float32Array) {
  const ox = this.thread.x;
  const oy = this.thread.y;
  const cn = this.thread.z;
  const base = cn * this.constants.H * this.constants.W;
  const y0 = oy * this.constants.S;
  const x0 = ox * this.constants.S;
  let best = x[base + y0 * this.constants.W + x0];
  for (let ky = 0; ky < this.constants.K; ky++) {
    for (let kx = 0; kx < this.constants.K; kx++) {
      best = Math.max(best, x[base + (y0 + ky) * this.constants.W + x0 + kx]);
    }
  }
  return best;
};

const backwardBody = function (this: KernelThis, arg: Float32Array, dy: Float32Array) {
  const ix = this.thread.x;
  const iy = this.thread.y;
  const cn = this.thread.z;
  const S = this.constants.S;
  const K = this.constants.K;
  // windows oy with oy*S <= iy <= oy*S + K - 1
  const oyLo = Math.max(Math.floor((iy - K + S) / S), 0);
  const oyHi = Math.min(Math.floor(iy / S), this.constants.OH - 1);
  const oxLo = Math.max(Math.floor((ix - K + S) / S), 0);
  const oxHi = Math.min(Math.floor(ix / S), this.constants.OW - 1);
  let sum = 0;
  // at most span = ceil(K / S) windows per axis; counters start at a literal (see lrn.ts)
  for (let a = 0; a < this.constants.span; a++) {
    const oy = oyLo + a;
    if (oy <= oyHi) {
      for (let b = 0; b < this.constants.span; b++) {
        const ox = oxLo + b;
        if (ox <= oxHi) {
          const o = (cn * this.constants.OH + oy) * this.constants.OW + ox;
          if (arg[o] === (iy - oy * S) * K + (ix - ox * S)) sum += dy[o];
        }
      }
    }
  }
  return sum;
};

export interface PoolState {
  readonly arg: DeviceTensor;
}

export class MaxPool {
  private readonly argmax: Kernel;
  private readonly max: Kernel;
  private readonly bwd: Kernel;
  /**
   * `reluBefore`: the input is a ReLU's output and backward() returns the gradient of the ReLU's
   * input (the ReLU's backward folded in).
   */
  constructor(device: Device, name: string, CN: number, H: number, W: number, K: number, S: number, readonly reluBefore = false) {
    const OH = Math.floor((H - K) / S) + 1;
    const OW = Math.floor((W - K) / S) + 1;
    const constants = { H, W, K, S, OH, OW, span: Math.ceil(K / S), relu: reluBefore ? 1 : 0 };
    // arg is read by this layer's backward, y by the next layer, both before the next forward
    this.argmax = new Kernel(device, `${name}.argmax`, argmaxBody, { output: [OW, OH, CN], constants, reuseOutput: FORWARD_REUSES_OUTPUT });
    this.max = new Kernel(device, `${name}.forward`, maxBody, { output: [OW, OH, CN], constants, reuseOutput: FORWARD_REUSES_OUTPUT });
    this.bwd = new Kernel(device, `${name}.backward`, backwardBody, { output: [W, H, CN], constants, reuseOutput: BACKWARD_REUSES_OUTPUT });
  }
  async forward(x: DeviceTensor): Promise<{ y: DeviceTensor; state: PoolState }> {
    const arg = await this.argmax.exec(x);
    const y = await this.max.exec(x);
    return { y, state: { arg } };
  }
  backward(state: PoolState, dy: DeviceTensor): Promise<DeviceTensor> {
    return this.bwd.exec(state.arg, dy);
  }
}
