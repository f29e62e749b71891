/**
 * `alexnet evaluate`: a trained model (a model file or a run's checkpoint) on a data set's whole held-out split,
 * in this process (both towers on core's GroupedTrainer, as `predict` runs them): the loss and top-1 and top-5
 * error, and where the errors are, per class and as a confusion matrix, with every misclassified image (its
 * place in the split, its file where the data is a folder, its label and top-5 guesses).
 */
import { GroupedTrainer, type RequestedBackend } from '@alexnet-mp/core';
import { averageViewSoftmax, type ViewMode } from '@alexnet-mp/core/data';
import { normaliseImages } from '@alexnet-mp/worker';
import { topK } from './inspect/predictions.js';
import type { TrainedModel } from './trained-model.js';
import type { TrainingData } from './training-data.js';
import { UserError } from './cli/errors.js';
import { errorWords, pct, topFiveMeaningful } from './error-words.js';

/** A held-out image the model got wrong at top-1. */
export interface Misclassified {
  /** Its place in the held-out split (0-based, in the split's order). */
  readonly index: number;
  /** Its file, where the data set is a folder of images. */
  readonly file?: string;
  readonly label: number;
  readonly name: string;
  readonly top: { readonly class: number; readonly name: string; readonly p: number }[];
}

export interface EvaluationReport {
  readonly images: number;
  readonly views: ViewMode;
  /** Mean cross-entropy of the (view-averaged) softmax. */
  readonly loss: number;
  readonly top1_error: number;
  /** null for a model of five classes or fewer (every label is among its top 5). */
  readonly top5_error: number | null;
  readonly classes: readonly string[];
  /** Per class: its images and their top-1 error. */
  /** `top1_error` null for a class with no images (nothing to be wrong about). */
  readonly per_class: { readonly class: number; readonly name: string; readonly images: number; readonly top1_error: number | null }[];
  /** confusion[true class][predicted class]: image counts. */
  readonly confusion: number[][];
}

export interface EvaluateOptions {
  readonly views?: ViewMode;
  readonly backend?: RequestedBackend;
  /** Images a forward pass (default 64). */
  readonly batch?: number;
  /** Each misclassified image, as it is found. */
  readonly onWrong?: (m: Misclassified) => void;
  /** Images done so far, after each pass. */
  /** `total`: the split's images, when known beforehand (generated data: not). */
  readonly onProgress?: (done: number, total: number | undefined) => void;
}

export async function evaluateModel(model: TrainedModel, data: Pick<TrainingData, 'heldOut' | 'heldOutFiles'>, o: EvaluateOptions = {}): Promise<{ report: EvaluationReport; modes: string[] }> {
  const { spec } = model;
  const C = spec.classes;
  const views = o.views ?? 'centre';
  const V = views === 'ten' ? 10 : 1;
  const set = data.heldOut(o.batch ?? 64, undefined, views);
  const total = 'images' in set && typeof set.images === 'number' ? set.images : undefined;
  // the model file's names, or those of the data set a checkpoint's run (or --data) names: one per output
  const names = await model.classNames();
  const nameOf = (c: number) => names[c] ?? `class ${c}`;
  const norm = { mean: await model.inputMean(), scale: spec.inputScale };
  const confusion = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  let images = 0;
  let loss = 0;
  let top5 = 0;
  const trainer = await GroupedTrainer.create({ spec, backend: o.backend ?? 'auto', batch: 1, seed: model.seed, params: model.params, fallback: { onFallback: 'warn' } });
  try {
    for await (const b of set.batches()) {
      const n = b.labels.length;
      if (n === 0) continue;
      const logits = await trainer.predict(normaliseImages(b.images, norm), n * V);
      const probs = averageViewSoftmax(logits, C, V);
      for (let j = 0; j < n; j++) {
        const label = b.labels[j]!;
        if (label >= C) throw new UserError(`held-out image ${images + j} has label ${label}: the model has ${C} outputs`);
        const p = Float64Array.from({ length: C }, (_, c) => probs[c * n + j]!);
        const guesses = topK(p, Math.min(5, C));
        loss -= Math.log(Math.max(p[label]!, 1e-45));
        if (guesses.some((g) => g.cls === label)) top5++;
        const predicted = guesses[0]!.cls;
        confusion[label]![predicted]!++;
        if (predicted !== label && o.onWrong) {
          const index = images + j;
          const file = data.heldOutFiles?.[index];
          o.onWrong({ index, ...(file ? { file } : {}), label, name: nameOf(label), top: guesses.map((g) => ({ class: g.cls, name: nameOf(g.cls), p: g.p })) });
        }
      }
      images += n;
      o.onProgress?.(images, total);
    }
    if (images === 0) throw new UserError('the held-out split has no images');
    const correct = confusion.reduce((a, row, c) => a + row[c]!, 0);
    const perClass = perClassOf(confusion, nameOf);
    return {
      report: { images, views, loss: loss / images, top1_error: 1 - correct / images, top5_error: topFiveMeaningful(C) ? 1 - top5 / images : null, classes: names.slice(0, C), per_class: perClass, confusion },
      modes: trainer.executedOn(),
    };
  } finally {
    trainer.destroy();
  }
}

/** Each class's images and top-1 error from the confusion matrix (label rows, prediction columns); null error for a class without images. */
export function perClassOf(confusion: readonly (readonly number[])[], nameOf: (c: number) => string): EvaluationReport['per_class'] {
  return confusion.map((row, c) => {
    const count = row.reduce((a, x) => a + x, 0);
    return { class: c, name: nameOf(c), images: count, top1_error: count > 0 ? 1 - row[c]! / count : null };
  });
}

/** The report as text: the totals, a table per class (with what it is most often taken for) and the confusion matrix. */
export function formatEvaluation(r: EvaluationReport): string {
  const out: string[] = [];
  out.push(`${errorWords(r.top1_error, r.top5_error ?? 0, r.classes.length)}, loss ${r.loss.toFixed(3)} on ${r.images} held-out images (${r.views === 'ten' ? "ten patches each, softmax averaged" : 'centre crops'})`);
  out.push('');
  out.push('| class | images | top-1 error | most often taken for |');
  out.push('|---|---|---|---|');
  const shown = r.per_class.filter((c) => c.images > 0);
  for (const c of shown) {
    const row = r.confusion[c.class]!;
    let worst = -1;
    for (let k = 0; k < row.length; k++) if (k !== c.class && row[k]! > 0 && (worst < 0 || row[k]! > row[worst]!)) worst = k;
    const taken = worst < 0 ? '-' : `${r.per_class[worst]!.name} (${pct(row[worst]! / c.images)})`;
    out.push(`| ${c.name} | ${c.images} | ${pct(c.top1_error!)} | ${taken} |`);
  }
  // a column for every class with images or predicted for some image: each row then adds up to its images
  // (a data set with fewer classes than the model has its images taken for classes it has no folder of)
  const predicted = (k: number) => r.confusion.some((row) => row[k]! > 0);
  const columns = r.per_class.filter((c) => c.images > 0 || predicted(c.class));
  const sameAsRows = columns.length === shown.length;
  out.push('');
  out.push(
    sameAsRows
      ? 'confusion matrix (a row per true class, a column per predicted class, in the order above; image counts):'
      : `confusion matrix (a row per true class, in the order above; a column per predicted class: ${columns.map((c) => c.name).join(', ')}; image counts):`,
  );
  const width = Math.max(3, ...r.confusion.flat().map((x) => String(x).length));
  const label = Math.max(...shown.map((c) => c.name.length));
  for (const c of shown) out.push(`${c.name.padEnd(label)}  ${columns.map((k) => String(r.confusion[c.class]![k.class]).padStart(width)).join(' ')}`);
  return out.join('\n') + '\n';
}
