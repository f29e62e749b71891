/**
 * The data of a run, from `--data`: `synthetic` (SyntheticSource, with a
 * held-out set from the same generator) or a real data set (`cifar10` or a
 * folder: FolderSource, whose held-out split is the data set's val/ or test/).
 * FolderSource is loaded only for real data, so that a synthetic run never
 * loads the image decoders.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ModelSpec } from '@alexnet-mp/core';
import { SyntheticSource, sourceNames, type BatchSource } from './batch-source.js';
import { heldOutSet, type EvalSet } from './evaluation.js';
import { UserError } from './cli/errors.js';
import type { TrainedModel } from './trained-model.js';

/**
 * Synthetic data has no epochs of its own: `--epochs` counts this many images an epoch
 * (the learning-rate schedule, epoch-end evaluations and checkpoints fall on these).
 */
export const SYNTHETIC_EPOCH_IMAGES = 1024;

/** `--eval-views`: the centre crop of each held-out image, or its ten patches (softmax averaged). */
export type EvalViews = 'centre' | 'ten';

export interface TrainingData {
  readonly source: BatchSource;
  /** Real data (a held-out split of its own) or synthetic. */
  readonly real: boolean;
  /** Training images in one epoch. */
  readonly imagesPerEpoch: number;
  /** Class names in class order (real data; synthetic data has none). */
  readonly classes?: readonly string[];
  /** An image folder's held-out files in the split's order (heldOut's images are these, in order). */
  readonly heldOutFiles?: readonly string[];
  /**
   * The evaluation set: `batches` batches of `batchSize` (real data: default the whole held-out split); `views`
   * 'ten' (real data only) sends each image as its ten patches.
   */
  heldOut(batchSize: number, batches?: number, views?: EvalViews): EvalSet;
  /**
   * At most `images` held-out images in batches of `batchSize`, and where each is in the whole split: a real
   * data set's evenly spaced over it (a folder's split is in class order), synthetic data's the first ones.
   */
  heldOutSubset(batchSize: number, images: number): { set: EvalSet; count: number; index: (i: number) => number };
  close(): Promise<void>;
}

export interface OpenDataOptions {
  readonly data: string;
  readonly spec: ModelSpec;
  readonly seed: number;
  readonly cacheDir?: string;
  readonly info?: (line: string) => void;
  /** Only the held-out split is used (folder-source.ts). */
  readonly heldOutOnly?: boolean;
}

/** Ten views (`--eval-views ten`, evaluate's `--views ten`) take patches of a larger image: generated (synthetic) data has none. */
export function checkViewsOfData(views: EvalViews | undefined, real: boolean, option = '--eval-views'): void {
  if (views === 'ten' && !real) throw new UserError(`${option} ten needs real data (--data cifar10|DIR): synthetic images have no larger image to take patches from`);
}

/** Whether a --data name is generated images (synthetic) rather than a data set. */
export const isGeneratedData = (data: string): boolean => (sourceNames as readonly string[]).includes(data);

/**
 * The held-out split of data set `data` for a trained model (its preset and seed), for evaluate, features and
 * inspect. A data set whose classes are all among the model's own (a few of them, or in another order) has its
 * labels made the model's outputs of the same names, and says so; `info` says when its classes are not the
 * model's (scored by index: TrainedModel.classMismatch).
 */
export async function openHeldOutFor(model: TrainedModel, data: string, cacheDir: string | undefined, info?: (line: string) => void): Promise<TrainingData> {
  // a folder without train/ is matched to the model's classes by its folders' names: checked before it is decoded
  const ownClasses = await classFoldersWithoutTrain(data);
  if (ownClasses) model.checkSplitClasses(data, ownClasses);
  const opened = await openTrainingData({ data, spec: model.spec, seed: model.seed, cacheDir: cacheDir ?? model.dataCacheDir(), info, heldOutOnly: true });
  const outputs = isGeneratedData(data) ? null : model.classOutputsByName(opened.classes);
  if (outputs !== null) {
    const classes = opened.classes!;
    const moved = classes.map((c, i) => [c, i, outputs[i]!] as const).filter(([, i, k]) => i !== k);
    info?.(`${data}'s ${classes.length} classes are among the model's ${model.spec.classes}: each image is taken as the model's class of its name (${moved.slice(0, 3).map(([c, i, k]) => `${c}: class ${i} in the data, ${k} in the model`).join('; ')}${moved.length > 3 ? '; ...' : ''})`);
    return { ...relabelled(opened, outputs), classes: await model.classNames() };
  }
  const mismatch = model.classMismatch(opened.classes, isGeneratedData(data));
  if (mismatch) info?.(mismatch);
  return opened;
}

/** The class folders of an image folder without train/ (core listHeldOutWithoutTrain's), by listing; null for any other data (or none there: opening it says why). */
async function classFoldersWithoutTrain(data: string): Promise<string[] | null> {
  if (isGeneratedData(data)) return null;
  const { CIFAR10_DOWNLOAD, classFolderNames, findCifarBinaryDir, heldOutFolderWithoutTrain, isImageFolderRoot } = await import('@alexnet-mp/core/data');
  if (data === CIFAR10_DOWNLOAD) return null;
  try {
    if (!fs.statSync(data).isDirectory() || findCifarBinaryDir(path.resolve(data)) || (await isImageFolderRoot(data))) return null;
    const classes = classFolderNames((await heldOutFolderWithoutTrain(data)).dir);
    return classes.length > 0 ? classes : null;
  } catch {
    return null;
  }
}

/** The held-out split with each label l made outputs[l] (an object literal's set: its other properties kept; `classes` is the caller's to set). */
function relabelled(d: TrainingData, outputs: readonly number[]): TrainingData {
  const relabel = <S extends EvalSet>(set: S): S => ({
    ...set,
    async *batches() {
      for await (const b of set.batches()) yield { images: b.images, labels: Uint32Array.from(b.labels, (l) => outputs[l]!) };
    },
  });
  return {
    ...d,
    heldOut: (batchSize, batches, views) => relabel(d.heldOut(batchSize, batches, views)),
    heldOutSubset: (batchSize, images) => {
      const s = d.heldOutSubset(batchSize, images);
      return { ...s, set: relabel(s.set) };
    },
  };
}

export async function openTrainingData(o: OpenDataOptions): Promise<TrainingData> {
  if (o.data === 'synthetic') {
    const source = new SyntheticSource(o.spec, o.seed);
    return {
      source,
      real: false,
      imagesPerEpoch: SYNTHETIC_EPOCH_IMAGES,
      heldOut: (batchSize, batches = 4, views = 'centre') => {
        checkViewsOfData(views, false);
        return heldOutSet('synthetic', o.spec, o.seed, batchSize, batches);
      },
      heldOutSubset: (batchSize, images) => {
        // the synthetic held-out split: 4 batches of the batch size
        const count = Math.min(images, 4 * batchSize);
        return { set: heldOutSet('synthetic', o.spec, o.seed, batchSize, Math.ceil(count / batchSize)), count, index: (i) => i };
      },
      close: () => source.close(),
    };
  }
  const { FolderSource } = await import('./folder-source.js');
  const source = await FolderSource.open({ data: o.data, spec: o.spec, seed: o.seed, cacheDir: o.cacheDir, info: o.info, heldOutOnly: o.heldOutOnly });
  return {
    source,
    real: true,
    imagesPerEpoch: source.imagesPerEpoch,
    classes: source.dataset.classes,
    heldOutFiles: source.dataset.heldOutFiles,
    heldOut: (batchSize, batches, views = 'centre') => source.heldOut(batchSize, batches === undefined ? Infinity : batches * batchSize, views),
    heldOutSubset: (batchSize, images) => {
      const total = source.dataset.heldOutCount;
      const set = source.heldOut(batchSize, images, 'centre');
      const count = set.images;
      // as the folder source spaces them (folder-source.ts spacedBatch)
      return { set, count, index: (i) => (count < total ? Math.floor((i * total) / count) : i) };
    },
    close: () => source.close(),
  };
}

/**
 * Where a run's data cache is read (a resumed run, evaluate, export): `flag` (--cache-dir) when given; else the
 * default's when ALEXNET_CACHE_DIR is set (the default reads it); else the folder the run was given, `saved`,
 * while it is still there (a run trained with --cache-dir elsewhere is not decoded again under the default).
 */
export function runCacheDir(flag: string | undefined, saved: unknown, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (flag !== undefined) return flag;
  if (env.ALEXNET_CACHE_DIR) return undefined;
  return typeof saved === 'string' && fs.existsSync(saved) ? saved : undefined;
}

/** The cache folder a run was given (--cache-dir, else ALEXNET_CACHE_DIR), absolute, for its checkpoints; null for the default. */
export function givenCacheDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | null {
  const given = flag ?? (env.ALEXNET_CACHE_DIR ? env.ALEXNET_CACHE_DIR : undefined);
  return given === undefined ? null : path.resolve(given);
}
