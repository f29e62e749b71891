/**
 * The paper's training augmentation, seeded: every random choice for image
 * `index` in epoch `epoch` comes from Rng(deriveSeed(seed, TAG, epoch, index)),
 * so a batch is the same whatever thread makes it and in whatever order.
 *
 * - paper preset: images stored with the shorter side resized to 256 and the
 *   centre 256x256 kept (decode.ts); a random 224x224 crop and a horizontal
 *   flip with probability 1/2.
 * - cifar preset: the 32x32 image zero-padded by 4 pixels (black) on every
 *   side, a random 32x32 crop of the 40x40, a flip with probability 1/2.
 * - PCA colour noise (both): a_i ~ N(0, 0.1) drawn once per image per use,
 *   255 * [p1 p2 p3][a1 l1, a2 l2, a3 l3]^T added to every pixel (stats.ts
 *   for the units), padding included, as torchvision's pipelines do.
 *
 * Two outputs, one geometry:
 * - float32 CNHW for the one-process trainer (`Batch`): (pixel + shift_c -
 *   mean_c) / scale, the training set's per-channel mean subtracted; pass the
 *   preset's inputScale as `scale` (1 for paper; the default 64 is cifar's
 *   and tiny's), as the workers' (u8 - mean_c) / inputScale does. No clamping, no
 *   rounding.
 * - uint8 CNHW for the coordinator, which sends uint8 to the workers. Crops
 *   and flips are exact on uint8. PCA noise: the per-image shift (standard
 *   deviation ~5 levels along p_1) is added and rounded to the nearest level
 *   and clamped to 0..255 (`quantise`), an error of at most half a level.
 *   The per-image shift vectors are returned as well (BatchMaker's
 *   `shiftInU8: false` leaves them out of the pixels), so a worker that learns
 *   to add them (and to subtract the true mean, see the worker's images.ts) can
 *   be sent the exact values instead: x = (u8 + shift_c - mean_c) / scale, 12
 *   bytes per image on the wire. Mean: the coordinator sends the training
 *   set's per-channel mean at Configure and the workers subtract it.
 */
import { Rng, deriveSeed } from '../random.js';
import { pcaShift, type ChannelStats } from './stats.js';

const AUGMENT_TAG = 0xa06e;

export interface AugmentConfig {
  /** Side of the stored (decoded) image. */
  readonly storedSize: number;
  /** Side of the network input (the crop). */
  readonly crop: number;
  /** Zero padding added on every side before cropping. */
  readonly pad: number;
  /** Random horizontal flips. */
  readonly flip: boolean;
  /** Standard deviation of the PCA noise coefficients a_i (paper 0.1; 0 turns it off). */
  readonly pcaStd: number;
}

/** Paper: stored at 256 (for a 224 crop; scaled alike for other crops), random crops, flips, PCA noise. */
export function paperAugment(crop = 224): AugmentConfig {
  return { storedSize: Math.round((crop * 256) / 224), crop, pad: 0, flip: true, pcaStd: 0.1 };
}

/** CIFAR: 4-pixel zero padding (size/8 for other sizes), random crops of the stored size, flips, PCA noise. */
export function cifarAugment(size = 32): AugmentConfig {
  return { storedSize: size, crop: size, pad: Math.max(1, Math.round(size / 8)), flip: true, pcaStd: 0.1 };
}

/** No augmentation: the stored image is the input (evaluation uses eval.ts). */
export function noAugment(size: number): AugmentConfig {
  return { storedSize: size, crop: size, pad: 0, flip: false, pcaStd: 0 };
}

/** The preset's augmentation for a network input side: paper style from 64 pixels up, CIFAR style below. */
export function augmentFor(inputSize: number): AugmentConfig {
  return inputSize >= 64 ? paperAugment(inputSize) : cifarAugment(inputSize);
}

export interface ImageAugment {
  /** Left and top of the crop in the padded image, 0 .. storedSize + 2 pad - crop. */
  readonly x: number;
  readonly y: number;
  readonly flip: boolean;
  /** The PCA noise coefficients a_1..a_3 (zeros when off). */
  readonly alpha: readonly [number, number, number];
}

/** The random choices for one image in one epoch. */
export function drawAugment(cfg: AugmentConfig, seed: number, epoch: number, index: number): ImageAugment {
  const rng = new Rng(deriveSeed(seed, AUGMENT_TAG, epoch, index));
  const range = cfg.storedSize + 2 * cfg.pad - cfg.crop;
  if (range < 0) throw new Error(`crop ${cfg.crop} is larger than the padded image (${cfg.storedSize} + 2 x ${cfg.pad})`);
  const x = rng.int(range + 1);
  const y = rng.int(range + 1);
  const flip = cfg.flip && rng.next() < 0.5;
  const alpha: [number, number, number] =
    cfg.pcaStd > 0 ? [cfg.pcaStd * rng.normal(), cfg.pcaStd * rng.normal(), cfg.pcaStd * rng.normal()] : [0, 0, 0];
  return { x, y, flip, alpha };
}

/** Where one image goes in a CNHW batch: image `i` of `n`. */
export interface BatchSlot {
  readonly n: number;
  readonly i: number;
}

/**
 * Writes the crop (x, y in the image padded by `pad`), flipped if asked, of
 * the CHW image `src` (side `size`) into slot i of the uint8 CNHW batch `dst`
 * ([3][n][crop][crop]). `shift` (pixel levels per channel) is added, rounded
 * and clamped; padding reads as 0 before the shift.
 */
export function cropU8(
  src: Uint8Array,
  size: number,
  pad: number,
  view: { x: number; y: number; flip: boolean },
  crop: number,
  dst: Uint8Array,
  slot: BatchSlot,
  shift: readonly number[] = [0, 0, 0],
): void {
  const plane = size * size;
  for (let c = 0; c < 3; c++) {
    const s = shift[c]!;
    const zero = Math.min(255, Math.max(0, Math.round(s)));
    const lut = s === 0 ? null : shiftTable(s);
    const d0 = (c * slot.n + slot.i) * crop * crop;
    for (let oy = 0; oy < crop; oy++) {
      const sy = view.y + oy - pad;
      const drow = d0 + oy * crop;
      if (sy < 0 || sy >= size) {
        dst.fill(zero, drow, drow + crop);
        continue;
      }
      const srow = c * plane + sy * size;
      for (let ox = 0; ox < crop; ox++) {
        const sx = (view.flip ? crop - 1 - ox : ox) + view.x - pad;
        const v = sx < 0 || sx >= size ? -1 : src[srow + sx]!;
        dst[drow + ox] = v < 0 ? zero : lut ? lut[v]! : v;
      }
    }
  }
}

function shiftTable(s: number): Uint8Array {
  const t = new Uint8Array(256);
  for (let v = 0; v < 256; v++) t[v] = Math.min(255, Math.max(0, Math.round(v + s)));
  return t;
}

/**
 * The float32 counterpart of cropU8: writes (pixel + shift_c - mean_c) / scale
 * into slot i of the CNHW batch `dst`; padding reads as pixel 0.
 */
export function cropF32(
  src: Uint8Array,
  size: number,
  pad: number,
  view: { x: number; y: number; flip: boolean },
  crop: number,
  dst: Float32Array,
  slot: BatchSlot,
  shift: readonly number[],
  mean: readonly number[],
  scale: number,
): void {
  const plane = size * size;
  for (let c = 0; c < 3; c++) {
    const off = shift[c]! - mean[c]!;
    const zero = off / scale;
    const d0 = (c * slot.n + slot.i) * crop * crop;
    for (let oy = 0; oy < crop; oy++) {
      const sy = view.y + oy - pad;
      const drow = d0 + oy * crop;
      if (sy < 0 || sy >= size) {
        dst.fill(zero, drow, drow + crop);
        continue;
      }
      const srow = c * plane + sy * size;
      for (let ox = 0; ox < crop; ox++) {
        const sx = (view.flip ? crop - 1 - ox : ox) + view.x - pad;
        dst[drow + ox] = sx < 0 || sx >= size ? zero : (src[srow + sx]! + off) / scale;
      }
    }
  }
}

/** The per-image colour shift (pixel levels) for an augmentation draw; zeros without statistics or noise. */
export function shiftFor(a: ImageAugment, stats: Pick<ChannelStats, 'eigenvalues' | 'eigenvectors'> | null): [number, number, number] {
  if (!stats || (a.alpha[0] === 0 && a.alpha[1] === 0 && a.alpha[2] === 0)) return [0, 0, 0];
  return pcaShift(a.alpha, stats);
}
