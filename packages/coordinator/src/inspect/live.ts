/**
 * Inspection of a running two-worker run, on the coordinator's side: a
 * layer's kernels (Worker.GetParameters of that layer) and each tower's
 * feature maps for some images (Worker.GetActivations on both workers at
 * once: the forward pass of an evaluation, stopped at the layer, with the
 * crossing exchanges up to it).
 *
 * When: workers answer these only between steps, so every call goes through
 * Coordinator.betweenSteps: a call made during a step waits for that step
 * (and its evaluation or checkpoint) to end, runs, and only then does the
 * next step start. Training waits once for the inspection itself (a
 * GetParameters of one layer, or one forward pass of a few images), never
 * for more than one step. The alternative, a second copy of each tower
 * answering concurrently, would need the parameters copied after every
 * step (the same transfer) and a second exchange channel; it was not worth it.
 * LiveInspector runs its calls one at a time (their evaluation numbers must
 * follow each other on both workers).
 */
import type { ModelSpec } from '@alexnet-mp/core';
import { assembleParameters, collectStream, decodeTensor, unary, type GetActivationsReply, type GetActivationsRequest, type GetParametersRequest, type ParameterTensor, type WorkerClient } from '@alexnet-mp/worker';
import type { Coordinator } from '../coordinator.js';
import type { U8Batch } from '../batch-source.js';
import { kernelShape, mapShape } from './layers.js';
import { UserError } from '../cli/errors.js';

/** One tower's kernels of a conv layer. */
export interface LayerKernels {
  /** [out][in][kh][kw] */
  readonly w: Float32Array;
  readonly b: Float32Array;
  readonly shape: [number, number, number, number];
}

/** Both towers' kernels of a layer after `step` steps. */
export interface KernelsAt {
  readonly step: number;
  readonly towers: [LayerKernels, LayerKernels];
}

/**
 * Each tower's output of a layer for the images (CNHW [C][N][H][W], fc [units][N]; null on a tower that does
 * not compute the layer: tower 1 at fc8), after `step` steps.
 */
export interface ActivationsAt {
  readonly step: number;
  readonly towers: [Float32Array | null, Float32Array | null];
}

/** What the coordinator offers for predictions: held-out images (centre views) with labels, and class names. */
export interface HeldOutExamples {
  examples(count: number): Promise<U8Batch>;
  readonly classNames: readonly string[];
}

export interface PredictionsAt {
  readonly step: number;
  /** uint8 CNHW [3][count][S][S] */
  readonly images: Uint8Array;
  readonly labels: Uint32Array;
  /** [classes][count] */
  readonly logits: Float32Array;
  readonly classNames: readonly string[];
}

type LiveCoordinator = Pick<Coordinator, 'runId' | 'betweenSteps' | 'clients' | 'stepsCompleted' | 'asEvaluation' | 'evaluateBatch' | 'maxEvalBatch'>;

/** One layer's weights and biases from one worker (GetParameters limited to that layer). */
export async function layerParameters(client: WorkerClient, runId: string, layer: string): Promise<{ w: Float32Array; b: Float32Array }> {
  const msgs = await collectStream<GetParametersRequest, ParameterTensor>(client.client, 'GetParameters', { include_momentum: false, layers: [layer], run_id: runId });
  const got = assembleParameters(msgs).get(layer);
  const w = got?.get('w');
  const b = got?.get('b');
  if (!w || !b) throw new Error(`the worker at ${client.address} sent no ${layer} weights`);
  return { w, b };
}

export class LiveInspector {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly coordinator: LiveCoordinator, readonly spec: ModelSpec, readonly heldOut: HeldOutExamples | null = null) {}

  /** Runs inspection calls one after the other. */
  private serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.queue.then(f, f);
    this.queue = next.catch(() => {});
    return next;
  }

  /** Both towers' kernels of a conv layer (UserError for another layer). */
  kernels(layer: string): Promise<KernelsAt> {
    const shape = kernelShape(this.spec, layer);
    const c = this.coordinator;
    return this.serial(() =>
      c.betweenSteps(async () => {
        const step = c.stepsCompleted;
        const [t0, t1] = await Promise.all(c.clients.map((client) => layerParameters(client, c.runId, layer)));
        return { step, towers: [{ ...t0!, shape }, { ...t1!, shape }] as [LayerKernels, LayerKernels] };
      }),
    );
  }

  /** Each tower's output of `layer` for uint8 images [3][N][S][S] (UserError for an unknown layer or a wrong size). */
  activations(images: Uint8Array, layer: string): Promise<ActivationsAt> {
    const { shape } = mapShape(this.spec, layer);
    const { inputChannels: C, inputSize: S } = this.spec;
    const n = images.length / (C * S * S);
    if (!Number.isInteger(n) || n < 1 || n > this.coordinator.maxEvalBatch) {
      throw new UserError(`${images.length} image bytes: expected uint8 [${C}][N][${S}][${S}] with N in 1..${this.coordinator.maxEvalBatch}`);
    }
    return this.serial(async () => {
      const { step, replies } = await this.coordinator.asEvaluation(`inspection of ${layer}`, (t, evaluation, stepsDone, signal) =>
        unary<GetActivationsRequest, GetActivationsReply>(this.coordinator.clients[t]!.client, 'GetActivations', { run_id: this.coordinator.runId, evaluation, step: stepsDone, images, layer }, { signal }),
      );
      const floats = shape[0] * shape[1] * shape[2] * n;
      const towers = replies.map((r) => (r.has_activations && r.activations ? decodeTensor(r.activations) : null)) as [Float32Array | null, Float32Array | null];
      for (const x of towers) if (x && x.length !== floats) throw new Error(`a worker sent ${x.length} floats of ${layer} for ${n} images, expected ${floats}`);
      return { step, towers };
    });
  }

  /** The first `count` held-out images with tower 0's logits (Worker.Evaluate). */
  predictions(count: number): Promise<PredictionsAt> {
    const h = this.heldOut;
    if (!h) throw new UserError('this run has no held-out images to predict (its data has no val/ or test/ split)');
    const most = this.coordinator.maxEvalBatch;
    if (!Number.isInteger(count) || count < 1 || count > most) throw new UserError(`--count ${count}: this run evaluates at most ${most} images at once (its batch or --eval-batch, which sizes its messages): give --count ${most} or less`);
    return this.serial(async () => {
      const b = await h.examples(count);
      const c = this.coordinator;
      const { step, r } = await c.betweenSteps(async () => ({ step: c.stepsCompleted, r: await c.evaluateBatch({ images: b.images, labels: new Uint32Array(0) }) }));
      return { step, images: b.images, labels: b.labels, logits: r.logits, classNames: h.classNames };
    });
  }
}
