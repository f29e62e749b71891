/**
 * Evaluation views (section 4.1 and Table 1 of the paper): the centre crop,
 * or ten patches, the four corner crops and the centre crop and their
 * horizontal flips, whose softmax outputs are averaged.
 *
 * A view batch puts image j's view v in column j * views + v of a CNHW batch
 * (so the network's logits, laid out [class][column], keep an image's views
 * together); averageViewSoftmax turns those logits into per-image
 * probabilities [class][image], which metrics.ts's topKCorrect scores.
 */
import { cropF32, cropU8 } from './augment.js';
import type { DecodedSet } from './decoded-set.js';

export interface View {
  readonly x: number;
  readonly y: number;
  readonly flip: boolean;
}

export type ViewMode = 'centre' | 'ten';

/** The centre crop of side `crop` in an image of side `size`. */
export function centreView(size: number, crop: number): View {
  if (crop > size) throw new Error(`crop ${crop} larger than image ${size}`);
  const o = Math.floor((size - crop) / 2);
  return { x: o, y: o, flip: false };
}

/** Top-left, top-right, bottom-left, bottom-right, centre; then the same five flipped. */
export function tenViews(size: number, crop: number): View[] {
  const c = centreView(size, crop);
  const e = size - crop;
  const five: View[] = [
    { x: 0, y: 0, flip: false },
    { x: e, y: 0, flip: false },
    { x: 0, y: e, flip: false },
    { x: e, y: e, flip: false },
    c,
  ];
  return [...five, ...five.map((v) => ({ ...v, flip: true }))];
}

export function viewsFor(mode: ViewMode, size: number, crop: number): View[] {
  return mode === 'centre' ? [centreView(size, crop)] : tenViews(size, crop);
}

/** The views of one CHW image as a uint8 CNHW batch [3][views][crop][crop]. */
export function viewsU8(img: Uint8Array, size: number, crop: number, mode: ViewMode): Uint8Array {
  const views = viewsFor(mode, size, crop);
  const out = new Uint8Array(3 * views.length * crop * crop);
  views.forEach((v, i) => cropU8(img, size, 0, v, crop, out, { n: views.length, i }));
  return out;
}

export interface EvalBatchU8 {
  /** [3][count * views][crop][crop] */
  readonly images: Uint8Array;
  /** One label per image (not per view). */
  readonly labels: Uint32Array;
  readonly views: number;
}

export interface EvalBatch {
  readonly images: Float32Array;
  readonly labels: Float32Array;
  readonly views: number;
}

/** Images start .. start+count-1 of a (held-out) set, in order, as view batches. */
export function evalBatchU8(set: DecodedSet, start: number, count: number, crop: number, mode: ViewMode): EvalBatchU8 {
  const views = viewsFor(mode, set.size, crop);
  const V = views.length;
  const n = count * V;
  const images = new Uint8Array(3 * n * crop * crop);
  const labels = new Uint32Array(count);
  for (let j = 0; j < count; j++) {
    const img = set.image(start + j);
    views.forEach((v, k) => cropU8(img, set.size, 0, v, crop, images, { n, i: j * V + k }));
    labels[j] = set.labels[start + j]!;
  }
  return { images, labels, views: V };
}

/** evalBatchU8 as float32: (pixel - mean) / scale (default 64, the cifar and tiny presets' input scale; the paper preset's is 1). */
export function evalBatchF32(set: DecodedSet, start: number, count: number, crop: number, mode: ViewMode, mean: readonly number[], scale = 64): EvalBatch {
  const views = viewsFor(mode, set.size, crop);
  const V = views.length;
  const n = count * V;
  const images = new Float32Array(3 * n * crop * crop);
  const labels = new Float32Array(count);
  for (let j = 0; j < count; j++) {
    const img = set.image(start + j);
    views.forEach((v, k) => cropF32(img, set.size, 0, v, crop, images, { n, i: j * V + k }, [0, 0, 0], mean, scale));
    labels[j] = set.labels[start + j]!;
  }
  return { images, labels, views: V };
}

/**
 * Logits [class][image * views + view] -> the mean over each image's views of
 * the softmax, as [class][image].
 */
export function averageViewSoftmax(logits: Float32Array, classes: number, views: number): Float32Array {
  const cols = logits.length / classes;
  if (!Number.isInteger(cols) || cols % views !== 0) throw new Error(`averageViewSoftmax: ${logits.length} logits are not [${classes}][images x ${views}]`);
  const images = cols / views;
  const out = new Float32Array(classes * images);
  const p = new Float64Array(classes);
  for (let j = 0; j < images; j++) {
    for (let v = 0; v < views; v++) {
      const col = j * views + v;
      let max = -Infinity;
      for (let c = 0; c < classes; c++) max = Math.max(max, logits[c * cols + col]!);
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += p[c] = Math.exp(logits[c * cols + col]! - max);
      for (let c = 0; c < classes; c++) out[c * images + j] += p[c]! / sum / views;
    }
  }
  return out;
}
