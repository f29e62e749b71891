/**
 * Where `alexnet inspect` reads a model from: a run directory's latest
 * checkpoint or a model file (CheckpointSource: both towers in this process, core's
 * GroupedTrainer, the one-process oracle of the two-worker run) or a running
 * coordinator (LiveSource: its Coordinator service, which asks the workers).
 * Both give the same answers for the same weights (tested).
 */
import { GroupedTrainer, getPreset, modelHash, type ModelSpec, type RequestedBackend } from '@alexnet-mp/core';
import { normaliseImages, type Security } from '@alexnet-mp/worker';
import { TrainedModel } from '../trained-model.js';
import { openHeldOutFor } from '../training-data.js';
import { UserError } from '../cli/errors.js';
import { needsDataError } from '../cli/model-options.js';
import { kernelShape, mapShape } from './layers.js';
import type { ActivationsAt, KernelsAt, LayerKernels, PredictionsAt } from './live.js';
import { InspectClient } from './client.js';
import { saidIfSlow } from '../said-if-slow.js';

export interface InspectSource {
  readonly spec: ModelSpec;
  /** One line: what is inspected ("runs/c1/checkpoints/step-000000040.safetensors", "the run 2026... at 127.0.0.1:5000"). */
  readonly description: string;
  /** Both towers' kernels of a conv layer. */
  kernels(layer: string): Promise<KernelsAt>;
  /** Each tower's output of `layer` for uint8 images [3][N][S][S] (the network's view, e.g. a centre crop). */
  activations(images: Uint8Array, layer: string): Promise<ActivationsAt>;
  /** The first `count` held-out images (evenly spaced over the split, centre views) with the logits. */
  predictions(count: number): Promise<PredictionsAt>;
  close(): Promise<void>;
}

export interface CheckpointSourceOptions {
  /** gpu.js mode for the forward passes (default auto). */
  readonly backend?: RequestedBackend;
  /** With a run directory: the checkpoint of this step (default the latest). */
  readonly step?: number;
  /** The data set for predictions and the input mean (default: the run's, from the checkpoint). */
  readonly data?: string;
  /** Whether --model (or --run) was given: false for the shipped model taken by default, as messages say. */
  readonly modelGiven?: boolean;
  readonly cacheDir?: string;
  readonly info?: (line: string) => void;
}

/** A run's latest checkpoint (--run) or a model file (--model), both towers in this process. */
export class CheckpointSource implements InspectSource {
  private trainer: GroupedTrainer | null = null;

  private constructor(
    readonly model: TrainedModel,
    private readonly o: CheckpointSourceOptions,
  ) {}

  get spec(): ModelSpec {
    return this.model.spec;
  }

  /** Whether the model was named (--model, --run), not the shipped one taken by default. */
  get modelGiven(): boolean {
    return this.o.modelGiven !== false;
  }

  get file(): string {
    return this.model.file;
  }

  get step(): number {
    return this.model.step ?? 0;
  }

  get seed(): number {
    return this.model.seed;
  }

  get description(): string {
    return this.model.description;
  }

  /** Reads the latest checkpoint of a run directory (its preset from the checkpoint); a UserError when there is none. */
  static open(runDir: string, o: CheckpointSourceOptions = {}): CheckpointSource {
    return new CheckpointSource(TrainedModel.openRun(runDir, { step: o.step, data: o.data, cacheDir: o.cacheDir, info: o.info }), o);
  }

  /** Reads a model file (alexnet export); a one-line error when it is missing or not one. */
  static openModel(file: string, o: CheckpointSourceOptions = {}): CheckpointSource {
    return new CheckpointSource(TrainedModel.openFile(file, { data: o.data, cacheDir: o.cacheDir, info: o.info }), o);
  }

  async kernels(layer: string): Promise<KernelsAt> {
    const shape = kernelShape(this.spec, layer);
    const of = (t: 0 | 1): LayerKernels => {
      const p = this.model.params[t].get(layer)!;
      return { w: p.w, b: p.b, shape };
    };
    return { step: this.step, towers: [of(0), of(1)] };
  }

  /** Both towers on this process's devices, built on first use. */
  private async trainerOf(): Promise<GroupedTrainer> {
    this.trainer ??= await GroupedTrainer.create({ spec: this.spec, backend: this.o.backend ?? 'auto', batch: 1, seed: this.seed, params: this.model.params, fallback: { onFallback: 'warn' } });
    return this.trainer;
  }

  /** uint8 images as the workers would feed them to the network (their own function, the run's mean and the preset's scale). */
  private async normalise(images: Uint8Array): Promise<Float32Array> {
    return normaliseImages(images, { mean: await this.model.inputMean(), scale: this.spec.inputScale });
  }

  async activations(images: Uint8Array, layer: string): Promise<ActivationsAt> {
    mapShape(this.spec, layer);
    const n = imageCount(this.spec, images);
    const m = await this.trainerOf();
    return { step: this.step, towers: await m.activations(await this.normalise(images), n, layer) };
  }

  async predictions(count: number): Promise<PredictionsAt> {
    if (!Number.isInteger(count) || count < 1) throw new UserError(`--count must be an integer >= 1, got ${count}`);
    const dataName = this.model.dataName();
    if (dataName === null) throw needsDataError('inspect predictions', 'the held-out images to show', this.modelGiven ? this.model.file : undefined);
    const data = await openHeldOutFor(this.model, dataName, this.o.cacheDir, this.o.info);
    try {
      let batch: { images: Uint8Array; labels: Uint32Array } | null = null;
      for await (const b of data.heldOut(count, 1, 'centre').batches()) {
        batch = b;
        break;
      }
      if (!batch || batch.labels.length === 0) throw new UserError(`${dataName} has no held-out images`);
      const n = batch.labels.length;
      const m = await this.trainerOf();
      const logits = await m.predict(await this.normalise(batch.images), n);
      const classNames = this.model.kind === 'model' ? await this.model.classNames() : (data.classes ?? []);
      return { step: this.step, images: batch.images, labels: batch.labels, logits, classNames };
    } finally {
      await data.close();
    }
  }

  async close(): Promise<void> {
    this.trainer?.destroy();
    this.trainer = null;
  }
}

/** Images in a uint8 batch [C][N][S][S] of this preset; a UserError when the size is wrong. */
export function imageCount(spec: ModelSpec, images: Uint8Array): number {
  const { inputChannels: C, inputSize: S } = spec;
  const n = images.length / (C * S * S);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`${images.length} image bytes are not uint8 [${C}][N][${S}][${S}]`);
  return n;
}

/** A running coordinator's inspection service (`alexnet coordinator --inspect-port`). */
export class LiveSource implements InspectSource {
  private constructor(readonly spec: ModelSpec, readonly description: string, private readonly client: InspectClient) {}

  /** Connects and asks for the run (ListWorkers); a UserError when nothing answers or the preset differs from this build's. */
  static async open(address: string, o: { timeoutMs?: number; security?: Security; info?: (line: string) => void } = {}): Promise<LiveSource> {
    const client = new InspectClient(address, o.security);
    const timeoutMs = o.timeoutMs ?? 10_000;
    try {
      // a coordinator not (yet) there
      const run = await saidIfSlow(client.listWorkers(timeoutMs), () => o.info?.(`waiting for the coordinator at ${address} to answer (up to ${(timeoutMs / 1000).toFixed(0)} s)`));
      const spec = getPreset(run.model.preset);
      if (modelHash(spec) !== run.model.model_hash) throw new UserError(`the coordinator at ${address} runs another definition of preset ${spec.name} (model hash ${run.model.model_hash.slice(0, 12)}, this build ${modelHash(spec).slice(0, 12)})`);
      // the step the pictures come from is said with them (the run goes on meanwhile: a count of steps here would be older)
      return new LiveSource(spec, `the run ${run.run_id} at ${address} (preset ${spec.name}, training)`, client);
    } catch (e) {
      client.close();
      throw e;
    }
  }

  kernels(layer: string): Promise<KernelsAt> {
    return this.client.kernels(layer, kernelShape(this.spec, layer));
  }

  activations(images: Uint8Array, layer: string): Promise<ActivationsAt> {
    mapShape(this.spec, layer);
    imageCount(this.spec, images);
    return this.client.activations(images, layer);
  }

  predictions(count: number): Promise<PredictionsAt> {
    return this.client.predictions(count);
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
