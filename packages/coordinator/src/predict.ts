/**
 * `alexnet predict`: a trained model's top-5 classes for image files. Each
 * image is decoded and cut to the evaluation's views (inspect/image-input.ts:
 * core/data's decodeImage and viewsU8, as a held-out image is); both towers
 * run in this process (core's GroupedTrainer, the one-process trainer, on
 * one device each), with no worker started; with ten views the softmax is
 * averaged over them (core/data's averageViewSoftmax), as evaluation does.
 */
import { GroupedTrainer, type RequestedBackend } from '@alexnet-mp/core';
import { averageViewSoftmax, type ViewMode } from '@alexnet-mp/core/data';
import { normaliseImages } from '@alexnet-mp/worker';
import { imageInput } from './inspect/image-input.js';
import { topK } from './inspect/predictions.js';
import type { TrainedModel } from './trained-model.js';
import { UserError } from './cli/errors.js';

export interface Prediction {
  readonly image: string;
  /** The most probable classes, most probable first. */
  readonly top: { readonly class: number; readonly name: string; readonly p: number }[];
}

export interface PredictOptions {
  readonly views?: ViewMode;
  readonly backend?: RequestedBackend;
  /** How many classes to give per image (default 5, at most the model's classes). */
  readonly top?: number;
  /** Images a forward pass (default: 64 network inputs a pass, views counted). */
  readonly columnsPerPass?: number;
}

/** uint8 view batches [C][n_i][S][S], one per image, as one CNHW batch [C][sum n_i][S][S]. */
export function concatViews(parts: readonly Uint8Array[], channels: number, plane: number): Uint8Array {
  const cols = parts.map((p) => p.length / (channels * plane));
  const total = cols.reduce((a, b) => a + b, 0);
  const out = new Uint8Array(channels * total * plane);
  let col = 0;
  parts.forEach((p, i) => {
    const n = cols[i]!;
    for (let c = 0; c < channels; c++) out.set(p.subarray(c * n * plane, (c + 1) * n * plane), (c * total + col) * plane);
    col += n;
  });
  return out;
}

/** An image file that could not be read (missing, a folder, not an image): why, in one line. */
export interface Unreadable {
  readonly image: string;
  readonly error: string;
}

/**
 * Decodes every image first, then runs the model on those it could read, in passes: the predictions and the
 * files it could not read (each with why), together in the order of `files`. When it can read none, no kernel
 * is built and no mode ran.
 */
export async function predictImages(model: TrainedModel, files: readonly string[], o: PredictOptions = {}): Promise<{ results: (Prediction | Unreadable)[]; modes: string[] }> {
  const { spec } = model;
  const views = o.views ?? 'centre';
  const V = views === 'ten' ? 10 : 1;
  const inputs: Uint8Array[] = [];
  const readable: string[] = [];
  const unreadable = new Map<number, Unreadable>();
  for (const [i, f] of files.entries()) {
    try {
      inputs.push(await imageInput(f, spec, views, null));
      readable.push(f);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      unreadable.set(i, { image: f, error: e.message });
    }
  }
  if (inputs.length === 0) return { results: [...unreadable.values()], modes: [] };
  const names = await model.classNames();
  const norm = { mean: await model.inputMean(), scale: spec.inputScale };
  const perPass = Math.max(1, Math.floor((o.columnsPerPass ?? 64) / V));
  const plane = spec.inputSize * spec.inputSize;
  const k = Math.min(o.top ?? 5, spec.classes);
  const trainer = await GroupedTrainer.create({ spec, backend: o.backend ?? 'auto', batch: 1, seed: model.seed, params: model.params, fallback: { onFallback: 'warn' } });
  try {
    const predictions: Prediction[] = [];
    for (let start = 0; start < readable.length; start += perPass) {
      const chunk = inputs.slice(start, start + perPass);
      const images = normaliseImages(concatViews(chunk, spec.inputChannels, plane), norm);
      const logits = await trainer.predict(images, chunk.length * V);
      const probs = averageViewSoftmax(logits, spec.classes, V);
      const n = chunk.length;
      for (let j = 0; j < n; j++) {
        const p = Array.from({ length: spec.classes }, (_, c) => probs[c * n + j]!);
        predictions.push({ image: readable[start + j]!, top: topK(p, k).map((g) => ({ class: g.cls, name: names[g.cls]!, p: g.p })) });
      }
    }
    const read = predictions.values();
    const results = files.map((_, i) => unreadable.get(i) ?? read.next().value!);
    return { results, modes: trainer.executedOn() };
  } finally {
    trainer.destroy();
  }
}

/** Text for people: the image, then one line per class, most probable first. */
export function formatPrediction(p: Prediction): string {
  return [p.image, ...p.top.map((g) => `  ${(100 * g.p).toFixed(1).padStart(5)}%  ${g.name}`)].join('\n');
}
