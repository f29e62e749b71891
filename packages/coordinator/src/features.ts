/**
 * A layer's output for every image of a data set's held-out split, one row per image: both towers' values
 * (tower 0's maps, then tower 1's; a layer only tower 0 computes, such as fc8, tower 0's), each [map][h][w],
 * as `inspect activations` draws them for one image. `alexnet features` writes the rows to a NumPy file;
 * `inspect neighbours` finds the images nearest to one in that space (the paper's Figure 4, on fc7).
 * Both towers run in this process, on the model's weights (core's GroupedTrainer, as `evaluate`).
 */
import { GroupedTrainer, type RequestedBackend } from '@alexnet-mp/core';
import { normaliseImages } from '@alexnet-mp/worker';
import { mapShape } from './inspect/layers.js';
import type { TrainedModel } from './trained-model.js';
import type { TrainingData } from './training-data.js';
import { UserError } from './cli/errors.js';

export interface FeatureLayout {
  readonly layer: string;
  /** Values a row: towers x maps x h x w. */
  readonly dim: number;
  /** The towers that compute the layer, and each one's [maps, h, w]. */
  readonly towers: readonly number[];
  readonly map: readonly [number, number, number];
}

/** A batch of rows: rows `start` .. `start + n - 1`. */
export interface FeatureBatch {
  readonly start: number;
  readonly n: number;
  /** Each row's place in the whole held-out split (with --limit, the rows are spread over a folder's split). */
  readonly indices: readonly number[];
  /** [n][dim], row-major. */
  readonly rows: Float32Array;
  readonly labels: Uint32Array;
  /** The images as the network saw them (uint8 [3][n][S][S], centre views). */
  readonly images: Uint8Array;
}

/** Images a forward pass; with synthetic data also what the held-out split is cut into (its images depend on it). */
export const FEATURE_BATCH = 64;

export interface FeatureOptions {
  readonly layer: string;
  readonly backend?: RequestedBackend;
  /** At most this many images, spread evenly over a real data set's split (default all). */
  readonly limit?: number;
}

export function featureLayout(model: TrainedModel, layer: string): FeatureLayout {
  const { shape, towers } = mapShape(model.spec, layer);
  return { layer, dim: towers.length * shape[0] * shape[1] * shape[2], towers, map: shape };
}

/** Both towers of a model in this process, giving rows of a layer for uint8 images. */
export class FeatureExtractor {
  private constructor(
    readonly layout: FeatureLayout,
    private readonly trainer: GroupedTrainer,
    private readonly norm: { mean: number[]; scale: number },
  ) {}

  static async create(model: TrainedModel, layer: string, backend: RequestedBackend = 'auto'): Promise<FeatureExtractor> {
    const layout = featureLayout(model, layer);
    const norm = { mean: await model.inputMean(), scale: model.spec.inputScale };
    const trainer = await GroupedTrainer.create({ spec: model.spec, backend, batch: 1, seed: model.seed, params: model.params, fallback: { onFallback: 'warn' } });
    return new FeatureExtractor(layout, trainer, norm);
  }

  /** The rows [n][dim] of `n` uint8 images [3][n][S][S], normalised as the workers do. */
  async rows(images: Uint8Array, n: number): Promise<Float32Array> {
    const { layout } = this;
    const [C, H, W] = layout.map;
    const plane = H * W;
    const out = await this.trainer.activations(normaliseImages(images, this.norm), n, layout.layer);
    const rows = new Float32Array(n * layout.dim);
    // each tower's [C][n][h][w] to rows of [tower][C][h][w]
    layout.towers.forEach((t, k) => {
      const x = out[t]!;
      for (let j = 0; j < n; j++) {
        const row = j * layout.dim + k * C * plane;
        for (let c = 0; c < C; c++) rows.set(x.subarray((c * n + j) * plane, (c * n + j + 1) * plane), row + c * plane);
      }
    });
    return rows;
  }

  destroy(): void {
    this.trainer.destroy();
  }
}

/**
 * The rows of the held-out split, batch after batch, in the split's order (an extractor of the layer is made, or
 * `extractor` used); with `limit`, that many images spread evenly over a real data set's split.
 */
export async function* featureBatches(model: TrainedModel, data: Pick<TrainingData, 'heldOutSubset'>, o: FeatureOptions, extractor?: FeatureExtractor): AsyncGenerator<FeatureBatch> {
  const limit = o.limit ?? Infinity;
  if (!(limit >= 1)) throw new UserError(`--limit must be a whole number >= 1, got ${o.limit}`);
  const x = extractor ?? (await FeatureExtractor.create(model, o.layer, o.backend));
  try {
    let start = 0;
    const S = model.spec.inputSize;
    const { set, count, index } = data.heldOutSubset(FEATURE_BATCH, limit);
    for await (const whole of set.batches()) {
      if (start >= count) break;
      const n = Math.min(whole.labels.length, count - start);
      if (n === 0) continue;
      const b = n === whole.labels.length ? whole : { images: firstImages(whole.images, whole.labels.length, n, S), labels: whole.labels.subarray(0, n) };
      yield { start, n, indices: Array.from({ length: n }, (_, j) => index(start + j)), rows: await x.rows(b.images, n), labels: b.labels, images: b.images };
      start += n;
    }
    if (start === 0) throw new UserError('the held-out split has no images');
  } finally {
    if (!extractor) x.destroy();
  }
}

/** The first `n` of `total` images of a uint8 batch [3][total][S][S]. */
function firstImages(images: Uint8Array, total: number, n: number, S: number): Uint8Array {
  const plane = S * S;
  const out = new Uint8Array(3 * n * plane);
  for (let c = 0; c < 3; c++) out.set(images.subarray(c * total * plane, (c * total + n) * plane), c * n * plane);
  return out;
}

/** Squared Euclidean distance of row i of `rows` (width `dim`) to `q`. */
export function squaredDistance(rows: Float32Array, i: number, dim: number, q: Float32Array): number {
  let d = 0;
  const o = i * dim;
  for (let k = 0; k < dim; k++) {
    const e = rows[o + k]! - q[k]!;
    d += e * e;
  }
  return d;
}
