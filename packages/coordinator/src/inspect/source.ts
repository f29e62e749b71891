/**
 * Where `alexnet inspect` reads a model from: a run directory's latest
 * checkpoint (CheckpointSource: both towers in this process, core's
 * GroupedTrainer, the one-process oracle of the two-worker run) or a running
 * coordinator (LiveSource: its Coordinator service, which asks the workers).
 * Both give the same answers for the same weights (tested).
 */
import fs from 'node:fs';
import { CheckpointError, GroupedTrainer, decodeCheckpoint, getPreset, latestCheckpoint, modelHash, type ModelSpec, type RequestedBackend } from '@alexnet-mp/core';
import { augmentFor, openDataset } from '@alexnet-mp/core/data';
import { DEFAULT_INPUT_MEAN, normaliseImages, type Security } from '@alexnet-mp/worker';
import { checkpointDir, readCheckpointHeader, resumedData, type SavedRun } from '../resume.js';
import { openTrainingData } from '../training-data.js';
import { UserError } from '../cli/errors.js';
import { kernelShape, mapShape } from './layers.js';
import type { ActivationsAt, KernelsAt, LayerKernels, PredictionsAt } from './live.js';
import { InspectClient } from './client.js';

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

/** What the coordinator saved in a checkpoint, with what inspection reads from it. */
interface SavedForInspection extends SavedRun {
  data_name?: string;
  input_mean?: number[] | null;
}

export interface CheckpointSourceOptions {
  /** gpu.js mode for the forward passes (default auto). */
  readonly backend?: RequestedBackend;
  /** The data set for predictions and the input mean (default: the run's, from the checkpoint). */
  readonly data?: string;
  readonly cacheDir?: string;
  readonly info?: (line: string) => void;
}

/** The latest checkpoint of RUN_DIR, both towers in this process. */
export class CheckpointSource implements InspectSource {
  private trainer: GroupedTrainer | null = null;
  private mean: readonly number[] | null = null;

  private constructor(
    readonly spec: ModelSpec,
    readonly file: string,
    readonly step: number,
    readonly seed: number,
    private readonly params: ReturnType<typeof decodeCheckpoint>['params'],
    private readonly saved: SavedForInspection,
    private readonly o: CheckpointSourceOptions,
  ) {}

  get description(): string {
    return `${this.file} (preset ${this.spec.name}, step ${this.step})`;
  }

  /** Reads the latest checkpoint of a run directory (its preset from the checkpoint); a UserError when there is none. */
  static open(runDir: string, o: CheckpointSourceOptions = {}): CheckpointSource {
    if (!fs.existsSync(runDir)) throw new UserError(`--run ${runDir}: no such run directory`);
    const file = latestCheckpoint(checkpointDir(runDir));
    if (!file) throw new UserError(`--run ${runDir}: no checkpoint in ${checkpointDir(runDir)} (runs write them with --run-dir and --checkpoint-every or --epochs)`);
    const preset = readCheckpointHeader(file).preset;
    if (preset === undefined) throw new CheckpointError(`${file} does not say its preset`);
    const spec = getPreset(preset);
    const { params, state } = decodeCheckpoint(spec, fs.readFileSync(file), file);
    return new CheckpointSource(spec, file, state.step, state.seed, params, (state.extra ?? {}) as SavedForInspection, o);
  }

  private resolvedData: string | null = null;

  /** --data, else the run's own (saying so once when it is found where the checkpoint was written, not from here), else synthetic. */
  private get dataName(): string {
    if (this.resolvedData === null) {
      const fromRun = this.o.data === undefined ? resumedData(this.saved) : undefined;
      if (fromRun?.note !== undefined) this.o.info?.(fromRun.note);
      this.resolvedData = this.o.data ?? fromRun?.data ?? 'synthetic';
    }
    return this.resolvedData;
  }

  async kernels(layer: string): Promise<KernelsAt> {
    const shape = kernelShape(this.spec, layer);
    const of = (t: 0 | 1): LayerKernels => {
      const p = this.params[t].get(layer)!;
      return { w: p.w, b: p.b, shape };
    };
    return { step: this.step, towers: [of(0), of(1)] };
  }

  /** Both towers on this process's devices, built on first use. */
  private async model(): Promise<GroupedTrainer> {
    this.trainer ??= await GroupedTrainer.create({ spec: this.spec, backend: this.o.backend ?? 'auto', batch: 1, seed: this.seed, params: this.params, fallback: { onFallback: 'warn' } });
    return this.trainer;
  }

  /**
   * The per-channel mean the workers subtracted in this run: saved in the checkpoint, else (older checkpoints)
   * the data set's training mean, else 128 (synthetic data), exactly as the coordinator sends it at Configure.
   */
  private async inputMean(): Promise<readonly number[]> {
    if (this.mean) return this.mean;
    const saved = this.saved.input_mean;
    if (saved && saved.length > 0) this.mean = saved;
    else if (this.dataName === 'synthetic') this.mean = DEFAULT_INPUT_MEAN.slice(0, this.spec.inputChannels);
    else {
      const d = await openDataset(this.dataName, { size: augmentFor(this.spec.inputSize).storedSize, cacheDir: this.o.cacheDir, log: this.o.info });
      this.mean = d.stats.mean;
    }
    return this.mean;
  }

  /** uint8 images as the workers would feed them to the network (their own function, the run's mean and the preset's scale). */
  private async normalise(images: Uint8Array): Promise<Float32Array> {
    return normaliseImages(images, { mean: await this.inputMean(), scale: this.spec.inputScale });
  }

  async activations(images: Uint8Array, layer: string): Promise<ActivationsAt> {
    mapShape(this.spec, layer);
    const n = imageCount(this.spec, images);
    const m = await this.model();
    return { step: this.step, towers: await m.activations(await this.normalise(images), n, layer) };
  }

  async predictions(count: number): Promise<PredictionsAt> {
    if (!Number.isInteger(count) || count < 1) throw new UserError(`--count must be an integer >= 1, got ${count}`);
    const data = await openTrainingData({ data: this.dataName, spec: this.spec, seed: this.seed, cacheDir: this.o.cacheDir, info: this.o.info });
    try {
      let batch: { images: Uint8Array; labels: Uint32Array } | null = null;
      for await (const b of data.heldOut(count, 1, 'centre').batches()) {
        batch = b;
        break;
      }
      if (!batch || batch.labels.length === 0) throw new UserError(`${this.dataName} has no held-out images`);
      const n = batch.labels.length;
      const m = await this.model();
      const logits = await m.predict(await this.normalise(batch.images), n);
      return { step: this.step, images: batch.images, labels: batch.labels, logits, classNames: data.classes ?? [] };
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
  static async open(address: string, o: { timeoutMs?: number; security?: Security } = {}): Promise<LiveSource> {
    const client = new InspectClient(address, o.security);
    try {
      const run = await client.listWorkers(o.timeoutMs ?? 10_000);
      const spec = getPreset(run.model.preset);
      if (modelHash(spec) !== run.model.model_hash) throw new UserError(`the coordinator at ${address} runs another definition of preset ${spec.name} (model hash ${run.model.model_hash.slice(0, 12)}, this build ${modelHash(spec).slice(0, 12)})`);
      return new LiveSource(spec, `the run ${run.run_id} at ${address} (preset ${spec.name}, ${run.steps_done} steps done)`, client);
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
