/**
 * Evaluation on held-out data: what one evaluation covers (an EvalSet: the
 * same batches every time, so successive evaluations are comparable), and
 * the metrics it gives. The coordinator runs the batches through both
 * workers (Worker.Evaluate: forward only, no dropout, no update).
 */
import { deriveSeed, topKCorrect, type ModelSpec } from '@alexnet-mp/core';
import { decodeTensor, type CrossingTraffic, type EvaluateReply, type HandshakeReply } from '@alexnet-mp/worker';
import { workerEvalMetrics } from './step-metrics.js';
import { SyntheticSource, type BatchSource, type SourceName, type U8Batch } from './batch-source.js';
import { UserError } from './cli/errors.js';
import { lacks } from './worker-features.js';

/** The batches of one evaluation. */
export interface EvalSet {
  /** One line for logs. */
  readonly description: string;
  /** The largest batch it yields (sets the message size limits and is checked against the workers' --max-batch). */
  readonly maxBatch: number;
  /**
   * Views per image (default 1). With 10 (ten-patch evaluation) each batch holds `labels.length * views`
   * images, image j's view v in column j * views + v, and one label per image.
   */
  readonly views?: number;
  /** The batches, in order; every call yields the same ones. */
  batches(): AsyncIterable<U8Batch>;
}

/** Batches 0 .. count-1 of a source (each `batchSize` images): a fixed evaluation set. */
export class SourceEvalSet implements EvalSet {
  readonly description: string;
  constructor(readonly source: BatchSource, readonly maxBatch: number, readonly count: number) {
    this.description = `${count} batches of ${maxBatch} from ${source.description}`;
  }
  async *batches(): AsyncIterable<U8Batch> {
    for (let i = 0; i < this.count; i++) yield await this.source.batch(i, this.maxBatch);
  }
}

/**
 * The number of images in an evaluation batch of model `spec`, checked: whole uint8 images, at most `maxBatch`
 * (the coordinator's message size limits), one label per image or none, and a batch both workers evaluate
 * (`handshakes`, labelled by `label`).
 */
export function evalBatchSize(spec: ModelSpec, b: U8Batch, maxBatch: number, handshakes: readonly HandshakeReply[], label: (t: number) => string): number {
  const { inputChannels: C, inputSize: S } = spec;
  const n = b.images.length / (C * S * S);
  if (!Number.isInteger(n) || n < 1) throw new Error(`an evaluation batch of ${b.images.length} bytes is not uint8 [${C}][N][${S}][${S}]`);
  if (n > maxBatch) throw new Error(`an evaluation batch of ${n} images is more than this coordinator's message size limits allow (${maxBatch}: pass evalBatch)`);
  if (b.labels.length !== 0 && b.labels.length !== n) throw new Error(`${b.labels.length} labels for an evaluation batch of ${n} images`);
  for (const [t, h] of handshakes.entries()) {
    const lacking = lacks(h.features, 'evaluate');
    if (lacking) throw new UserError(`${label(t)} ${lacking}`);
    if (n > h.max_batch) throw new UserError(`an evaluation batch of ${n} is more than ${label(t)} accepts (it was started with --max-batch ${h.max_batch})`);
  }
  return n;
}

/** Mixed into the run seed for the synthetic held-out set: other images than the training batches', from the same classes. */
export const HELD_OUT_SEED_TAG = 0x4e1d0;

/**
 * The held-out set of a data source: for `synthetic`, the same generator
 * with a seed derived from the run seed (images the training never sees).
 * Real data sets bring their own validation split (the data loaders).
 */
export function heldOutSet(name: SourceName, spec: ModelSpec, seed: number, batchSize: number, batches: number): EvalSet {
  switch (name) {
    case 'synthetic':
      return new SourceEvalSet(new SyntheticSource(spec, deriveSeed(seed, HELD_OUT_SEED_TAG)), batchSize, batches);
  }
}

/** One evaluation's numbers: a metrics line (`event: "eval"`) in the log. */
export interface EvalSummary {
  /** Training steps done when evaluated. */
  step: number;
  /** Mean cross-entropy over the images. */
  loss: number;
  /** Share of images whose label is not the top-1 / not in the top 5 (a tie ranks the lower class index first: metrics.ts topKCorrect). */
  top1_error: number;
  top5_error: number;
  images: number;
  batches: number;
  /** Wall clock of the whole evaluation at the coordinator. */
  ms: number;
  /** Tensor bytes that crossed between the workers (forward only: both towers' pool2, pool5, fc6 and tower 1's fc7). */
  crossing_bytes: number;
  /** Per worker, summed over the batches: time blocked on its peer, and the bytes it sent and received. */
  workers: { tower: number; compute_ms: number; exchange_ms: number; sent_bytes: number; received_bytes: number }[];
}

export interface EvalMetrics extends EvalSummary {
  event: 'eval';
  /** Views averaged per image: 10 for ten-patch evaluation (absent for centre crops). */
  views?: number;
}

/** One batch's result from tower 0 (and the traffic of both). */
export interface EvalBatchResult {
  /** The Evaluate call's number in the run. */
  evaluation: number;
  batch: number;
  /** Mean cross-entropy, correct top-1 and top-5 counts (0 when the batch had no labels). */
  loss: number;
  correct: number;
  correct_top5: number;
  /** fc8's output, [class][image]. */
  logits: Float32Array;
  labels: Uint32Array;
  workers: EvalSummary['workers'];
  /** Per worker (tower 0's list first), per crossing point: what crossed for this batch (forward only). */
  traffic: CrossingTraffic[][];
}

/** Evaluation `evaluation`'s result for a batch of `n` images from both workers' replies: tower 0 has the logits, loss and counts. */
export function evalBatchResult(evaluation: number, n: number, classes: number, labels: Uint32Array, replies: readonly EvaluateReply[]): EvalBatchResult {
  const r0 = replies[0]!;
  if (!r0.logits) throw new Error(`tower 0 returned no logits for evaluation ${evaluation}`);
  return {
    evaluation,
    batch: n,
    loss: r0.loss,
    correct: r0.correct,
    correct_top5: r0.correct_top5,
    logits: decodeTensor(r0.logits, [classes, n]),
    labels,
    workers: workerEvalMetrics(replies),
    traffic: replies.map((r) => r.traffic),
  };
}

export interface EvalResult extends EvalSummary {
  /** Per batch, when asked for (`logits: true`): [class][image], e.g. to average the softmax of views. */
  logits: Float32Array[];
  labels: Uint32Array[];
}

/** Totals over the batches of one evaluation. */
export function summariseEval(step: number, results: readonly EvalBatchResult[], ms: number): EvalSummary {
  let images = 0;
  let loss = 0;
  let correct = 0;
  let top5 = 0;
  const workers = [0, 1].map((tower) => ({ tower, compute_ms: 0, exchange_ms: 0, sent_bytes: 0, received_bytes: 0 }));
  for (const r of results) {
    images += r.batch;
    loss += r.loss * r.batch;
    correct += r.correct;
    top5 += r.correct_top5;
    for (const w of r.workers) {
      const e = workers[w.tower]!;
      e.compute_ms += w.compute_ms;
      e.exchange_ms += w.exchange_ms;
      e.sent_bytes += w.sent_bytes;
      e.received_bytes += w.received_bytes;
    }
  }
  return {
    step,
    loss: images ? loss / images : 0,
    top1_error: images ? 1 - correct / images : 0,
    top5_error: images ? 1 - top5 / images : 0,
    images,
    batches: results.length,
    ms,
    crossing_bytes: workers[0]!.sent_bytes + workers[1]!.sent_bytes,
    workers,
  };
}

/**
 * One batch of view logits (`r.logits` [class][image * views + view], evaluated without labels) scored per
 * image: the softmax averaged over each image's views (averageViewSoftmax), the mean of -log of the label's
 * averaged probability, and top-1/top-5 counts from the averaged probabilities. `batch` becomes the number of
 * images and `logits` the averaged probabilities [class][image].
 */
export async function scoreViews(r: EvalBatchResult, labels: Uint32Array, classes: number, views: number): Promise<EvalBatchResult> {
  // loaded here only: a synthetic run never loads the data package (image decoders)
  const { averageViewSoftmax } = await import('@alexnet-mp/core/data');
  const probs = averageViewSoftmax(r.logits, classes, views);
  const n = probs.length / classes;
  if (n !== labels.length) throw new Error(`${labels.length} labels for ${n} images of ${views} views`);
  let loss = 0;
  for (let j = 0; j < n; j++) loss -= Math.log(Math.max(probs[labels[j]! * n + j]!, Number.MIN_VALUE));
  return {
    ...r,
    batch: n,
    loss: n ? loss / n : 0,
    correct: topKCorrect(probs, labels, classes, 1),
    correct_top5: topKCorrect(probs, labels, classes, 5),
    logits: probs,
    labels,
  };
}

/** What evaluateBatches needs of a coordinator: one batch evaluated on both workers, the steps done, the model. */
export interface BatchEvaluator {
  readonly o: { readonly spec: ModelSpec };
  readonly stepsCompleted: number;
  evaluateBatch(b: U8Batch): Promise<EvalBatchResult>;
}

/**
 * Evaluates a set of labelled batches (they may differ in size) with the current parameters: mean loss,
 * top-1 and top-5 error over all their images, and with `logits: true` (the default) each batch's logits,
 * e.g. for averaging the softmax over an image's ten patches. With `views` > 1 each batch holds
 * `labels.length * views` images (image j's view v in column j * views + v) and every image is scored
 * from the softmax averaged over its views (scoreViews above; the logits kept are those
 * averaged probabilities). The next batch is fetched while the workers compute.
 */
export async function evaluateBatches(c: BatchEvaluator, batches: AsyncIterable<U8Batch> | Iterable<U8Batch | Promise<U8Batch>>, o: { logits?: boolean; views?: number } = {}): Promise<EvalResult> {
  const keep = o.logits ?? true;
  const views = o.views ?? 1;
  const t0 = performance.now();
  const step = c.stepsCompleted;
  const results: EvalBatchResult[] = [];
  const logits: Float32Array[] = [];
  const labels: Uint32Array[] = [];
  const it = Symbol.asyncIterator in batches ? batches[Symbol.asyncIterator]() : (batches as Iterable<U8Batch | Promise<U8Batch>>)[Symbol.iterator]();
  let next = Promise.resolve(it.next());
  for (;;) {
    const r = await next;
    if (r.done) break;
    const b = await r.value;
    if (b.labels.length === 0) throw new Error('evaluate needs labelled batches (use evaluateBatch for logits only)');
    // views > 1: the workers see the views unlabelled; each image is scored here from its views' averaged softmax
    const pending = views > 1 ? c.evaluateBatch({ images: b.images, labels: new Uint32Array(0) }).then((r) => scoreViews(r, b.labels, c.o.spec.classes, views)) : c.evaluateBatch(b);
    // the next batch is made while the workers compute (a failure surfaces when it is awaited)
    next = Promise.resolve(it.next());
    next.catch(() => {});
    const res = await pending;
    results.push({ ...res, logits: new Float32Array(0) });
    if (keep) {
      logits.push(res.logits);
      labels.push(res.labels);
    }
  }
  return { ...summariseEval(step, results, performance.now() - t0), logits, labels };
}
