/**
 * One tower of AlexNet on one device: its half of every layer, its parameters
 * and momentum, and the kernels for one batch size. It runs segment by
 * segment (see model/segments.ts); whoever drives it (the one-process grouped
 * trainer, or a worker process) passes the crossing tensors between towers.
 *
 * Layouts: conv activations CNHW [channel][image][y][x]; fc activations
 * [unit][image]. A 'both' input is the concatenation [tower 0's; tower 1's]
 * along the channel axis, which in CNHW is plain array concatenation.
 */
import type { Device } from '../device.js';
import type { ModelSpec, TowerIndex } from '../model/spec.js';
import type { LayerPlan } from '../model/shapes.js';
import { segmentModel, type Segment } from '../model/segments.js';
import type { TowerParams } from '../model/params.js';
import { Conv2dForward, type Conv2dForwardState } from '../kernels/conv2d-forward.js';
import { Conv2dBackward } from '../kernels/conv2d-backward.js';
import { FullyConnected } from '../kernels/fully-connected.js';
import { Flatten } from '../kernels/flatten.js';
import { Relu } from '../kernels/relu.js';
import { Lrn, type LrnState } from '../kernels/lrn.js';
import { MaxPool, type PoolState } from '../kernels/maxpool.js';
import { Dropout, dropoutMask } from '../kernels/dropout.js';
import { SoftmaxCrossEntropy } from '../kernels/softmax-xent.js';
import { Sgd, type SgdHyper } from '../kernels/sgd.js';
import { deriveSeed } from '../random.js';

export interface StepContext {
  /** Run seed and step number: dropout masks are derived from them. */
  readonly seed: number;
  readonly step: number;
  readonly train: boolean;
}

/** A layer's runtime: forward keeps what its backward needs. */
interface LayerRuntime {
  readonly name: string;
  forward(x: Float32Array, ctx: StepContext): Promise<Float32Array>;
  backward(dy: Float32Array): Promise<Float32Array | null>;
}

export interface Gradients {
  dw: Float32Array;
  db: Float32Array;
}

class ConvRuntime implements LayerRuntime {
  private readonly fwd: Conv2dForward;
  private readonly bwd: Conv2dBackward;
  private x: Float32Array | null = null;
  private state: Conv2dForwardState | null = null;
  constructor(device: Device, readonly name: string, plan: LayerPlan, N: number, private readonly params: TowerParams, private readonly grads: Map<string, Gradients>, first: boolean) {
    const l = plan.layer;
    if (l.type !== 'conv') throw new Error('not a conv layer');
    const shape = { C: plan.inShape.c, N, H: plan.inShape.h, W: plan.inShape.w, O: l.filtersPerTower, R: l.size, stride: l.stride, pad: l.pad };
    this.fwd = new Conv2dForward(device, name, shape);
    this.bwd = new Conv2dBackward(device, name, this.fwd, !first);
  }
  async forward(x: Float32Array): Promise<Float32Array> {
    const p = this.params.get(this.name)!;
    const { y, state } = await this.fwd.run(x, p.w, p.b);
    this.x = x;
    this.state = state;
    return y;
  }
  async backward(dy: Float32Array): Promise<Float32Array | null> {
    const p = this.params.get(this.name)!;
    const g = await this.bwd.run(this.x!, p.w, dy, this.state!);
    this.grads.set(this.name, { dw: g.dw, db: g.db });
    this.state = null;
    return g.dx;
  }
}

class FcRuntime implements LayerRuntime {
  private readonly fc: FullyConnected;
  private readonly flatten: Flatten | null;
  private x: Float32Array | null = null;
  constructor(device: Device, readonly name: string, plan: LayerPlan, N: number, private readonly params: TowerParams, private readonly grads: Map<string, Gradients>) {
    const l = plan.layer;
    if (l.type !== 'fc') throw new Error('not an fc layer');
    const hw = plan.inShape.h * plan.inShape.w;
    this.flatten = hw > 1 ? new Flatten(device, `${name}.flatten`, plan.inShape.c, N, hw) : null;
    this.fc = new FullyConnected(device, name, l.unitsPerTower, plan.inShape.c * hw, N);
  }
  async forward(x: Float32Array): Promise<Float32Array> {
    const p = this.params.get(this.name)!;
    this.x = this.flatten ? await this.flatten.forward(x) : x;
    return this.fc.forward(this.x, p.w, p.b);
  }
  async backward(dy: Float32Array): Promise<Float32Array> {
    const p = this.params.get(this.name)!;
    const g = await this.fc.backward(this.x!, p.w, dy);
    this.grads.set(this.name, { dw: g.dw, db: g.db });
    return this.flatten ? this.flatten.backward(g.dx) : g.dx;
  }
}

class ReluRuntime implements LayerRuntime {
  private readonly k: Relu;
  private y: Float32Array | null = null;
  constructor(device: Device, readonly name: string, size: number) {
    this.k = new Relu(device, name, size);
  }
  async forward(x: Float32Array): Promise<Float32Array> {
    this.y = await this.k.forward(x);
    return this.y;
  }
  backward(dy: Float32Array): Promise<Float32Array> {
    return this.k.backward(this.y!, dy);
  }
}

class LrnRuntime implements LayerRuntime {
  private readonly k: Lrn;
  private st: LrnState | null = null;
  constructor(device: Device, readonly name: string, plan: LayerPlan, N: number) {
    if (plan.layer.type !== 'lrn') throw new Error('not an lrn layer');
    this.k = new Lrn(device, name, plan.layer, plan.inShape.c, N * plan.inShape.h * plan.inShape.w);
  }
  async forward(x: Float32Array): Promise<Float32Array> {
    this.st = await this.k.forward(x);
    return this.st.b;
  }
  backward(dy: Float32Array): Promise<Float32Array> {
    return this.k.backward(this.st!, dy);
  }
}

class PoolRuntime implements LayerRuntime {
  private readonly k: MaxPool;
  private st: PoolState | null = null;
  constructor(device: Device, readonly name: string, plan: LayerPlan, N: number) {
    if (plan.layer.type !== 'maxpool') throw new Error('not a pool layer');
    this.k = new MaxPool(device, name, plan.inShape.c * N, plan.inShape.h, plan.inShape.w, plan.layer.size, plan.layer.stride);
  }
  async forward(x: Float32Array): Promise<Float32Array> {
    const { y, state } = await this.k.forward(x);
    this.st = state;
    return y;
  }
  backward(dy: Float32Array): Promise<Float32Array> {
    return this.k.backward(this.st!, dy);
  }
}

class DropoutRuntime implements LayerRuntime {
  private readonly k: Dropout;
  private mask: Float32Array | null = null;
  constructor(device: Device, readonly name: string, private readonly rate: number, private readonly size: number, private readonly layerIndex: number, private readonly tower: TowerIndex) {
    this.k = new Dropout(device, name, size);
  }
  async forward(x: Float32Array, ctx: StepContext): Promise<Float32Array> {
    if (!ctx.train) {
      this.mask = null;
      return x;
    }
    this.mask = dropoutMask(this.size, this.rate, deriveSeed(ctx.seed, ctx.step, this.layerIndex, this.tower));
    return this.k.apply(x, this.mask);
  }
  backward(dy: Float32Array): Promise<Float32Array> {
    return this.mask ? this.k.apply(dy, this.mask) : Promise.resolve(dy);
  }
}

export class Tower {
  readonly segments: Segment[];
  private readonly runtimes: LayerRuntime[][];
  readonly grads = new Map<string, Gradients>();
  private readonly loss: SoftmaxCrossEntropy | null;
  private readonly sgd = new Map<string, { w: Sgd; b: Sgd }>();
  private logits: Float32Array | null = null;

  constructor(readonly device: Device, readonly spec: ModelSpec, readonly tower: TowerIndex, readonly batch: number, readonly params: TowerParams) {
    this.segments = segmentModel(spec);
    let layerIndex = 0;
    this.runtimes = this.segments.map((seg): LayerRuntime[] =>
      seg.plans.map((plan): LayerRuntime | null => {
        const idx = layerIndex++;
        if (seg.tower0Only && tower !== 0) return null;
        const l = plan.layer;
        const size = plan.outShape.c * plan.outShape.h * plan.outShape.w * batch;
        const name = l.name;
        switch (l.type) {
          case 'conv':
            return new ConvRuntime(device, name, plan, batch, params, this.grads, l.input === 'image');
          case 'fc':
            return new FcRuntime(device, name, plan, batch, params, this.grads);
          case 'relu':
            return new ReluRuntime(device, name, size);
          case 'lrn':
            return new LrnRuntime(device, name, plan, batch);
          case 'maxpool':
            return new PoolRuntime(device, name, plan, batch);
          case 'dropout':
            return new DropoutRuntime(device, name, l.rate, size, idx, tower);
        }
      }).filter((r): r is LayerRuntime => r !== null),
    );
    this.loss = tower === 0 ? new SoftmaxCrossEntropy(device, 'loss', spec.classes, batch) : null;
    for (const [name, p] of params) {
      this.sgd.set(name, { w: new Sgd(device, `${name}.sgd.w`, p.w.length), b: new Sgd(device, `${name}.sgd.b`, p.b.length) });
    }
  }

  /** Whether this tower runs segment i (tower 1 skips the classifier). */
  runs(i: number): boolean {
    return !this.segments[i]!.tower0Only || this.tower === 0;
  }

  /** Forward through segment i. Input: the image batch (segment 0) or both towers' previous outputs concatenated. */
  async forwardSegment(i: number, x: Float32Array, ctx: StepContext): Promise<Float32Array> {
    let cur = x;
    for (const r of this.runtimes[i]!) cur = await r.forward(cur, ctx);
    if (this.segments[i]!.tower0Only) this.logits = cur;
    return cur;
  }

  /** Backward through segment i: from the gradient of its output to the gradient of its (concatenated) input; null for segment 0. */
  async backwardSegment(i: number, dy: Float32Array): Promise<Float32Array | null> {
    let cur: Float32Array | null = dy;
    const rs = this.runtimes[i]!;
    for (let j = rs.length - 1; j >= 0; j--) {
      cur = await rs[j]!.backward(cur!);
      if (cur === null) break;
    }
    return cur;
  }

  /** Tower 0 only: loss of the logits from the last forward; returns per-image losses, the logits and their gradient. */
  async lossAndGradient(labels: Float32Array): Promise<{ losses: Float32Array; logits: Float32Array; dlogits: Float32Array }> {
    if (!this.loss || !this.logits) throw new Error('loss is computed on tower 0 after a forward pass');
    const losses = await this.loss.forward(this.logits, labels);
    const dlogits = await this.loss.backward(this.logits, labels);
    return { losses, logits: this.logits, dlogits };
  }

  /** Logits of the last forward pass (tower 0). */
  lastLogits(): Float32Array {
    if (!this.logits) throw new Error('no forward pass yet');
    return this.logits;
  }

  /** The paper's SGD update of every parameter of this tower, from the gradients of the last backward. */
  async update(h: SgdHyper): Promise<void> {
    for (const [name, p] of this.params) {
      const g = this.grads.get(name);
      if (!g) throw new Error(`no gradient for ${name}: run backward before update`);
      const k = this.sgd.get(name)!;
      const w = await k.w.step(p.w, p.vw, g.dw, h);
      const b = await k.b.step(p.b, p.vb, g.db, h);
      p.w = w.w;
      p.vw = w.v;
      p.b = b.w;
      p.vb = b.v;
    }
    this.grads.clear();
  }
}
