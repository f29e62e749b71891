/**
 * Training batches from a decoded set: epochs, a shuffled order per epoch,
 * augmentation per image.
 *
 * Batch `step` of `size` images holds positions step*size .. step*size+size-1
 * of the endless sequence epoch 0's order, epoch 1's order, ... (a batch may
 * straddle two epochs). Epoch e's order is a Fisher-Yates shuffle seeded by
 * (seed, e); image `index` in epoch e is augmented with drawAugment(seed, e,
 * index). So a batch depends only on (seed, step, size): a run can be
 * repeated, resumed, or its batches made in another thread.
 */
import { Rng, deriveSeed } from '../random.js';
import type { DecodedSet } from './decoded-set.js';
import { cropF32, cropU8, drawAugment, shiftFor, type AugmentConfig } from './augment.js';
import type { ChannelStats } from './stats.js';

const ORDER_TAG = 0x0ade;

/** Epoch `epoch`'s order of the images 0..n-1. */
export function epochOrder(n: number, seed: number, epoch: number, shuffle = true): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (!shuffle) return order;
  const rng = new Rng(deriveSeed(seed, ORDER_TAG, epoch));
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

export interface BatchMakerOptions {
  readonly seed: number;
  readonly augment: AugmentConfig;
  /** Training-set statistics: the PCA noise's eigenvectors and values, and the mean of the float output. */
  readonly stats: ChannelStats | null;
  /** Float output: (pixel + shift - mean) / scale. Default 64, the cifar and tiny presets' input scale: pass the preset's inputScale (the paper preset's is 1). */
  readonly scale?: number;
  /** Float output's mean; default stats.mean, or 128 per channel without statistics. */
  readonly mean?: readonly number[];
  /** Default true; false keeps the set's order in every epoch. */
  readonly shuffle?: boolean;
  /**
   * uint8 output: add the PCA shift to the pixels, rounded and clamped
   * (default true). False leaves the pixels as they are and only returns the
   * shifts, for a consumer that adds them exactly (augment.ts).
   */
  readonly shiftInU8?: boolean;
}

export interface BatchInfo {
  /** Epoch of each image. */
  readonly epochs: Uint32Array;
  /** Index in the set of each image. */
  readonly indices: Uint32Array;
}

/** uint8 CNHW [3][N][crop][crop], what the coordinator sends. */
export interface AugmentedU8Batch extends BatchInfo {
  readonly images: Uint8Array;
  readonly labels: Uint32Array;
  /** Per-image PCA colour shift in pixel levels, [N][3] (already added, rounded, to `images` unless shiftInU8 is false). */
  readonly shifts: Float32Array;
}

/** float32 CNHW [3][N][crop][crop] with float labels: the one-process trainer's `Batch`. */
export interface AugmentedBatch extends BatchInfo {
  readonly images: Float32Array;
  readonly labels: Float32Array;
}

export class BatchMaker {
  private readonly orders = new Map<number, Uint32Array>();
  private readonly mean: readonly number[];
  private readonly scale: number;

  constructor(readonly set: DecodedSet, readonly o: BatchMakerOptions) {
    if (set.size !== o.augment.storedSize) throw new Error(`BatchMaker: images of side ${set.size}, augmentation expects ${o.augment.storedSize}`);
    if (set.count === 0) throw new Error('BatchMaker: empty set');
    this.mean = o.mean ?? o.stats?.mean ?? [128, 128, 128];
    this.scale = o.scale ?? 64;
  }

  get imagesPerEpoch(): number {
    return this.set.count;
  }

  order(epoch: number): Uint32Array {
    let ord = this.orders.get(epoch);
    if (!ord) {
      ord = epochOrder(this.set.count, this.o.seed, epoch, this.o.shuffle ?? true);
      this.orders.set(epoch, ord);
      if (this.orders.size > 3) this.orders.delete(this.orders.keys().next().value!);
    }
    return ord;
  }

  /** Which images batch `step` of `size` holds. */
  positions(step: number, size: number): BatchInfo {
    const N = this.set.count;
    const epochs = new Uint32Array(size);
    const indices = new Uint32Array(size);
    for (let k = 0; k < size; k++) {
      const p = step * size + k;
      const e = Math.floor(p / N);
      epochs[k] = e;
      indices[k] = this.order(e)[p - e * N]!;
    }
    return { epochs, indices };
  }

  u8(step: number, size: number): AugmentedU8Batch {
    const { epochs, indices } = this.positions(step, size);
    const a = this.o.augment;
    const images = new Uint8Array(3 * size * a.crop * a.crop);
    const labels = new Uint32Array(size);
    const shifts = new Float32Array(3 * size);
    for (let i = 0; i < size; i++) {
      const idx = indices[i]!;
      const aug = drawAugment(a, this.o.seed, epochs[i]!, idx);
      const shift = shiftFor(aug, this.o.stats);
      shifts.set(shift, 3 * i);
      cropU8(this.set.image(idx), this.set.size, a.pad, aug, a.crop, images, { n: size, i }, this.o.shiftInU8 === false ? undefined : shift);
      labels[i] = this.set.labels[idx]!;
    }
    return { images, labels, shifts, epochs, indices };
  }

  f32(step: number, size: number): AugmentedBatch {
    const { epochs, indices } = this.positions(step, size);
    const a = this.o.augment;
    const images = new Float32Array(3 * size * a.crop * a.crop);
    const labels = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const idx = indices[i]!;
      const aug = drawAugment(a, this.o.seed, epochs[i]!, idx);
      cropF32(this.set.image(idx), this.set.size, a.pad, aug, a.crop, images, { n: size, i }, shiftFor(aug, this.o.stats), this.mean, this.scale);
      labels[i] = this.set.labels[idx]!;
    }
    return { images, labels, epochs, indices };
  }
}
