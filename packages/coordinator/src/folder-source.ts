/**
 * `--data DIR|cifar10`: training batches from real images, for the
 * coordinator. Opens the data set once (CIFAR-10 downloaded into the cache
 * folder, an image folder decoded into the decoded cache, the training set's
 * colour statistics computed: @alexnet-mp/core/data's openDataset), then
 * makes every batch in a worker thread (BatchThread) and keeps the next ones
 * coming (Prefetcher) while the workers compute.
 *
 * Batch `step` of `size` images is positions step*size .. of the endless
 * sequence of epochs, each epoch a shuffle of the training split seeded by
 * (seed, epoch), each image augmented from (seed, epoch, index): random
 * crops (paper: 224 of 256; cifar: 32 of the 4-padded 40) and flips, and the
 * PCA colour noise added to the uint8 pixels (rounded; the exact per-image
 * shifts travel in `shifts` for a worker that can take them). The workers
 * normalise (u8 - mean_c) / inputScale with the training set's per-channel
 * mean, which the coordinator sends them (worker/src/images.ts).
 */
import type { ModelSpec } from '@alexnet-mp/core';
import {
  BatchThread,
  DataError,
  Prefetcher,
  augmentFor,
  openDataset,
  type AugmentConfig,
  type AugmentedU8Batch,
  type Cifar10Options,
  type DataWarning,
  type Dataset,
  type PrefetchStats,
  type ViewMode,
} from '@alexnet-mp/core/data';
import type { BatchSource, U8Batch } from './batch-source.js';

export interface FolderBatch extends U8Batch {
  /** Per-image PCA colour shift in pixel levels [N][3], already added (rounded) to `images` unless shiftInU8 is false. */
  readonly shifts: Float32Array;
  /** Epoch and training-set index of every image. */
  readonly epochs: Uint32Array;
  readonly indices: Uint32Array;
}

export interface FolderSourceOptions {
  /** "cifar10", or a folder: an image folder (train/<class>/..., val/ or test/) or CIFAR-10's binary batches. */
  readonly data: string;
  readonly spec: ModelSpec;
  readonly seed: number;
  /** Default: $ALEXNET_CACHE_DIR, $XDG_CACHE_HOME/alexnet-mp or ~/.cache/alexnet-mp. */
  readonly cacheDir?: string;
  /** Batches made ahead of the one asked for (default 2). */
  readonly prefetch?: number;
  /** Default: augmentFor(spec.inputSize) (paper style from 64 pixels, CIFAR style below). */
  readonly augment?: AugmentConfig;
  /**
   * Add the PCA colour shift to the uint8 pixels (rounded; default true).
   * False sends the pixels unshifted with the exact shifts in `shifts`, for
   * workers that add them in their normalisation.
   */
  readonly shiftInU8?: boolean;
  /** For "cifar10": where and what to download (tests). */
  readonly download?: Omit<Cifar10Options, 'cacheDir' | 'log'>;
  /** Progress lines (download, decoding). */
  readonly info?: (line: string) => void;
  /** Every skipped file; by default they are summarised through `info`. */
  readonly onWarning?: (w: DataWarning) => void;
  /** Only the held-out split is used (a trained model's predictions): an image folder's training split is not decoded (core's openDataset). */
  readonly heldOutOnly?: boolean;
}

/**
 * Images k = start .. start+count-1 of `images` evenly spaced over a split of `total` (image floor(k * total / images)), as one CNHW batch
 * (with mode 'ten', `views` columns per image, image j's view v in column j * views + v).
 */
async function spacedBatch(thread: BatchThread, start: number, count: number, images: number, total: number, crop: number, mode: ViewMode): Promise<U8Batch> {
  const parts = await Promise.all(Array.from({ length: count }, (_, i) => thread.evalU8(Math.floor(((start + i) * total) / images), 1, crop, mode)));
  const views = parts[0]!.views;
  const block = views * crop * crop;
  const channels = parts[0]!.images.length / block;
  const out = new Uint8Array(channels * count * block);
  const labels = new Uint32Array(count);
  parts.forEach((p, i) => {
    labels[i] = p.labels[0]!;
    for (let c = 0; c < channels; c++) out.set(p.images.subarray(c * block, (c + 1) * block), (c * count + i) * block);
  });
  return { images: out, labels };
}

/**
 * A data set's problems in a few lines: a class never trained on first (every image of it skipped), then the
 * others, five of them named, the rest counted by what is wrong with them.
 */
export function problemsInWords(warnings: readonly DataWarning[], data: string): string {
  const classWide = (w: DataWarning) => / is never trained on$/.test(w.message);
  const ordered = [...warnings.filter(classWide), ...warnings.filter((w) => !classWide(w))];
  const shown = ordered.slice(0, 5).map((w) => `${w.path}: ${w.message}`);
  const rest = ordered.slice(5);
  const byWhat = new Map<string, number>();
  for (const w of rest) byWhat.set(w.message, (byWhat.get(w.message) ?? 0) + 1);
  const kinds = [...byWhat].sort((a, b) => b[1] - a[1]);
  const counted = kinds.slice(0, 3).map(([m, n]) => `${n} "${m}"`).join('; ') + (kinds.length > 3 ? `; ${kinds.slice(3).reduce((a, [, n]) => a + n, 0)} of other kinds` : '');
  return `${warnings.length} ${warnings.length === 1 ? 'problem' : 'problems'} in ${data}:\n  ${shown.join('\n  ')}${rest.length > 0 ? `\n  ... and ${rest.length} more: ${counted}` : ''}`;
}

export class FolderSource implements BatchSource {
  readonly description: string;
  readonly inputMean: readonly number[];
  private prefetcher: Prefetcher<AugmentedU8Batch> | null = null;
  private prefetchSize = 0;

  private constructor(
    readonly dataset: Dataset,
    readonly augment: AugmentConfig,
    private readonly thread: BatchThread,
    private readonly depth: number,
    seed: number,
  ) {
    this.inputMean = dataset.stats.mean;
    const a = augment;
    const geometry =
      a.pad > 0 ? `random ${a.crop}x${a.crop} crops of the ${a.pad}-pixel zero-padded ${a.storedSize}x${a.storedSize}` : `random ${a.crop}x${a.crop} crops of ${a.storedSize}x${a.storedSize}`;
    this.description =
      `${dataset.description}; ${geometry}${a.flip ? ', flips' : ''}${a.pcaStd > 0 ? `, PCA colour noise (std ${a.pcaStd})` : ''}, seed ${seed}` +
      (dataset.warnings.length > 0 ? `; ${dataset.warnings.length} ${dataset.warnings.length === 1 ? 'problem' : 'problems'} (said when it was opened)` : '');
  }

  static async open(o: FolderSourceOptions): Promise<FolderSource> {
    const { spec } = o;
    if (spec.inputChannels !== 3) throw new DataError(o.data, `preset ${spec.name} takes ${spec.inputChannels} input channels; image data sets are RGB (3)`);
    const augment = o.augment ?? augmentFor(spec.inputSize);
    if (augment.crop !== spec.inputSize) throw new DataError(o.data, `augmentation crops ${augment.crop} pixels, preset ${spec.name} takes ${spec.inputSize}`);
    const warnings: DataWarning[] = [];
    const dataset = await openDataset(o.data, {
      size: augment.storedSize,
      maxClasses: { count: spec.classes, of: `preset ${spec.name}` },
      heldOutOnly: o.heldOutOnly,
      cacheDir: o.cacheDir,
      download: o.download,
      log: o.info,
      onWarning: (w) => {
        warnings.push(w);
        o.onWarning?.(w);
      },
    });
    if (!o.onWarning && warnings.length > 0) o.info?.(problemsInWords(warnings, o.data));
    if (dataset.classes.length > spec.classes) {
      throw new DataError(dataset.root, `${dataset.root} has ${dataset.classes.length} classes but preset ${spec.name} has ${spec.classes} outputs`);
    }
    // what the labels of training are (a trained model's held-out use says how its classes meet the data's: openHeldOutFor)
    if (o.heldOutOnly) {
      // nothing to say here
    } else if (dataset.classes.length === 1) {
      o.info?.(`warning: ${o.data} has 1 class (${dataset.classes[0]}): every image has the same label, so there is nothing to tell apart; give a folder of two or more class folders`);
    } else if (dataset.classes.length < spec.classes) {
      o.info?.(`${o.data} has ${dataset.classes.length} classes: they take the first ${dataset.classes.length} of preset ${spec.name}'s ${spec.classes} outputs (the others are never a label)`);
    }
    const thread = new BatchThread({
      train: dataset.train,
      heldOut: dataset.heldOut,
      size: augment.storedSize,
      maker: { seed: o.seed, augment, stats: dataset.stats, shiftInU8: o.shiftInU8 },
    });
    return new FolderSource(dataset, augment, thread, o.prefetch ?? 2, o.seed);
  }

  /** Images in one epoch of the training split. */
  get imagesPerEpoch(): number {
    return this.dataset.trainCount;
  }

  async batch(step: number, size: number): Promise<FolderBatch> {
    if (!this.prefetcher || this.prefetchSize !== size) {
      this.prefetcher?.clear();
      this.prefetcher = new Prefetcher((k) => this.thread.u8(k, size), this.depth);
      this.prefetchSize = size;
    }
    const b = await this.prefetcher.get(step);
    return { images: b.images, labels: b.labels, shifts: b.shifts, epochs: b.epochs, indices: b.indices };
  }

  /**
   * The held-out split (val/ or test/) as fixed evaluation batches: the
   * centre crop of every image, in the split's order, `batchSize` images a
   * batch (the last one shorter), at most `limit` images. Shaped like
   * evaluation.ts's EvalSet (description, maxBatch, views, batches()). With
   * centre crops the top-1/top-5 of the evaluation itself are the paper's
   * single-crop numbers; with mode 'ten' every image comes as its ten patches
   * (eval.ts's tenViews: a batch of `batchSize` images sends 10 x batchSize,
   * which is maxBatch), whose softmax the coordinator averages per image.
   */
  heldOut(
    batchSize: number,
    limit = Infinity,
    mode: ViewMode = 'centre',
  ): { readonly description: string; readonly maxBatch: number; readonly views: number; readonly images: number; batches(): AsyncIterable<U8Batch> } {
    const d = this.dataset;
    if (!d.heldOut) throw new DataError(d.root, `${d.root} has no held-out split (val/ or test/) to evaluate on`);
    const images = Math.min(d.heldOutCount, limit);
    const crop = this.augment.crop;
    const thread = this.thread;
    // a limited evaluation takes evenly spaced images of the split (a folder's split is in class order: its first images are one class)
    const spaced = images < d.heldOutCount;
    const views = mode === 'ten' ? 10 : 1;
    const make = (start: number, count: number): Promise<U8Batch> => (spaced ? spacedBatch(thread, start, count, images, d.heldOutCount, crop, mode) : thread.evalU8(start, count, crop, mode));
    const how = mode === 'ten' ? `ten ${crop}x${crop} patches each (corners, centre, flipped; softmax averaged)` : `centre ${crop}x${crop} crops`;
    return {
      description: `${images}${d.heldOutName ? ` ${d.heldOutName}` : ''} images of ${d.root}${spaced ? ' (evenly spaced)' : ''}, ${how}, batches of ${batchSize}`,
      maxBatch: batchSize * views,
      views,
      images,
      async *batches() {
        let next = images > 0 ? make(0, Math.min(batchSize, images)) : null;
        try {
          for (let start = 0; start < images; start += batchSize) {
            const b = await next!;
            const after = start + batchSize;
            next = after < images ? make(after, Math.min(batchSize, images - after)) : null;
            yield { images: b.images, labels: b.labels };
          }
        } finally {
          // a consumer that stops early leaves the batch asked for next: closing the source rejects it, unheard
          next?.catch(() => {});
        }
      },
    };
  }

  /** How long the consumer waited for batches, as a share of the time since the first. */
  dataWait(): PrefetchStats {
    return this.prefetcher?.stats() ?? { items: 0, waitedMs: 0, spanMs: 0, waitShare: 0 };
  }

  async close(): Promise<void> {
    this.prefetcher?.clear();
    await this.thread.close();
  }
}
