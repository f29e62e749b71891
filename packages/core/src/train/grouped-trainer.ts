/**
 * The one-process trainer: both towers in one process, crossing tensors
 * passed as host arrays, or on webgpu (both towers on one GPU) joined and
 * split there by kernels (tower/crossing-device.ts). Seeded and deterministic. It is the oracle for the
 * two-worker run (which must give the same losses and weights) and the
 * fastest way to debug the model.
 */
import { Device, type DeviceTensor, type FallbackPolicy, type RequestedBackend } from '../device.js';
import { describeMode } from '../adapters.js';
import type { ModelSpec, TowerIndex } from '../model/spec.js';
import { initTowerParams, type TowerParams } from '../model/params.js';
import { Tower, type StepContext } from '../tower/tower.js';
import { sumSlices, towerSlice } from '../tower/crossing.js';
import { deviceCrossings } from '../tower/crossing-device.js';
import { forwardBothTowers } from '../tower/forward-both.js';
import { legacyHyper, paperSgd, type SgdHyper } from '../kernels/sgd.js';
import { mean, topKCorrect } from './metrics.js';
import { decodeCheckpoint, encodeCheckpoint } from '../checkpoint/checkpoint.js';

export interface Batch {
  /** Images in layout CNHW: [3][N][H][W], already normalised (mean subtracted). */
  readonly images: Float32Array;
  /** Class indices as floats (kernels read float arrays). */
  readonly labels: Float32Array;
}

export interface StepResult {
  readonly loss: number;
  readonly correct: number;
  readonly batch: number;
}

export interface GroupedTrainerOptions {
  readonly spec: ModelSpec;
  readonly backend: RequestedBackend;
  readonly batch: number;
  readonly seed: number;
  readonly hyper?: SgdHyper;
  readonly fallback?: FallbackPolicy;
  /** Start from these parameters instead of the paper's initialisation. */
  readonly params?: [TowerParams, TowerParams];
}

export class GroupedTrainer {
  step = 0;
  hyper: SgdHyper;
  private evalTowers = new Map<number, [Tower, Tower]>();

  private constructor(readonly devices: [Device, Device], readonly spec: ModelSpec, readonly towers: [Tower, Tower], readonly seed: number, hyper: SgdHyper) {
    // explicit in checkpoints: one saved without decayBiases is read as a run from before the option (legacyHyper)
    this.hyper = { ...hyper, decayBiases: hyper.decayBiases ?? false };
  }

  /** Tower 0's device (both towers' kernels run in the same gpu.js mode). */
  get device(): Device {
    return this.devices[0];
  }

  /**
   * Each tower gets its own device (its own gpu.js instance and worker pool) and the
   * towers run concurrently between crossings, as the two workers do: while one
   * tower is in JavaScript or in a small unthreaded kernel the other's kernels use
   * the cores (measured on 2 cores, cifar batch 64: see the README).
   */
  static async create(o: GroupedTrainerOptions): Promise<GroupedTrainer> {
    const devices: [Device, Device] = [await Device.create(o.backend, o.fallback), await Device.create(o.backend, o.fallback)];
    const params = o.params ?? [initTowerParams(o.spec, 0, o.seed), initTowerParams(o.spec, 1, o.seed)];
    const towers: [Tower, Tower] = [new Tower(devices[0], o.spec, 0, o.batch, params[0]), new Tower(devices[1], o.spec, 1, o.batch, params[1])];
    return new GroupedTrainer(devices, o.spec, towers, o.seed, o.hyper ?? paperSgd);
  }

  /** Which gpu.js modes the kernels of both towers ran in. */
  executedModes(): string[] {
    return [...new Set([...this.devices[0].executed.values(), ...this.devices[1].executed.values()])];
  }

  /** executedModes in words for a user, webgpu with the adapter it ran on ("webgpu on adapter 0 'NVIDIA H200' (...)"). */
  executedOn(): string[] {
    return this.executedModes().map((m) => describeMode(m, this.devices[0].adapter));
  }

  /** Both towers' host parameters: current on webasm and cpu; on webgpu call syncParams() first. */
  get params(): [TowerParams, TowerParams] {
    return [this.towers[0].store.host, this.towers[1].store.host];
  }

  /** Both towers' parameters and momentum as host arrays, read back from the devices where they live there. */
  async syncParams(): Promise<[TowerParams, TowerParams]> {
    return [await this.towers[0].syncParams(), await this.towers[1].syncParams()];
  }

  private async forward(towers: [Tower, Tower], images: Float32Array, ctx: StepContext): Promise<void> {
    await forwardBothTowers(towers, images, ctx);
  }

  /** One training step: forward, loss, backward, update. */
  async trainStep(b: Batch): Promise<StepResult> {
    const ctx: StepContext = { seed: this.seed, step: this.step, train: true };
    const [t0, t1] = this.towers;
    await this.forward(this.towers, b.images, ctx);
    const { losses, logits, dlogits } = await t0.lossAndGradient(b.labels);
    if (this.devices[0].resident) await this.backwardOnDevice(dlogits);
    else await this.backwardOnHost(dlogits);
    // after both backward passes: device 0's release frees the crossing tensors tower 1 read (crossing-device.ts)
    await Promise.all([t0.update(this.hyper), t1.update(this.hyper)]);
    // out of memory, a validation error: the step computed garbage, which gpu.js does not raise (webgpu); the
    // step counts either way (its dropout masks are used), and the trainer's parameters are then spoiled
    try {
      this.devices[0].checkGpuErrors(`step ${this.step}`);
    } finally {
      this.step++;
    }
    return { loss: mean(losses), correct: topKCorrect(logits, b.labels, this.spec.classes, 1), batch: b.labels.length };
  }

  /** The backward pass of both towers, the crossing tensors as host arrays (webasm, cpu). */
  private async backwardOnHost(dlogits: DeviceTensor): Promise<void> {
    const [t0, t1] = this.towers;
    const last = t0.segments.length - 1;
    // the classifier (tower 0) gives the gradient of both towers' fc7
    const dIn = (await t0.backwardSegment(last, dlogits))!;
    let d: [Float32Array, Float32Array] = [towerSlice(dIn, 0), towerSlice(dIn, 1)];
    for (let i = last - 1; i >= 0; i--) {
      const [g0, g1] = await Promise.all([t0.backwardSegment(i, d[0]), t1.backwardSegment(i, d[1])]);
      if (i > 0) d = [sumSlices(towerSlice(g0!, 0), towerSlice(g1!, 0)), sumSlices(towerSlice(g0!, 1), towerSlice(g1!, 1))];
    }
  }

  /** The same with the crossing tensors left on the one GPU both towers share (webgpu): the same values, nothing read back. */
  private async backwardOnDevice(dlogits: DeviceTensor): Promise<void> {
    const [t0, t1] = this.towers;
    const x = deviceCrossings(this.devices[0]);
    const last = t0.segments.length - 1;
    const dIn = (await t0.backwardSegmentOnDevice(last, dlogits))!;
    let half = t0.inFloats(last) / 2;
    let d: [DeviceTensor, DeviceTensor] = [await x.slice(last, dIn, half, 0), await x.slice(last, dIn, half, 1)];
    for (let i = last - 1; i >= 0; i--) {
      const [g0, g1] = await Promise.all([t0.backwardSegmentOnDevice(i, d[0]), t1.backwardSegmentOnDevice(i, d[1])]);
      if (i > 0) {
        half = t0.inFloats(i) / 2;
        d = [await x.sliceSum(i, g0!, g1!, half, 0), await x.sliceSum(i, g0!, g1!, half, 1)];
      }
    }
  }

  /** Logits [class][image] without dropout, for evaluation (any batch size; kernels are made once per size). */
  async predict(images: Float32Array, n: number): Promise<Float32Array> {
    const towers = this.evalTowersFor(n);
    await this.forward(towers, images, { seed: this.seed, step: this.step, train: false });
    const logits = await towers[0].lastLogits();
    this.devices[0].release();
    this.devices[1].release();
    return logits;
  }

  /**
   * Each tower's output of layer `layer` for `n` images (normalised, CNHW) without dropout, as forwardBothTowers
   * gives it (null on a tower that does not compute the layer): feature maps for inspection.
   */
  async activations(images: Float32Array, n: number, layer: string): Promise<[Float32Array | null, Float32Array | null]> {
    try {
      return await forwardBothTowers(this.evalTowersFor(n), images, { seed: this.seed, step: this.step, train: false }, layer);
    } finally {
      this.devices[0].release();
      this.devices[1].release();
    }
  }

  /** Towers for `n` images sharing the training towers' weights (on the same devices), made once per size. */
  private evalTowersFor(n: number): [Tower, Tower] {
    let towers = this.evalTowers.get(n);
    if (!towers) {
      towers = [new Tower(this.devices[0], this.spec, 0, n, this.towers[0].store), new Tower(this.devices[1], this.spec, 1, n, this.towers[1].store)];
      this.evalTowers.set(n, towers);
    }
    return towers;
  }

  /** A checkpoint of this run: both towers' weights and momentum, the step, the seed, the update rule, and `extra` (data order...). */
  async checkpoint(extra: Record<string, unknown> = {}): Promise<Buffer> {
    return encodeCheckpoint(this.spec, await this.syncParams(), { step: this.step, seed: this.seed, preset: this.spec.name, extra: { ...extra, hyper: this.hyper } });
  }

  /** A trainer that continues from a checkpoint: the next step's losses equal those of the run that was not interrupted. */
  static async resume(o: Omit<GroupedTrainerOptions, 'params' | 'seed'>, checkpoint: Buffer, where?: string): Promise<{ trainer: GroupedTrainer; extra: Record<string, unknown> }> {
    const { params, state } = decodeCheckpoint(o.spec, checkpoint, where);
    const extra = state.extra ?? {};
    const saved = extra.hyper as SgdHyper | undefined;
    // a hyper given without the bias rule keeps the checkpoint's (legacy checkpoints: biases decayed)
    const rule = saved ? legacyHyper(saved).decayBiases : undefined;
    const hyper = o.hyper ? { ...o.hyper, decayBiases: o.hyper.decayBiases ?? rule } : saved ? legacyHyper(saved) : undefined;
    const trainer = await GroupedTrainer.create({ ...o, seed: state.seed, params, hyper });
    trainer.step = state.step;
    return { trainer, extra };
  }

  tower(t: TowerIndex): Tower {
    return this.towers[t];
  }

  destroy(): void {
    this.devices[0].destroy();
    this.devices[1].destroy();
  }
}
