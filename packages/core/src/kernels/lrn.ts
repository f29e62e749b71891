/**
 * Cross-channel local response normalisation (paper section 3.3), in layout CNHW:
 *   s_c = k + alpha * sum_{j=c-n/2}^{c+n/2} a_j^2     (alpha NOT divided by n: the paper's convention)
 *   b_c = a_c * s_c^-beta
 * Backward:
 *   da_c = dy_c * s_c^-beta - 2 alpha beta a_c * sum_{j: |j-c| <= n/2} dy_j b_j / s_j
 * The forward keeps s for the backward pass. With beta = 0.75 (the paper's)
 * s^-beta is computed as 1 / (sqrt(s) sqrt(sqrt(s))): sqrt is a native wasm
 * opcode while pow is a call out to JavaScript.
 */
import type { Device, DeviceTensor } from '../device.js';
import { BACKWARD_REUSES_OUTPUT, Kernel, type KernelThis } from './kernel-runner.js';
import type { LrnLayer } from '../model/spec.js';

const scaleBody = function (this: KernelThis, a: Float32Array) {
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
  return this.constants.k + this.constants.alpha * sum;
};

// s^-beta: for the paper's beta = 0.75 as 1 / (sqrt(s) sqrt(sqrt(s))) (constant fast = 1)
const outputBody = function (this: KernelThis, a: Float32Array, s: Float32Array) {
  const sv = s[this.thread.x];
  let f = 0;
  if (this.constants.fast === 1) {
    const r = Math.sqrt(sv);
    f = 1 / (r * Math.sqrt(r));
  } else {
    f = Math.pow(sv, -this.constants.beta);
  }
  return a[this.thread.x] * f;
};

const backwardBody = function (this: KernelThis, a: Float32Array, s: Float32Array, b: Float32Array, dy: Float32Array) {
  const i = this.thread.x;
  const plane = this.constants.plane;
  let c = Math.floor(i / plane);
  if (i - c * plane < 0) c -= 1; // exact where the division is float32 (webasm), which may round a whole quotient down; on webgpu Math.floor of integers is exact (strictIntegers)
  if (i - c * plane >= plane) c += 1;
  const half = this.constants.half;
  const base = i - c * plane;
  let sum = 0;
  for (let d = 0; d < this.constants.size; d++) {
    const j = c - half + d;
    if (j >= 0 && j < this.constants.C) {
      const idx = j * plane + base;
      sum += (dy[idx] * b[idx]) / s[idx];
    }
  }
  const sv = s[i];
  let f = 0;
  if (this.constants.fast === 1) {
    const r = Math.sqrt(sv);
    f = 1 / (r * Math.sqrt(r));
  } else {
    f = Math.pow(sv, -this.constants.beta);
  }
  return dy[i] * f - this.constants.twoAlphaBeta * a[i] * sum;
};

export interface LrnState {
  readonly a: DeviceTensor;
  readonly s: DeviceTensor;
  readonly b: DeviceTensor;
}

export class Lrn {
  private readonly scale: Kernel;
  private readonly out: Kernel;
  private readonly bwd: Kernel;
  constructor(device: Device, name: string, spec: LrnLayer, C: number, plane: number) {
    const size = C * plane;
    const fast = spec.beta === 0.75 ? 1 : 0;
    const constants = { plane, C, size: spec.size, half: (spec.size - 1) / 2, k: spec.k, alpha: spec.alpha, beta: spec.beta, twoAlphaBeta: 2 * spec.alpha * spec.beta, fast };
    this.scale = new Kernel(device, `${name}.scale`, scaleBody, { output: [size], constants });
    this.out = new Kernel(device, `${name}.forward`, outputBody, { output: [size], constants });
    this.bwd = new Kernel(device, `${name}.backward`, backwardBody, { output: [size], constants, reuseOutput: BACKWARD_REUSES_OUTPUT });
  }
  async forward(a: DeviceTensor): Promise<LrnState> {
    const s = await this.scale.exec(a);
    const b = await this.out.exec(a, s);
    return { a, s, b };
  }
  backward(st: LrnState, dy: DeviceTensor): Promise<DeviceTensor> {
    return this.bwd.exec(st.a, st.s, st.b, dy);
  }
}
