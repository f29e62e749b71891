/**
 * The weight gradients of a step cut into micro-batches (tower/micro-batch.ts): each micro-batch's
 * Tower leaves the gradient of its images in its `grads` (with the loss gradient scaled to the whole
 * batch, so these are parts of one sum); the step's gradient is their sum, which the tower that
 * updates (the whole batch's) then takes as its own. On webasm and cpu the sum is taken on the host
 * into buffers kept for the run; on webgpu by a small kernel, so that the gradients stay on the GPU.
 */
import type { Device, DeviceTensor } from '../device.js';
import { Kernel, type KernelThis } from '../kernels/kernel-runner.js';
import type { Gradients, Tower } from './tower.js';

const addBody = function (this: KernelThis, a: Float32Array, b: Float32Array) {
  return a[this.thread.x] + b[this.thread.x];
};

/** a + b, element by element, for arrays of `length` floats: the kernel the GPU sums gradients with. */
export class AddKernel {
  private readonly k: Kernel;
  constructor(device: Device, readonly length: number) {
    this.k = new Kernel(device, `grad-sum.add.${length}`, addBody, { output: [length] });
  }
  run(a: DeviceTensor, b: DeviceTensor): Promise<DeviceTensor> {
    return this.k.exec(a, b);
  }
}

export class GradientSum {
  /** Host sums, one pair of buffers a layer of each tower summed into, reused every step. */
  private readonly host = new WeakMap<Tower, Map<string, { dw: Float32Array; db: Float32Array }>>();
  private readonly adds = new Map<number, AddKernel>();

  constructor(private readonly device: Device) {}

  /**
   * For each of `layers`: `into`'s gradient becomes the sum of the `parts`' gradients, added in the
   * parts' order (micro-batch 0 first). `into` may be one of the parts.
   */
  async sum(parts: readonly Tower[], into: Tower, layers: readonly string[]): Promise<void> {
    // a part's backward may have left its first layer's weight gradients for later (and `into`'s, whose own
    // would otherwise be filed over the sum at its update)
    for (const p of new Set([...parts, into])) await p.weightGradients();
    for (const name of layers) {
      const gs = parts.map((p) => {
        const g = p.grads.get(name);
        if (!g) throw new Error(`no gradient for ${name} on a micro-batch's tower: run its backward first`);
        return g;
      });
      const p = into.store.host.get(name);
      if (!p) throw new Error(`no parameters for layer ${name}`);
      into.grads.set(name, gs.length === 1 ? gs[0]! : await this.add(into, name, gs, p.w.length, p.b.length));
    }
  }

  private async add(into: Tower, name: string, gs: readonly Gradients[], wLength: number, bLength: number): Promise<Gradients> {
    if (this.device.resident) return { dw: await this.addOnDevice(gs.map((g) => g.dw), wLength), db: await this.addOnDevice(gs.map((g) => g.db), bLength) };
    let layers = this.host.get(into);
    if (!layers) {
      layers = new Map();
      this.host.set(into, layers);
    }
    let kept = layers.get(name);
    if (!kept) {
      kept = { dw: new Float32Array(wLength), db: new Float32Array(bLength) };
      layers.set(name, kept);
    }
    addOnHost(kept.dw, gs.map((g) => g.dw as Float32Array));
    addOnHost(kept.db, gs.map((g) => g.db as Float32Array));
    return { dw: kept.dw, db: kept.db };
  }

  /** The sum on the GPU, one kernel per part after the first; through the host for a tensor the GPU cannot bind whole. */
  private async addOnDevice(xs: readonly DeviceTensor[], length: number): Promise<DeviceTensor> {
    if (length > this.device.maxKernelFloats) {
      const out = new Float32Array(length);
      addOnHost(out, await Promise.all(xs.map((x) => this.device.toHost(x, length))));
      return this.device.upload(out);
    }
    let k = this.adds.get(length);
    if (!k) {
      k = new AddKernel(this.device, length);
      this.adds.set(length, k);
    }
    let acc = xs[0]!;
    for (let i = 1; i < xs.length; i++) acc = await k.run(acc, xs[i]!);
    return acc;
  }
}

/** out = xs[0] + xs[1] + ..., added in that order. */
export function addOnHost(out: Float32Array, xs: readonly Float32Array[]): void {
  for (const x of xs) if (x.length !== out.length) throw new Error(`gradients of ${x.length} and ${out.length} floats cannot be summed`);
  out.set(xs[0]!);
  for (let k = 1; k < xs.length; k++) {
    const x = xs[k]!;
    for (let i = 0; i < out.length; i++) out[i]! += x[i]!;
  }
}
