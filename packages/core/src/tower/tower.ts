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
import type { Device, DeviceTensor } from '../device.js';
import { ParamStore } from './param-store.js';
import type { ModelSpec, TowerIndex } from '../model/spec.js';
import { shapeSize, type LayerPlan } from '../model/shapes.js';
import { segmentModel, type Segment } from '../model/segments.js';
import type { TowerParams } from '../model/params.js';
import { Conv2dForward, type Conv2dForwardState } from '../kernels/conv2d-forward.js';
import { Conv2dBackward } from '../kernels/conv2d-backward.js';
import { FullyConnected } from '../kernels/fully-connected.js';
import { Flatten } from '../kernels/flatten.js';
import { SoftmaxCrossEntropy } from '../kernels/softmax-xent.js';
import { Sgd, biasHyper, type SgdHyper } from '../kernels/sgd.js';
import { planFusion } from './fusion.js';
import { DropoutMasks, DropoutRuntime, LrnRuntime, PoolRuntime, ReluRuntime, type BatchSlice, type LayerRuntime, type StepContext } from './simple-layers.js';

export type { BatchSlice, StepContext } from './simple-layers.js';

/**
 * Asks forwardSegment for one layer's output as well (inspection): `out` is set to that layer's output on
 * this tower, host floats laid out as the layer's (CNHW, or [unit][image] for fc), a copy of its own. A conv
 * or fc layer followed by ReLU has the ReLU applied already (it is computed in the layer's GEMM), and in
 * training an fc layer followed by ReLU and dropout the dropout's mask too (tower/fusion.ts).
 */
export interface TowerTap {
  readonly layer: string;
  out?: Float32Array;
}

export interface Gradients {
  dw: DeviceTensor;
  db: DeviceTensor;
}

class ConvRuntime implements LayerRuntime {
  private readonly fwd: Conv2dForward;
  private readonly bwd: Conv2dBackward;
  private x: DeviceTensor | null = null;
  private state: Conv2dForwardState | null = null;
  constructor(device: Device, readonly name: string, plan: LayerPlan, N: number, private readonly params: ParamStore, private readonly grads: Map<string, Gradients>, first: boolean, relu: boolean) {
    const l = plan.layer;
    if (l.type !== 'conv') throw new Error('not a conv layer');
    const shape = { C: plan.inShape.c, N, H: plan.inShape.h, W: plan.inShape.w, O: l.filtersPerTower, R: l.size, stride: l.stride, pad: l.pad };
    this.fwd = new Conv2dForward(device, name, shape, undefined, relu);
    this.bwd = new Conv2dBackward(device, name, this.fwd, !first);
  }
  async forward(x: DeviceTensor): Promise<DeviceTensor> {
    const p = this.params.get(this.name);
    const { y, state } = await this.fwd.run(x, p.w, p.b);
    this.x = x;
    this.state = state;
    return y;
  }
  async backward(dy: DeviceTensor): Promise<DeviceTensor | null> {
    const p = this.params.get(this.name);
    const g = await this.bwd.run(this.x!, p.w, dy, this.state!);
    this.grads.set(this.name, { dw: g.dw, db: g.db });
    this.state = null;
    return g.dx;
  }
  async backwardInputFirst(dy: DeviceTensor): Promise<{ dx: DeviceTensor | null; weights: () => Promise<void> }> {
    const p = this.params.get(this.name);
    const g = await this.bwd.runInputFirst(this.x!, p.w, dy, this.state!);
    this.state = null;
    return {
      dx: g.dx,
      weights: async () => void this.grads.set(this.name, await g.weights()),
    };
  }
}

class FcRuntime implements LayerRuntime {
  private readonly fc: FullyConnected;
  private readonly flatten: Flatten | null;
  private x: DeviceTensor | null = null;
  /** With `masks`, when not training: the mask of a step without dropout. */
  private ones: Float32Array | null = null;
  /** `masks`: the dropout after the ReLU is applied in the forward GEMM (tower/fusion.ts). */
  constructor(device: Device, readonly name: string, plan: LayerPlan, N: number, private readonly params: ParamStore, private readonly grads: Map<string, Gradients>, relu: boolean, private readonly masks: DropoutMasks | null) {
    const l = plan.layer;
    if (l.type !== 'fc') throw new Error('not an fc layer');
    const hw = plan.inShape.h * plan.inShape.w;
    this.flatten = hw > 1 ? new Flatten(device, `${name}.flatten`, plan.inShape.c, N, hw) : null;
    this.fc = new FullyConnected(device, name, l.unitsPerTower, plan.inShape.c * hw, N, undefined, relu, masks !== null);
  }
  async forward(x: DeviceTensor, ctx: StepContext): Promise<DeviceTensor> {
    const p = this.params.get(this.name);
    this.x = this.flatten ? await this.flatten.forward(x) : x;
    if (!this.masks) return this.fc.forward(this.x, p.w, p.b);
    const mask = this.masks.of(ctx) ?? (this.ones ??= new Float32Array(this.masks.size).fill(1));
    return this.fc.forward(this.x, p.w, p.b, mask);
  }
  async backward(dy: DeviceTensor): Promise<DeviceTensor> {
    const p = this.params.get(this.name);
    const g = await this.fc.backward(this.x!, p.w, dy);
    this.grads.set(this.name, { dw: g.dw, db: g.db });
    return this.flatten ? this.flatten.backward(g.dx) : g.dx;
  }
  async backwardInputFirst(dy: DeviceTensor): Promise<{ dx: DeviceTensor; weights: () => Promise<void> }> {
    const p = this.params.get(this.name);
    const g = await this.fc.backwardInputFirst(this.x!, p.w, dy);
    return {
      dx: this.flatten ? await this.flatten.backward(g.dx) : g.dx,
      weights: async () => void this.grads.set(this.name, await g.weights()),
    };
  }
}

export class Tower {
  readonly segments: Segment[];
  private readonly runtimes: LayerRuntime[][];
  readonly grads = new Map<string, Gradients>();
  /** Layers updated this step by update(h, layers) (the closing update(h) skips them). */
  private readonly updated = new Set<string>();
  private readonly loss: SoftmaxCrossEntropy | null;
  private readonly sgd = new Map<string, { w: Sgd; b: Sgd }>();
  private logits: DeviceTensor | null = null;
  /** The weight and bias gradients of a segment's first layer still to compute (backwardSegmentOnDevice's `weightsLater`). */
  private pendingWeights: (() => Promise<void>) | null = null;
  /** The parameters as the kernels see them (on webgpu, resident between steps). */
  readonly store: ParamStore;

  /**
   * `params` are this tower's host arrays, or the ParamStore of another Tower of
   * the same tower index (an evaluation batch size sharing the training weights). With `slice`, the
   * tower runs one micro-batch of a larger training batch (tower/micro-batch.ts): its dropout masks are
   * that micro-batch's columns of the whole batch's.
   */
  constructor(readonly device: Device, readonly spec: ModelSpec, readonly tower: TowerIndex, readonly batch: number, params: TowerParams | ParamStore, slice?: BatchSlice) {
    if (slice && !(Number.isInteger(slice.at) && slice.at >= 0 && slice.at + batch <= slice.of)) throw new Error(`images ${slice.at}..${slice.at + batch - 1} are not in a batch of ${slice.of}`);
    this.store = params instanceof ParamStore ? params : new ParamStore(device, params);
    if (this.store.device !== device) throw new Error('a ParamStore is shared only between towers on the same device');
    const store = this.store;
    this.segments = segmentModel(spec);
    let layerIndex = 0;
    this.runtimes = this.segments.map((seg): LayerRuntime[] => {
      const fusion = planFusion(seg.plans.map((p) => p.layer));
      const first = layerIndex;
      layerIndex += seg.plans.length;
      if (seg.tower0Only && tower !== 0) return [];
      const masks = seg.plans.map((plan, pos) => (plan.layer.type === 'dropout' ? new DropoutMasks(plan.layer.rate, shapeSize(plan.outShape) * batch, first + pos, tower, slice && { ...slice, batch }) : null));
      return seg.plans.map((plan, pos): LayerRuntime => {
        const l = plan.layer;
        const f = fusion[pos]!;
        const name = l.name;
        switch (l.type) {
          case 'conv':
            return new ConvRuntime(device, name, plan, batch, store, this.grads, l.input === 'image', f.reluOut);
          case 'fc':
            return new FcRuntime(device, name, plan, batch, store, this.grads, f.reluOut, f.dropoutOut ? masks[pos + 2]! : null);
          case 'relu':
            return new ReluRuntime(device, name, shapeSize(plan.outShape) * batch, f);
          case 'lrn':
            return new LrnRuntime(device, name, plan, batch, f);
          case 'maxpool':
            return new PoolRuntime(device, name, plan, batch, f);
          case 'dropout':
            return new DropoutRuntime(device, name, masks[pos]!, f);
        }
      });
    });
    this.loss = tower === 0 ? new SoftmaxCrossEntropy(device, 'loss', spec.classes, batch) : null;
    for (const [name, p] of store.host) {
      this.sgd.set(name, { w: new Sgd(device, `${name}.sgd.w`, p.w.length), b: new Sgd(device, `${name}.sgd.b`, p.b.length) });
    }
  }

  /** This tower's parameters and momentum as host arrays (read back from the device on webgpu). */
  syncParams(): Promise<TowerParams> {
    return this.store.sync();
  }

  /** Whether this tower runs segment i (tower 1 skips the classifier). */
  runs(i: number): boolean {
    return !this.segments[i]!.tower0Only || this.tower === 0;
  }

  /** Floats in segment i's (concatenated, after a crossing) input for the whole batch: its input gradient's. */
  inFloats(i: number): number {
    return shapeSize(this.segments[i]!.plans[0]!.inShape) * this.batch;
  }

  /** Floats in one tower's output of segment i for the whole batch. */
  outFloats(i: number): number {
    return shapeSize(this.segments[i]!.outShape) * this.batch;
  }

  /**
   * Forward through segment i. Input: the image batch (segment 0) or both towers'
   * previous outputs concatenated. Inside the segment every intermediate stays on
   * the device; the output comes back to the host because it crosses to the other tower.
   * With `tap`, one layer of the segment also reads its output back (see TowerTap).
   */
  async forwardSegment(i: number, x: DeviceTensor, ctx: StepContext, tap?: TowerTap): Promise<Float32Array> {
    return this.device.toHost(await this.forwardSegmentOnDevice(i, x, ctx, tap), this.outFloats(i));
  }

  /** forwardSegment with the output left on the device (the one-process trainer's crossings on webgpu: crossing-device.ts). */
  async forwardSegmentOnDevice(i: number, x: DeviceTensor, ctx: StepContext, tap?: TowerTap): Promise<DeviceTensor> {
    await this.weightGradients();
    await this.store.ready();
    let cur = await this.device.upload(x);
    const tapPlan = tap ? this.segments[i]!.plans.find((p) => p.layer.name === tap.layer) : undefined;
    if (tap && !tapPlan) throw new Error(`layer ${tap.layer} is not in segment ${i}`);
    for (const r of this.runtimes[i]!) {
      cur = await r.forward(cur, ctx);
      if (tap && r.name === tap.layer) tap.out = (await this.device.toHost(cur, shapeSize(tapPlan!.outShape) * this.batch)).slice(); // the kernel's buffer is reused next call
    }
    if (this.segments[i]!.tower0Only) this.logits = cur;
    return cur;
  }

  /**
   * Backward through segment i: from the gradient of its output to the gradient
   * of its (concatenated) input, on the host because it crosses; null for segment 0.
   */
  async backwardSegment(i: number, dy: DeviceTensor): Promise<Float32Array | null> {
    const g = await this.backwardSegmentOnDevice(i, dy);
    return g === null ? null : this.device.toHost(g, this.inFloats(i));
  }

  /**
   * backwardSegment with the input gradient left on the device. `weightsLater`: the segment's first layer
   * computes its input gradient first and its weight and bias gradients only at `weightGradients()` (or the
   * next call on this tower that needs them or could overwrite their inputs), so that the input gradient
   * crosses to the other tower while they are computed: the same kernels on the same inputs, the same floats.
   */
  async backwardSegmentOnDevice(i: number, dy: DeviceTensor, o: { weightsLater?: boolean } = {}): Promise<DeviceTensor | null> {
    await this.weightGradients();
    let cur: DeviceTensor | null = await this.device.upload(dy);
    const rs = this.runtimes[i]!;
    for (let j = rs.length - 1; j >= 0; j--) {
      const r = rs[j]!;
      if (j === 0 && o.weightsLater && r.backwardInputFirst) {
        const g = await r.backwardInputFirst(cur!);
        this.pendingWeights = g.weights;
        return g.dx;
      }
      cur = await r.backward(cur!);
      if (cur === null) return null;
    }
    return cur;
  }

  /** Computes the weight and bias gradients a backward left for later (backwardSegmentOnDevice's `weightsLater`); nothing if none. */
  async weightGradients(): Promise<void> {
    const pending = this.pendingWeights;
    if (!pending) return;
    this.pendingWeights = null;
    await pending();
  }

  /** Tower 0 only: loss of the logits from the last forward; per-image losses and logits (host) and the logits' gradient (device). */
  async lossAndGradient(labels: Float32Array): Promise<{ losses: Float32Array; logits: Float32Array; dlogits: DeviceTensor }> {
    if (!this.loss || !this.logits) throw new Error('loss is computed on tower 0 after a forward pass');
    const losses = await this.loss.forward(this.logits, labels);
    const dlogits = await this.loss.backward(this.logits, labels);
    return { losses, logits: await this.lastLogits(), dlogits };
  }

  /** Logits of the last forward pass (tower 0), [class][image]. */
  lastLogits(): Promise<Float32Array> {
    if (!this.logits) throw new Error('no forward pass yet');
    return this.device.toHost(this.logits, this.spec.classes * this.batch);
  }

  /** The layers with parameters of segment i on this tower (none for tower 1's classifier segment): what update(h, layers) takes. */
  paramLayers(i: number): string[] {
    if (!this.runs(i)) return [];
    return this.segments[i]!.plans.map((p) => p.layer.name).filter((n) => this.store.host.has(n));
  }

  /**
   * Forgets the step's gradients and forward state without updating (a micro-batch's tower, whose
   * gradients were summed into the tower that updates: the worker's pipeline.ts).
   */
  discardStep(): void {
    this.pendingWeights = null;
    this.updated.clear();
    this.grads.clear();
    this.logits = null;
  }

  /**
   * The paper's SGD update, from the gradients of the last backward (biases without weight decay unless
   * h.decayBiases). Without `layers`: every parameter not yet updated this step, then the step's intermediates
   * are freed on the device. With `layers`: only those (their gradients are final once their segment's
   * backward ran; a layer's update reads only its own gradient, so updating a segment early, while the
   * next crossing travels, gives the same bits), nothing freed yet.
   */
  async update(h: SgdHyper, layers?: readonly string[]): Promise<void> {
    await this.weightGradients();
    for (const name of layers ?? this.store.names()) {
      if (this.updated.has(name)) {
        if (layers !== undefined) throw new Error(`${name} was updated already this step`);
        continue;
      }
      const g = this.grads.get(name);
      if (!g) throw new Error(`no gradient for ${name}: run backward before update`);
      const p = this.store.get(name);
      const k = this.sgd.get(name)!;
      const w = await k.w.step(p.w, p.vw, g.dw, h);
      const b = await k.b.step(p.b, p.vb, g.db, biasHyper(h));
      this.store.set(name, { w: w.w, vw: w.v, b: b.w, vb: b.v });
      this.updated.add(name);
    }
    if (layers !== undefined) return;
    this.updated.clear();
    this.grads.clear();
    this.logits = null;
    this.device.release();
  }
}
