/**
 * The runtimes of the layers without parameters (ReLU, LRN, max-pool, dropout), each told by
 * tower/fusion.ts which of its work another layer's kernel already does.
 */
import type { Device, DeviceTensor } from '../device.js';
import type { LayerPlan } from '../model/shapes.js';
import type { TowerIndex } from '../model/spec.js';
import type { LayerFusion } from './fusion.js';
import { Relu } from '../kernels/relu.js';
import { Lrn, type LrnState } from '../kernels/lrn.js';
import { MaxPool, type PoolState } from '../kernels/maxpool.js';
import { Dropout, dropoutMask } from '../kernels/dropout.js';
import { deriveSeed } from '../random.js';
import { microSlice } from './micro-batch.js';

export interface StepContext {
  /** Run seed and step number: dropout masks are derived from them. */
  readonly seed: number;
  readonly step: number;
  readonly train: boolean;
}

/** A layer's runtime: forward keeps what its backward needs. */
export interface LayerRuntime {
  readonly name: string;
  forward(x: DeviceTensor, ctx: StepContext): Promise<DeviceTensor>;
  backward(dy: DeviceTensor): Promise<DeviceTensor | null>;
  /**
   * Layers with parameters: backward with the input gradient first, the layer's weight and bias gradients
   * computed (and filed) when `weights` is called, before the layer's inputs can change (its forward input, its
   * output gradient: no kernel of the tower's layers may run in between; the crossing kernels may).
   */
  backwardInputFirst?(dy: DeviceTensor): Promise<{ dx: DeviceTensor | null; weights: () => Promise<void> }>;
}

/**
 * A Tower that runs part of a training batch (a micro-batch, tower/micro-batch.ts): images `at` ..
 * `at + batch - 1` of a batch of `of` images, `batch` being the Tower's own.
 */
export interface BatchSlice {
  readonly of: number;
  readonly at: number;
}

/**
 * One dropout layer's masks, keyed by (seed, step, layer, tower) as ever: asked for by the fc layer
 * whose GEMM applies the mask and by the dropout layer's backward, drawn once a step. With `slice`
 * (a micro-batch's tower), the whole batch's mask is drawn and this tower's images' columns of it
 * taken ([unit][image]), so that a step cut into micro-batches drops exactly the units it drops whole.
 */
export class DropoutMasks {
  private last: { seed: number; step: number; mask: Float32Array } | null = null;
  constructor(private readonly rate: number, readonly size: number, private readonly layerIndex: number, private readonly tower: TowerIndex, private readonly slice?: BatchSlice & { readonly batch: number }) {}
  /** This step's mask; null when not training (the layer is the identity). */
  of(ctx: StepContext): Float32Array | null {
    if (!ctx.train) return null;
    if (this.last?.seed !== ctx.seed || this.last.step !== ctx.step) {
      const seed = deriveSeed(ctx.seed, ctx.step, this.layerIndex, this.tower);
      const s = this.slice;
      let mask: Float32Array;
      if (!s) mask = dropoutMask(this.size, this.rate, seed);
      else {
        const units = this.size / s.batch;
        mask = microSlice(dropoutMask(units * s.of, this.rate, seed), units, s.of, s.at, s.batch);
      }
      this.last = { seed: ctx.seed, step: ctx.step, mask };
    }
    return this.last.mask;
  }
}

/** ReLU: its forward done by the GEMM before it (reluForwardFused), its backward by the layer after it (reluBackwardFolded), or a kernel each. */
export class ReluRuntime implements LayerRuntime {
  private readonly k: Relu;
  private y: DeviceTensor | null = null;
  constructor(device: Device, readonly name: string, size: number, private readonly fusion: LayerFusion) {
    this.k = new Relu(device, name, size);
  }
  async forward(x: DeviceTensor): Promise<DeviceTensor> {
    this.y = this.fusion.reluForwardFused ? x : await this.k.forward(x);
    return this.y;
  }
  backward(dy: DeviceTensor): Promise<DeviceTensor> {
    return this.fusion.reluBackwardFolded ? Promise.resolve(dy) : this.k.backward(this.y!, dy);
  }
}

export class LrnRuntime implements LayerRuntime {
  private readonly k: Lrn;
  private st: LrnState | null = null;
  constructor(device: Device, readonly name: string, plan: LayerPlan, N: number, fusion: LayerFusion) {
    if (plan.layer.type !== 'lrn') throw new Error('not an lrn layer');
    this.k = new Lrn(device, name, plan.layer, plan.inShape.c, N * plan.inShape.h * plan.inShape.w, fusion.reluBefore);
  }
  async forward(x: DeviceTensor): Promise<DeviceTensor> {
    this.st = await this.k.forward(x);
    return this.st.b;
  }
  backward(dy: DeviceTensor): Promise<DeviceTensor> {
    return this.k.backward(this.st!, dy);
  }
}

export class PoolRuntime implements LayerRuntime {
  private readonly k: MaxPool;
  private st: PoolState | null = null;
  constructor(device: Device, readonly name: string, plan: LayerPlan, N: number, fusion: LayerFusion) {
    if (plan.layer.type !== 'maxpool') throw new Error('not a pool layer');
    this.k = new MaxPool(device, name, plan.inShape.c * N, plan.inShape.h, plan.inShape.w, plan.layer.size, plan.layer.stride, fusion.reluBefore);
  }
  async forward(x: DeviceTensor): Promise<DeviceTensor> {
    const { y, state } = await this.k.forward(x);
    this.st = state;
    return y;
  }
  backward(dy: DeviceTensor): Promise<DeviceTensor> {
    return this.k.backward(this.st!, dy);
  }
}

/** Dropout: its forward done by the fc GEMM two layers back (dropoutForwardFused) or a kernel; the backward one kernel, the ReLU's folded in where it comes first. */
export class DropoutRuntime implements LayerRuntime {
  private readonly k: Dropout;
  private mask: Float32Array | null = null;
  private y: DeviceTensor | null = null;
  private ones: Float32Array | null = null;
  constructor(device: Device, readonly name: string, readonly masks: DropoutMasks, private readonly fusion: LayerFusion) {
    this.k = new Dropout(device, name, masks.size, fusion.reluBefore);
  }
  async forward(x: DeviceTensor, ctx: StepContext): Promise<DeviceTensor> {
    this.mask = this.masks.of(ctx);
    this.y = x;
    if (!this.mask || this.fusion.dropoutForwardFused) return x;
    return this.k.forward(x, this.mask);
  }
  backward(dy: DeviceTensor): Promise<DeviceTensor> {
    if (this.mask) return this.k.backward(this.y!, dy, this.mask);
    // not training: the identity, the folded ReLU's backward aside
    if (!this.fusion.reluBefore) return Promise.resolve(dy);
    this.ones ??= new Float32Array(this.masks.size).fill(1);
    return this.k.backward(this.y!, dy, this.ones);
  }
}
