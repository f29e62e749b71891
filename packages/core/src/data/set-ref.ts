/**
 * A decoded split named by where its bytes are (a cache file, CIFAR-10 batch
 * files), so that another thread can open the same split: worker threads get
 * the reference, not the pixels.
 */
import { CIFAR10_CLASSES, loadCifarFiles } from './cifar-binary.js';
import { openCacheFile } from './cache-file.js';
import { ResizedSet, type DecodedSet } from './decoded-set.js';

export type SetRef =
  | { readonly kind: 'cache'; readonly path: string }
  | { readonly kind: 'cifar-bin'; readonly files: readonly string[]; readonly classes: readonly string[] };

/**
 * Opens a split; with `size`, images of another side are resized (area
 * averaging) as they are read.
 */
export function openSet(ref: SetRef, size?: number, memoryLimit?: number): DecodedSet {
  const set = ref.kind === 'cache' ? openCacheFile(ref.path, memoryLimit) : loadCifarFiles(ref.files, ref.classes.length > 0 ? ref.classes : CIFAR10_CLASSES);
  return size === undefined || size === set.size ? set : new ResizedSet(set, size);
}
