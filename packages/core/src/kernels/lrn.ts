/**
 * Cross-channel local response normalisation (paper section 3.3), in layout CNHW:
 *   s_c = k + alpha * sum_{j=c-n/2}^{c+n/2} a_j^2     (alpha NOT divided by n: the paper's convention)
 *   b_c = a_c * s_c^-beta
 * Backward:
 *   da_c = dy_c * s_c^-beta - 2 alpha beta a_c * sum_{j: |j-c| <= n/2} dy_j b_j / s_j
 *
 * One kernel each way. The forward computes s and b in one pass and keeps no s: the backward
 * computes every s_j it needs again from a (the same sums in the same order, so the same floats),
 * which costs n more loads per neighbour from cache-resident rows instead of a pass that writes s
 * and one that reads it back. Where a ReLU comes right before the LRN (conv -> relu -> lrn in
 * AlexNet), its backward is folded in too (`reluBefore`): da is zeroed where a (the ReLU's output)
 * is not positive, exactly what the ReLU's own backward kernel did.
 *
 * With beta = 0.75 (the paper's) s^-beta is computed as 1 / (sqrt(s) sqrt(sqrt(s))): sqrt is a
 * native wasm opcode while pow is a call out to JavaScript.
 */
import type { Device, DeviceTensor } from '../device.js';
import { BACKWARD_REUSES_OUTPUT, FORWARD_REUSES_OUTPUT, Kernel, type KernelThis } from './kernel-runner.js';
import type { LrnLayer } from '../model/spec.js';

const forwardBody = function (this: KernelThis, a: Float32Array) {
  const i = this.thread.x;
  const plane = this.constants.plane; // N*H*W: distance between channels
  let c = Math.floor(i / plane);
  if (i - c * plane < 0) c -= 1; // exact where the division is float32 (webasm), which may round a whole quotient down; on webgpu Math.floor of integers is exact (strictIntegers)
  if (i - c * plane >= plane) c += 1;
  const half = this.constants.half;
  const base = i - c * plane;
  let sum = 0;
  // counters start at a literal (gpu.js's WGSL without strictIntegers types other loop counters as f32, which cannot be incremented)
  for (let d = 0; d < this.constants.size; d++) {
    const j = c - half + d;
    if (j >= 0 && j < this.constants.C) {
      const v = a[j * plane + base];
      sum += v * v;
    }
  }
  const sv = this.constants.k + this.constants.alpha * sum;
  // s^-beta: for the paper's beta = 0.75 as 1 / (sqrt(s) sqrt(sqrt(s))) (constant fast = 1)
  let f = 0;
  if (this.constants.fast === 1) {
    const r = Math.sqrt(sv);
    f = 1 / (r * Math.sqrt(r));
  } else {
    f = Math.pow(sv, -this.constants.beta);
  }
  return a[i] * f;
};

const backwardBody = function (this: KernelThis, a: Float32Array, b: Float32Array, dy: Float32Array) {
  const i = this.thread.x;
  const plane = this.constants.plane;
  let c = Math.floor(i / plane);
  if (i - c * plane < 0) c -= 1; // exact where the division is float32 (webasm), which may round a whole quotient down; on webgpu Math.floor of integers is exact (strictIntegers)
  if (i - c * plane >= plane) c += 1;
  const half = this.constants.half;
  const base = i - c * plane;
  let sum = 0;
  let sc = 0;
  for (let d = 0; d < this.constants.size; d++) {
    const j = c - half + d;
    if (j >= 0 && j < this.constants.C) {
      // s_j as the forward computed it: the same terms added in the same order
      let q = 0;
      for (let e = 0; e < this.constants.size; e++) {
        const m = j - half + e;
        if (m >= 0 && m < this.constants.C) {
          const v = a[m * plane + base];
          q += v * v;
        }
      }
      const sj = this.constants.k + this.constants.alpha * q;
      if (d === half) sc = sj;
      const idx = j * plane + base;
      sum += (dy[idx] * b[idx]) / sj;
    }
  }
  let f = 0;
  if (this.constants.fast === 1) {
    const r = Math.sqrt(sc);
    f = 1 / (r * Math.sqrt(r));
  } else {
    f = Math.pow(sc, -this.constants.beta);
  }
  let g = 0;
  // the ReLU before the LRN (reluBefore): its gradient passes only where its output a is positive
  if (this.constants.relu === 0 || a[i] > 0) g = dy[i] * f - this.constants.twoAlphaBeta * a[i] * sum;
  return g;
};

export interface LrnState {
  readonly a: DeviceTensor;
  readonly b: DeviceTensor;
}

export class Lrn {
  private readonly fwd: Kernel;
  private readonly bwd: Kernel;
  /**
   * `reluBefore`: the layer's input is a ReLU's output and backward() returns the gradient of the
   * ReLU's input (the ReLU's backward folded in).
   */
  constructor(device: Device, name: string, spec: LrnLayer, C: number, plane: number, readonly reluBefore = false) {
    const size = C * plane;
    const fast = spec.beta === 0.75 ? 1 : 0;
    const constants = { plane, C, size: spec.size, half: (spec.size - 1) / 2, k: spec.k, alpha: spec.alpha, beta: spec.beta, twoAlphaBeta: 2 * spec.alpha * spec.beta, fast, relu: reluBefore ? 1 : 0 };
    // the output is read by the next layer and by this layer's backward, both before the next forward
    this.fwd = new Kernel(device, `${name}.forward`, forwardBody, { output: [size], constants, reuseOutput: FORWARD_REUSES_OUTPUT });
    this.bwd = new Kernel(device, `${name}.backward`, backwardBody, { output: [size], constants, reuseOutput: BACKWARD_REUSES_OUTPUT });
  }
  async forward(a: DeviceTensor): Promise<LrnState> {
    return { a, b: await this.fwd.exec(a) };
  }
  backward(st: LrnState, dy: DeviceTensor): Promise<DeviceTensor> {
    return this.bwd.exec(st.a, st.b, dy);
  }
}
