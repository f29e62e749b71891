/**
 * Image folders in the ImageNet layout:
 *
 *   DIR/train/<class>/*.jpg|jpeg|png
 *   DIR/val/<class>/...        (or DIR/test/<class>/... when there is no val/)
 *
 * The class index is the position of the class folder's name in the sorted
 * list of the training split's class folders (so `n01440764` is class 0 of
 * ImageNet, `airplane` class 0 of CIFAR-10). Files are taken in sorted order
 * within a class; extensions are matched case-insensitively (ImageNet's files
 * end in `.JPEG`); hidden files and other extensions are ignored.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DataError, type WarningSink } from './errors.js';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png'] as const;

export interface ImageItem {
  readonly path: string;
  readonly label: number;
}

export interface SplitListing {
  /** The split's folder, absolute. */
  readonly dir: string;
  /** Class names, index = label. */
  readonly classes: readonly string[];
  readonly items: readonly ImageItem[];
}

export interface FolderSplits {
  readonly root: string;
  readonly train: SplitListing;
  /** `val/`, or `test/` when there is no `val/`; null when neither exists. */
  readonly heldOut: SplitListing | null;
  readonly heldOutName: 'val' | 'test' | null;
}

const expected = (dir: string) => `expected ${dir}/<class>/*.jpg|jpeg|png`;

/** A file name the image folders take (.jpg, .jpeg, .png, any case; not a hidden file). */
export function isImageName(name: string): boolean {
  if (name.startsWith('.')) return false;
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => lower.endsWith(e));
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Lists one split (`DIR/train`, say). With `classes` given (the training
 * split's), labels follow that list and an unknown class folder is an error.
 */
export async function listImageSplit(dir: string, opts: { classes?: readonly string[]; onWarning?: WarningSink } = {}): Promise<SplitListing> {
  const abs = resolve(dir);
  let entries;
  try {
    entries = await readdir(abs, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataError(abs, `image folder ${abs} does not exist: ${expected(abs)}`);
    if (code === 'ENOTDIR') throw new DataError(abs, `${abs} is not a folder: ${expected(abs)}`);
    throw new DataError(abs, `cannot read image folder ${abs}: ${(e as Error).message}`, { cause: e });
  }
  const found = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort(byCodePoint);
  if (found.length === 0) throw new DataError(abs, `image folder ${abs} has no class folders: ${expected(abs)}`);
  const classes = opts.classes ?? found;
  const index = new Map(classes.map((c, i) => [c, i]));
  const items: ImageItem[] = [];
  for (const name of found) {
    const label = index.get(name);
    if (label === undefined) {
      throw new DataError(join(abs, name), `class folder ${join(abs, name)} is not among the training split's ${classes.length} classes`);
    }
    const files = (await readdir(join(abs, name), { withFileTypes: true }))
      .filter((e) => (e.isFile() || e.isSymbolicLink()) && isImageName(e.name))
      .map((e) => e.name)
      .sort(byCodePoint);
    if (files.length === 0) opts.onWarning?.({ path: join(abs, name), message: 'class folder has no .jpg/.jpeg/.png images' });
    for (const f of files) items.push({ path: join(abs, name, f), label });
  }
  if (items.length === 0) throw new DataError(abs, `image folder ${abs} has no images in its ${found.length} class folders: ${expected(abs)}`);
  return { dir: abs, classes, items };
}

/** True when `dir` looks like an image-folder data set (has a `train/` folder). */
export async function isImageFolderRoot(dir: string): Promise<boolean> {
  return isDir(join(dir, 'train'));
}

/** Lists `DIR/train` and the held-out split (`DIR/val`, else `DIR/test`). */
export async function listImageFolder(root: string, opts: { onWarning?: WarningSink } = {}): Promise<FolderSplits> {
  const abs = resolve(root);
  if (!(await isDir(abs))) throw new DataError(abs, `data folder ${abs} does not exist: expected ${abs}/train/<class>/*.jpg|jpeg|png and ${abs}/val/ or ${abs}/test/`);
  if (!(await isDir(join(abs, 'train')))) {
    throw new DataError(join(abs, 'train'), `data folder ${abs} has no train/ folder: expected ${abs}/train/<class>/*.jpg|jpeg|png and ${abs}/val/ or ${abs}/test/`);
  }
  const train = await listImageSplit(join(abs, 'train'), opts);
  const heldOutName = (await isDir(join(abs, 'val'))) ? 'val' : (await isDir(join(abs, 'test'))) ? 'test' : null;
  if (heldOutName === null) opts.onWarning?.({ path: abs, message: 'no val/ or test/ folder: no held-out split' });
  const heldOut = heldOutName ? await listImageSplit(join(abs, heldOutName), { classes: train.classes, onWarning: opts.onWarning }) : null;
  return { root: abs, train, heldOut, heldOutName };
}
