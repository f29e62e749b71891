/**
 * Softmax cross-entropy on logits laid out [class][image]:
 *   loss_n = logsumexp(z[:, n]) - z[label_n, n]
 *   dz[c][n] = (softmax(z)[c][n] - [c == label_n]) / N      (gradient of the batch mean)
 */
import type { Device, DeviceTensor } from '../device.js';
import { Kernel, type KernelThis } from './kernel-runner.js';

const lossBody = function (this: KernelThis, z: Float32Array, labels: Float32Array) {
  const n = this.thread.x;
  const N = this.constants.N;
  let m = z[n];
  for (let c = 1; c < this.constants.C; c++) m = Math.max(m, z[c * N + n]);
  let s = 0;
  // the label's logit picked in the loop: an index computed from the (float) label would be float arithmetic on webgpu
  let picked = 0;
  for (let c = 0; c < this.constants.C; c++) {
    const v = z[c * N + n];
    s += Math.exp(v - m);
    if (labels[n] === c) picked = v;
  }
  return Math.log(s) + m - picked;
};

const gradBody = function (this: KernelThis, z: Float32Array, labels: Float32Array) {
  const n = this.thread.x;
  const c0 = this.thread.y;
  const N = this.constants.N;
  let m = z[n];
  for (let c = 1; c < this.constants.C; c++) m = Math.max(m, z[c * N + n]);
  let s = 0;
  for (let c = 0; c < this.constants.C; c++) s += Math.exp(z[c * N + n] - m);
  let g = Math.exp(z[c0 * N + n] - m) / s;
  if (labels[n] === c0) g -= 1;
  return g / N;
};

export class SoftmaxCrossEntropy {
  private readonly loss: Kernel;
  private readonly grad: Kernel;
  constructor(device: Device, name: string, readonly classes: number, readonly batch: number) {
    const constants = { N: batch, C: classes };
    this.loss = new Kernel(device, `${name}.loss`, lossBody, { output: [batch], constants });
    this.grad = new Kernel(device, `${name}.backward`, gradBody, { output: [batch, classes], constants });
  }
  /** Per-image losses, on the host. */
  forward(z: DeviceTensor, labels: DeviceTensor): Promise<Float32Array> {
    return this.loss.run(z, labels);
  }
  backward(z: DeviceTensor, labels: DeviceTensor): Promise<DeviceTensor> {
    return this.grad.exec(z, labels);
  }
}
