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
  const base = this.thread.x; // position in the channel's plane
  const c = this.thread.y; // channel: the same for a whole SIMD quad on webasm, so its branches are real branches
  const plane = this.constants.plane; // N*H*W: distance between channels
  const i = c * plane + base;
  const half = this.constants.half;
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
  const base = this.thread.x;
  const c = this.thread.y;
  const plane = this.constants.plane;
  const i = c * plane + base;
  const half = this.constants.half;
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

// the paper's n = 5, unrolled: the squares of a in channels c-4 .. c+4 are loaded once (9 loads, where
// the loop above makes 25) and each s_j is summed from them in the forward's order (terms outside the
// channels are 0, and adding 0 to a sum of squares leaves it as it was)
const backward5Body = function (this: KernelThis, a: Float32Array, b: Float32Array, dy: Float32Array) {
  const base = this.thread.x;
  const c = this.thread.y;
  const plane = this.constants.plane;
  const i = c * plane + base;
  const C = this.constants.C;
  const k = this.constants.k;
  const alpha = this.constants.alpha;
  let q0 = 0;
  let q1 = 0;
  let q2 = 0;
  let q3 = 0;
  let q5 = 0;
  let q6 = 0;
  let q7 = 0;
  let q8 = 0;
  if (c >= 4) {
    const v = a[(c - 4) * plane + base];
    q0 = v * v;
  }
  if (c >= 3) {
    const v = a[(c - 3) * plane + base];
    q1 = v * v;
  }
  if (c >= 2) {
    const v = a[(c - 2) * plane + base];
    q2 = v * v;
  }
  if (c >= 1) {
    const v = a[(c - 1) * plane + base];
    q3 = v * v;
  }
  const ac = a[i];
  const q4 = ac * ac;
  if (c + 1 < C) {
    const v = a[(c + 1) * plane + base];
    q5 = v * v;
  }
  if (c + 2 < C) {
    const v = a[(c + 2) * plane + base];
    q6 = v * v;
  }
  if (c + 3 < C) {
    const v = a[(c + 3) * plane + base];
    q7 = v * v;
  }
  if (c + 4 < C) {
    const v = a[(c + 4) * plane + base];
    q8 = v * v;
  }
  let sum = 0;
  if (c >= 2) {
    const idx = (c - 2) * plane + base;
    sum += (dy[idx] * b[idx]) / (k + alpha * (q0 + q1 + q2 + q3 + q4));
  }
  if (c >= 1) {
    const idx = (c - 1) * plane + base;
    sum += (dy[idx] * b[idx]) / (k + alpha * (q1 + q2 + q3 + q4 + q5));
  }
  const sc = k + alpha * (q2 + q3 + q4 + q5 + q6);
  const dyc = dy[i];
  sum += (dyc * b[i]) / sc;
  if (c + 1 < C) {
    const idx = (c + 1) * plane + base;
    sum += (dy[idx] * b[idx]) / (k + alpha * (q3 + q4 + q5 + q6 + q7));
  }
  if (c + 2 < C) {
    const idx = (c + 2) * plane + base;
    sum += (dy[idx] * b[idx]) / (k + alpha * (q4 + q5 + q6 + q7 + q8));
  }
  let f = 0;
  if (this.constants.fast === 1) {
    const r = Math.sqrt(sc);
    f = 1 / (r * Math.sqrt(r));
  } else {
    f = Math.pow(sc, -this.constants.beta);
  }
  let g = 0;
  if (this.constants.relu === 0 || ac > 0) g = dyc * f - this.constants.twoAlphaBeta * ac * sum;
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
    // [channel][plane] as two output axes: the channel is thread.y, with no division of a flat index
    const fast = spec.beta === 0.75 ? 1 : 0;
    const constants = { plane, C, size: spec.size, half: (spec.size - 1) / 2, k: spec.k, alpha: spec.alpha, beta: spec.beta, twoAlphaBeta: 2 * spec.alpha * spec.beta, fast, relu: reluBefore ? 1 : 0 };
    // the output is read by the next layer and by this layer's backward, both before the next forward
    this.fwd = new Kernel(device, `${name}.forward`, forwardBody, { output: [plane, C], constants, reuseOutput: FORWARD_REUSES_OUTPUT });
    this.bwd = new Kernel(device, `${name}.backward`, spec.size === 5 ? backward5Body : backwardBody, { output: [plane, C], constants, reuseOutput: BACKWARD_REUSES_OUTPUT });
  }
  async forward(a: DeviceTensor): Promise<LrnState> {
    return { a, b: await this.fwd.exec(a) };
  }
  backward(st: LrnState, dy: DeviceTensor): Promise<DeviceTensor> {
    return this.bwd.exec(st.a, st.b, dy);
  }
}
