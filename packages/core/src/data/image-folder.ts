/**
 * Image folders in the ImageNet layout:
 *
 *   DIR/train/<class>/*.jpg|jpeg|png|webp|tif|gif
 *   DIR/val/<class>/...        (or DIR/test/<class>/... when there is no val/)
 *
 * The class index is the position of the class folder's name in the sorted
 * list of the training split's class folders (so `n01440764` is class 0 of
 * ImageNet, `airplane` class 0 of CIFAR-10). Files are taken in sorted order
 * within a class; extensions are matched case-insensitively (ImageNet's files
 * end in `.JPEG`); hidden files and other extensions are ignored.
 *
 * Symbolic links are followed: a link to a folder is a class folder, as a
 * folder is, and a link to an image an image. A class folder's own subfolders
 * are not read (no recursion, so a link that loops back cannot either); a link
 * where a class folder could be that leads nowhere (dangling, a loop) is refused
 * in one line rather than a class silently left out (which would renumber the
 * classes after it).
 *
 * The held-out split may instead be one flat folder of images with a labels
 * file (ILSVRC-2012's validation set: `val/ILSVRC2012_val_*.JPEG` and Kaggle's
 * `LOC_val_solution.csv`): label-file.ts.
 */
import { opendirSync, readdirSync, readlinkSync, statSync, type Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { DataError, type WarningSink } from './errors.js';
import { LABEL_FILES, readLabelFile } from './label-file.js';
import { firstFew } from '../in-words.js';
import { fsReason } from '../fs-errors.js';

/** The image files read: the formats this build's decoder (sharp, libvips) reads, bar SVG (a drawing, not a photo). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif'] as const;

/** Image files of formats the decoder does not read: said when a class folder has them, not passed over in silence. */
const UNREAD_IMAGE_EXTENSIONS = ['.bmp', '.heic', '.heif', '.avif', '.jxl', '.jp2', '.ppm', '.pgm', '.pbm', '.ico', '.svg', '.dng', '.cr2', '.nef', '.arw'];

/** What of a class folder is not read, in words ("3 .bmp files, 2 subfolders"), or '' when nothing is. */
function unreadInClassFolder(entries: readonly Dirent[]): string {
  const byExt = new Map<string, number>();
  let folders = 0;
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    if (e.isDirectory()) folders++;
    else {
      const ext = extname(e.name).toLowerCase();
      if (UNREAD_IMAGE_EXTENSIONS.includes(ext)) byExt.set(ext, (byExt.get(ext) ?? 0) + 1);
    }
  }
  const parts = [...byExt].map(([ext, n]) => `${n} ${ext} file${n === 1 ? '' : 's'}`);
  if (folders > 0) parts.push(`${folders} subfolder${folders === 1 ? '' : 's'}`);
  return parts.join(', ');
}

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
  /** A flat held-out folder: the labels file its classes came from. */
  readonly labelFile?: string;
}

export interface FolderSplits {
  readonly root: string;
  readonly train: SplitListing;
  /** `val/`, or `test/` when there is no `val/`; null when neither exists. */
  readonly heldOut: SplitListing | null;
  readonly heldOutName: 'val' | 'test' | null;
}

const expected = (dir: string) => `expected ${dir}/<class>/*.jpg|jpeg|png|webp|tif|gif`;

/** A file name the image folders take (IMAGE_EXTENSIONS, any case; not a hidden file). */
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
export async function listImageSplit(
  dir: string,
  opts: { classes?: readonly string[]; onWarning?: WarningSink; noClassFolders?: (loose: number) => string } = {},
): Promise<SplitListing> {
  const abs = resolve(dir);
  let entries;
  try {
    entries = await readdir(abs, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataError(abs, `image folder ${abs} does not exist: ${expected(abs)}`);
    if (code === 'ENOTDIR') throw new DataError(abs, `${abs} is not a folder: ${expected(abs)}`);
    throw unreadable(abs, e);
  }
  const targets = new Map(await Promise.all(entries.filter(followed).map(async (e) => [e.name, await stat(join(abs, e.name)).then(linkTarget, (error: unknown) => ({ error }))] as const)));
  const { classes: found, loose } = sortEntries(abs, entries, (name) => targets.get(name));
  if (found.length === 0) {
    if (opts.classes && loose.length > 0) return listFlatSplit(abs, loose, opts.classes);
    throw new DataError(abs, (opts.noClassFolders ?? ((n) => noClassFolders(abs, n)))(loose.length));
  }
  // images beside the class folders belong to no class: said, not silently dropped
  if (loose.length > 0) opts.onWarning?.({ path: abs, message: `${loose.length === 1 ? '1 image' : `${loose.length} images`} (${firstFew(loose, 3)}) ${loose.length === 1 ? 'lies' : 'lie'} beside the class folders, in no class: not used` });
  const classes = opts.classes ?? found;
  const index = new Map(classes.map((c, i) => [c, i]));
  const items: ImageItem[] = [];
  for (const name of found) {
    const label = index.get(name);
    if (label === undefined) {
      // a name that only looks the same (another Unicode normalisation: macOS writes NFD) is named as such
      const lookalike = classes.find((c) => c.normalize('NFC') === name.normalize('NFC'));
      const why = lookalike !== undefined ? `: its name differs from the training class folder "${lookalike}" only in how its accented letters are encoded (Unicode NFC against NFD); rename one of them to match the other` : ` (${firstFew(classes, 5)})`;
      throw new DataError(join(abs, name), `class folder ${join(abs, name)} is not among the training split's ${classes.length === 1 ? 'one class' : `${classes.length} classes`}${why}`);
    }
    const inFolder = await readdir(join(abs, name), { withFileTypes: true }).catch((e: unknown) => Promise.reject(unreadable(join(abs, name), e, 'class folder')));
    const files = inFolder
      .filter((e) => (e.isFile() || e.isSymbolicLink()) && isImageName(e.name))
      .map((e) => e.name)
      .sort(byCodePoint);
    // images in subfolders or of formats not read: said, not passed over in silence
    const unread = unreadInClassFolder(inFolder);
    if (files.length === 0) opts.onWarning?.({ path: join(abs, name), message: `class folder has no images (${IMAGE_EXTENSIONS.join(' ')})${unread ? `; not read: ${unread} (only the image files directly in a class folder are)` : ''}` });
    else if (unread) opts.onWarning?.({ path: join(abs, name), message: `not read: ${unread} (only the image files directly in a class folder are)` });
    for (const f of files) items.push({ path: join(abs, name, f), label });
  }
  if (items.length === 0) throw new DataError(abs, noImages(abs, found.length));
  return { dir: abs, classes, items };
}

const noClassFolders = (abs: string, loose: number) =>
  `image folder ${abs} has no class folders: ${expected(abs)}${loose > 0 ? ` (its ${loose} images lie loose: a training split needs class folders; only val/ or test/ may be one folder with a labels file)` : ''}`;
const noImages = (abs: string, classFolders: number) => `image folder ${abs} has no images in its ${classFolders} class folders: ${expected(abs)}`;

/** A training split's class names in label order (its class folders, as listImageSplit orders them), nothing else read. */
export function classFolderNames(dir: string): string[] {
  const abs = resolve(dir);
  return sortEntriesSync(abs, readable(abs, () => readdirSync(abs, { withFileTypes: true }))).classes;
}

/** A symbolic link, not hidden: what it leads to is looked at (a folder is a class folder, an image file a loose image). */
const followed = (e: Dirent) => e.isSymbolicLink() && !e.name.startsWith('.');

/** What a followed link leads to: a folder or not, or stat's error (dangling, a loop, no permission). */
type LinkTarget = { readonly dir: boolean } | { readonly error: unknown };
const linkTarget = (s: { isDirectory(): boolean }): LinkTarget => ({ dir: s.isDirectory() });

/**
 * The entries of a split's folder `abs` sorted out: its class folders (folders and links to folders, not hidden;
 * sorted, in label order) and its loose images (files, and links to files, with an image's name: a link that
 * leads nowhere with an image's name is one too, and is skipped with a warning where it is decoded, as an
 * unreadable image is). `target(name)` is what stat (following the link) gave for each followed entry. A link
 * that leads nowhere, and has no image's name, is refused: it may be a class folder, and leaving it out would
 * renumber the classes after it.
 */
function sortEntries(abs: string, entries: readonly Dirent[], target: (name: string) => LinkTarget | undefined): { classes: string[]; loose: string[] } {
  const classes: string[] = [];
  const loose: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    if (e.isDirectory()) classes.push(e.name);
    else if (e.isFile()) {
      if (isImageName(e.name)) loose.push(e.name);
    } else if (e.isSymbolicLink()) {
      const t = target(e.name) ?? { error: new Error('not looked at') };
      if ('dir' in t && t.dir) classes.push(e.name);
      else if (isImageName(e.name)) loose.push(e.name);
      else if ('error' in t) throw brokenLink(join(abs, e.name), t.error);
    }
  }
  return { classes: classes.sort(byCodePoint), loose };
}

/** sortEntries with the links followed here and now (synchronously). */
function sortEntriesSync(abs: string, entries: readonly Dirent[]): { classes: string[]; loose: string[] } {
  return sortEntries(abs, entries, (name) => {
    try {
      return linkTarget(statSync(join(abs, name)));
    } catch (error) {
      return { error };
    }
  });
}

/** A link where a class folder could be that leads nowhere, in one line: "X is a symbolic link to Y, which does not exist: ...". */
function brokenLink(path: string, e: unknown): DataError {
  let to = '';
  try {
    to = ` to ${readlinkSync(path)}`;
  } catch {
    // gone since, or unreadable: said without its target
  }
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const what =
    code === 'ENOENT' || code === 'ENOTDIR'
      ? `${path} is a symbolic link${to}, which does not exist`
      : code === 'ELOOP'
        ? `${path} is a symbolic link${to} that loops (too many symbolic links)`
        : `cannot follow the symbolic link ${path}${to}: ${fsReason(e)}`;
  return new DataError(path, `${what}: mend or remove it (in ${dirname(path)}, a folder or a link to one is a class folder)`, { cause: e });
}

/** `read()` of folder `abs`, its failure a DataError in words ("cannot read image folder X: permission denied"). */
function readable<T>(abs: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    throw unreadable(abs, e);
  }
}

/** A folder that cannot be listed, in words: "cannot read class folder X: permission denied". */
const unreadable = (abs: string, e: unknown, what = 'image folder') => new DataError(abs, `cannot read ${what} ${abs}: ${fsReason(e)}`, { cause: e });

/**
 * A quick look at a training split before anything is started (`alexnet launch`): it has class folders and
 * an image in one of them, refused in listImageSplit's words otherwise. Reads entries until the first image,
 * not the whole split: the listing and the decoding stay the coordinator's.
 */
export function checkTrainSplitQuickly(dir: string): void {
  const abs = resolve(dir);
  const { classes, loose } = sortEntriesSync(abs, readable(abs, () => readdirSync(abs, { withFileTypes: true })));
  if (classes.length === 0) throw new DataError(abs, noClassFolders(abs, loose.length));
  for (const c of classes) {
    const d = readable(join(abs, c), () => opendirSync(join(abs, c)));
    try {
      for (let e = d.readSync(); e !== null; e = d.readSync()) if ((e.isFile() || e.isSymbolicLink()) && isImageName(e.name)) return;
    } finally {
      d.closeSync();
    }
  }
  throw new DataError(abs, noImages(abs, classes.length));
}

/**
 * A held-out split of loose images (`names`, in `abs`), their classes from the first labels file found in
 * `abs`, then in the data folder above it; every image must have one.
 */
/** The ImageNet devkit's validation labels: one number a line, in the devkit's own class order (not usable as a labels file). */
const DEVKIT_GROUND_TRUTH = 'ILSVRC2012_validation_ground_truth.txt';

async function listFlatSplit(abs: string, names: readonly string[], classes: readonly string[]): Promise<SplitListing> {
  const places = [abs, dirname(abs)].flatMap((d) => LABEL_FILES.map((f) => join(d, f)));
  let labelPath: string | undefined;
  for (const p of places) {
    if (await isFile(p)) {
      labelPath = p;
      break;
    }
  }
  if (!labelPath) {
    // the ImageNet devkit's ground truth beside them: numbers in the devkit's own class order, not the folders'
    let devkit: string | undefined;
    for (const p of [abs, dirname(abs)].map((d) => join(d, DEVKIT_GROUND_TRUTH))) if (!devkit && (await isFile(p))) devkit = p;
    throw new DataError(
      abs,
      `${abs} holds ${names.length} images and no class folders: ${devkit ? `${devkit} (the ImageNet devkit's ground truth) cannot give their classes, its numbers follow the devkit's own class order, not the sorted class folders; ` : ''}give their classes in ${join(abs, 'labels.csv')} (a line "FILE CLASS" each, CLASS a training class folder's name) ` +
        `or put Kaggle's LOC_val_solution.csv in ${abs} or ${dirname(abs)}, or sort the images into ${abs}/<class>/`,
    );
  }
  const labels = await readLabelFile(labelPath, classes);
  const items: ImageItem[] = [];
  const unlabelled: string[] = [];
  for (const name of [...names].sort(byCodePoint)) {
    const label = labels.labelOf(name);
    if (label === undefined) unlabelled.push(name);
    else items.push({ path: join(abs, name), label });
  }
  if (unlabelled.length > 0) {
    throw new DataError(labelPath, `${labelPath} gives no class for ${unlabelled.length} of the ${names.length} images in ${abs} (${firstFew(unlabelled)}): add a line "FILE CLASS" for each`);
  }
  return { dir: abs, classes, items, labelFile: labelPath };
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** True when `dir` looks like an image-folder data set (has a `train/` folder). */
export async function isImageFolderRoot(dir: string): Promise<boolean> {
  return isDir(join(dir, 'train'));
}

/** The held-out split of an image-folder data set: `DIR/val`, else `DIR/test`; null when it has neither folder. */
export async function heldOutSplitOf(dir: string): Promise<'val' | 'test' | null> {
  return (await isDir(join(dir, 'val'))) ? 'val' : (await isDir(join(dir, 'test'))) ? 'test' : null;
}

/**
 * The images to score a trained model on, in a folder without `train/` (evaluate, features, inspect): its `val/`,
 * else its `test/`, else the folder itself; each must hold class folders (a split of one folder with a labels file
 * needs `train/` beside it for its class names). The classes are the split's own class folders: the model's
 * class names say which of its outputs each one is. `name` is the split's folder name, null for the folder itself.
 */
export async function listHeldOutWithoutTrain(root: string, opts: { onWarning?: WarningSink } = {}): Promise<{ listing: SplitListing; name: 'val' | 'test' | null }> {
  const abs = resolve(root);
  // a data set's training split given for its held-out one: its images were trained on
  const parent = dirname(abs);
  const parentSplit = basename(abs) === 'train' ? await heldOutSplitOf(parent) : null;
  if (parentSplit !== null) throw new DataError(abs, `${abs} is the training split of ${parent}: give ${parent} (its ${parentSplit}/ split is the held-out one), or a folder of held-out images`);
  const { dir, name } = await heldOutFolderWithoutTrain(abs);
  // no classes given: loose images there are refused (nothing names their classes), with what to do instead
  const noClassFolders = (loose: number) =>
    loose > 0
      ? `${dir} holds ${loose === 1 ? '1 image' : `${loose} images`} and no class folders, and ${abs} has no train/ folder to name their classes: sort them into ${dir}/<class>/ (the model's class names), or give the data set's folder with its train/`
      : name
        ? `${dir} has no class folders: expected ${dir}/<class>/*.jpg|jpeg|png|webp|tif|gif (the model's class names) to evaluate on`
        : `${abs} has no train/, val/ or test/ folder and no class folders: expected ${abs}/<class>/*.jpg|jpeg|png|webp|tif|gif (or ${abs}/val/<class>/...) to evaluate on, or the CIFAR-10 binary folder`;
  return { listing: await listImageSplit(dir, { ...opts, noClassFolders }), name };
}

/** Where listHeldOutWithoutTrain looks in a folder without train/: its val/, else its test/, else itself. */
export async function heldOutFolderWithoutTrain(root: string): Promise<{ dir: string; name: 'val' | 'test' | null }> {
  const abs = resolve(root);
  const name = await heldOutSplitOf(abs);
  return { dir: name ? join(abs, name) : abs, name };
}

/** Lists `DIR/train` and the held-out split (`DIR/val`, else `DIR/test`). */
export async function listImageFolder(root: string, opts: { onWarning?: WarningSink } = {}): Promise<FolderSplits> {
  const abs = resolve(root);
  if (!(await isDir(abs))) throw new DataError(abs, `data folder ${abs} does not exist: expected ${abs}/train/<class>/*.jpg|jpeg|png|webp|tif|gif and ${abs}/val/ or ${abs}/test/`);
  if (!(await isDir(join(abs, 'train')))) {
    throw new DataError(join(abs, 'train'), `data folder ${abs} has no train/ folder: expected ${abs}/train/<class>/*.jpg|jpeg|png|webp|tif|gif and ${abs}/val/ or ${abs}/test/`);
  }
  const train = await listImageSplit(join(abs, 'train'), opts);
  // no held-out split is not a problem of the folder: whoever needs one says so (the coordinator's "no
  // evaluation", evaluate's refusal), once
  const heldOutName = await heldOutSplitOf(abs);
  const heldOut = heldOutName ? await listImageSplit(join(abs, heldOutName), { classes: train.classes, onWarning: opts.onWarning }) : null;
  return { root: abs, train, heldOut, heldOutName };
}
