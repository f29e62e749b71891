/**
 * `--data DIR|cifar10`: one entry point that finds what kind of data set a
 * name is, gets it ready (downloads CIFAR-10, decodes an image folder into the
 * decoded cache, computes the training set's colour statistics, all once) and
 * describes its splits by reference (set-ref.ts).
 *
 *   cifar10                     the official binary archive, downloaded into the cache folder
 *   DIR with data_batch_1.bin   CIFAR-10's binary batches (also DIR/cifar-10-batches-bin/)
 *   DIR with train/             an image folder: train/<class>/*.jpg|jpeg|png|webp|tif|gif, val/ or test/
 */
import { createHash } from 'node:crypto';
import { existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { DataError, makeCacheDir, type DataWarning, type WarningSink } from './errors.js';
import { freeBytes } from '../fs-errors.js';
import { bytesInWords, firstFew } from '../in-words.js';
import { STALE_MS, leftoverProgress, liveWriter, msFromEnv, removeAbandoned, strayPartials, thisHost } from './partial-decode.js';
import { CIFAR_PIXELS, CIFAR_SIZE, cifarBinaryFiles, cifarClassNames, findCifarBinaryDir, loadCifarFiles } from './cifar-binary.js';
import { buildDecodedCache, cachePathFor, readStatsFile, statsPathFor, supersededCaches, writeStatsFile } from './decoded-cache.js';
import { cacheFileBytes, openCacheFile, readCacheHeader } from './cache-file.js';
import { defaultCacheDir, ensureCifar10, type Cifar10Options } from './download.js';
import { checkTrainSplitQuickly, isImageFolderRoot, listHeldOutWithoutTrain, listImageFolder, type FolderSplits, type SplitListing } from './image-folder.js';
import { ChannelStatsAccumulator, type ChannelStats } from './stats.js';
import type { SetRef } from './set-ref.js';
import type { DecodedSet } from './decoded-set.js';

export interface Dataset {
  readonly kind: 'image-folder' | 'cifar-binary';
  /** The folder read (for cifar10: the extracted batches folder in the cache). */
  readonly root: string;
  readonly description: string;
  readonly classes: readonly string[];
  /** Side of the stored images; openSet(ref, size) resizes when it differs. */
  readonly storedSize: number;
  readonly train: SetRef;
  readonly trainCount: number;
  readonly heldOut: SetRef | null;
  readonly heldOutName: 'val' | 'test' | null;
  readonly heldOutCount: number;
  /** An image folder's held-out files, in the split's order (those it could not read left out); none for CIFAR-10's binaries. */
  readonly heldOutFiles?: readonly string[];
  /** The training split's colour statistics (mean, covariance, PCA). */
  readonly stats: ChannelStats;
  /** Files skipped (unreadable, truncated) and other problems survived. */
  readonly warnings: readonly DataWarning[];
}

export interface OpenDatasetOptions {
  /** Side to decode image folders to (paper preset: 256; cifar: 32). CIFAR binaries stay 32. */
  readonly size: number;
  /** Default: defaultCacheDir(). */
  readonly cacheDir?: string;
  /** For `cifar10`: URL, checksum, tries (tests point it at 127.0.0.1). */
  readonly download?: Omit<Cifar10Options, 'cacheDir' | 'log'>;
  readonly onWarning?: WarningSink;
  readonly log?: (line: string) => void;
  /** The model's outputs, and what has them ("preset cifar"): a data set with more classes is refused before anything is decoded. */
  readonly maxClasses?: { readonly count: number; readonly of: string };
  /**
   * Only the held-out split is wanted (showing a trained model's predictions): an image folder's training
   * split is listed, not decoded, and the held-out split stands in for it (its colour statistics too).
   */
  readonly heldOutOnly?: boolean;
}

/** The --data that names the official CIFAR-10 download (cached) rather than a folder. */
export const CIFAR10_DOWNLOAD = 'cifar10';

/** The absolute path of a --data folder (not "cifar10"); a DataError, one line, when nothing is there. */
export function checkDataPath(data: string): string {
  const abs = resolve(data);
  if (!existsSync(abs)) {
    throw new DataError(abs, `data folder ${abs} does not exist: expected an image folder (train/<class>/*.jpg|jpeg|png|webp|tif|gif, and val/ or test/), the CIFAR-10 binary folder (data_batch_1.bin ... test_batch.bin), or "cifar10"`);
  }
  return abs;
}

/**
 * What openDataset would refuse at once, refused in its words without listing or decoding anything (a folder
 * that is not one, neither CIFAR-10's binary folder nor an image folder, a training split without class
 * folders or images): `alexnet launch` asks before it starts the workers. "cifar10" passes (its download is
 * checked where it happens).
 */
export function checkDataLayout(data: string): void {
  if (data === CIFAR10_DOWNLOAD) return;
  const abs = checkDataPath(data);
  if (!statSync(abs).isDirectory()) throw new DataError(abs, notAFolder(abs));
  if (findCifarBinaryDir(abs)) return;
  const train = join(abs, 'train');
  if (!(existsSync(train) && statSync(train).isDirectory())) throw new DataError(abs, neitherKind(abs));
  checkTrainSplitQuickly(train);
}

const notAFolder = (abs: string) => `${abs} is not a folder: expected an image folder or the CIFAR-10 binary folder`;
const neitherKind = (abs: string) => `${abs} is neither an image folder (no train/ folder: expected train/<class>/*.jpg|jpeg|png|webp|tif|gif, and val/ or test/) nor the CIFAR-10 binary folder (no data_batch_1.bin)`;

export async function openDataset(data: string, o: OpenDatasetOptions): Promise<Dataset> {
  const cacheDir = resolve(o.cacheDir ?? defaultCacheDir());
  const warnings: DataWarning[] = [];
  const onWarning: WarningSink = (w) => {
    warnings.push(w);
    o.onWarning?.(w);
  };
  if (data === CIFAR10_DOWNLOAD) {
    const dir = await ensureCifar10({ ...o.download, cacheDir, log: o.log });
    return openCifarBinary(dir, cacheDir, warnings, CIFAR10_DOWNLOAD, o.maxClasses);
  }
  const abs = checkDataPath(data);
  if (!statSync(abs).isDirectory()) throw new DataError(abs, notAFolder(abs));
  const bin = findCifarBinaryDir(abs);
  if (bin) return openCifarBinary(bin, cacheDir, warnings, bin, o.maxClasses);
  if (await isImageFolderRoot(abs)) return openImageFolder(abs, cacheDir, o, warnings, onWarning);
  // a trained model's images to score need no training split: val/ or test/, or the class folders themselves
  if (o.heldOutOnly) return openHeldOutWithoutTrain(abs, cacheDir, o, warnings, onWarning);
  throw new DataError(abs, neitherKind(abs));
}

/** openImageFolder's held-out-only case for a folder without train/ (image-folder.ts listHeldOutWithoutTrain). */
async function openHeldOutWithoutTrain(root: string, cacheDir: string, o: OpenDatasetOptions, warnings: DataWarning[], onWarning: WarningSink): Promise<Dataset> {
  const { listing, name } = await listHeldOutWithoutTrain(root, { onWarning });
  checkClassCount(listing.dir, listing.classes.length, o.maxClasses);
  const held = await ensureCache(listing, await cachePathFor(cacheDir, listing, o.size), o.size, cacheDir, true, o, onWarning);
  const classes = `${listing.classes.length} class${listing.classes.length === 1 ? '' : 'es'}`;
  return {
    kind: 'image-folder',
    root,
    description: `image folder ${root}: ${held.count} ${name ? `${name} images (no train/ folder)` : `images in ${listing.classes.length} class folder${listing.classes.length === 1 ? '' : 's'}`}, ${name ? `${classes}, ` : ''}decoded at ${o.size}x${o.size}`,
    classes: listing.classes,
    storedSize: o.size,
    train: { kind: 'cache', path: held.path },
    trainCount: held.count,
    heldOut: { kind: 'cache', path: held.path },
    heldOutName: name,
    heldOutCount: held.count,
    heldOutFiles: held.files,
    stats: held.stats!,
    warnings,
  };
}

/** A data set with more classes than the model has outputs: refused (before anything is decoded). */
function checkClassCount(root: string, classes: number, max: OpenDatasetOptions['maxClasses']): void {
  if (max !== undefined && classes > max.count) throw new DataError(root, `${root} has ${classes} classes but ${max.of} has ${max.count} outputs`);
}

async function openCifarBinary(dir: string, cacheDir: string, warnings: DataWarning[], name: string, maxClasses?: OpenDatasetOptions['maxClasses']): Promise<Dataset> {
  const files = cifarBinaryFiles(dir);
  const classes = cifarClassNames(dir);
  checkClassCount(dir, classes.length, maxClasses);
  const bytes = (fs: string[]) => fs.reduce((s, f) => s + statSync(f).size, 0);
  const trainCount = Math.floor(bytes(files.train) / (CIFAR_PIXELS + 1));
  const testCount = Math.floor(bytes(files.test) / (CIFAR_PIXELS + 1));
  const key = createHash('sha256')
    // the files' real paths, sizes and times: the same folder reached through a symlink or `a/../b` has the same key
    .update(JSON.stringify(files.train.map((f) => [realpathSync(f), statSync(f).size, Math.round(statSync(f).mtimeMs)])))
    .digest('hex')
    .slice(0, 16);
  const statsPath = join(cacheDir, 'stats', `cifar-bin-${key}.json`);
  let stats = readStatsFile(statsPath);
  if (!stats) {
    stats = statsOf(loadCifarFiles(files.train, classes));
    writeStatsFile(statsPath, stats);
  }
  return {
    kind: 'cifar-binary',
    root: dir,
    description: `CIFAR-10 binary (${name}): ${trainCount} training and ${testCount} test images, ${classes.length} classes`,
    classes,
    storedSize: CIFAR_SIZE,
    train: { kind: 'cifar-bin', files: files.train, classes },
    trainCount,
    heldOut: { kind: 'cifar-bin', files: files.test, classes },
    heldOutName: 'test',
    heldOutCount: testCount,
    stats,
    warnings,
  };
}

/** Colour statistics of a whole decoded set. */
export function statsOf(set: DecodedSet): ChannelStats {
  const acc = new ChannelStatsAccumulator();
  for (let i = 0; i < set.count; i++) acc.add(set.image(i), set.size * set.size);
  return acc.finish();
}

/** Refuses, before decoding, a cache that the disk has no room for (`need`: what is still to write; `free`: statfs's, unless given). */
export function checkCacheRoom(dir: string, n: number, size: number, path: string, need: number, free = freeBytes(dirname(path)), takenUp: readonly string[] = [], superseded: { files: string[]; bytes: number } = { files: [], bytes: 0 }): void {
  if (free !== null && need > free) {
    const earlier = superseded.files.length > 0 ? `; ${supersededInWords(superseded, dir, size, 'if')}` : '';
    // unfinished decodings nobody writes (of a folder since changed, another size, the other split, or more of this one): said, they may be the room
    const stray = strayPartials(dirname(path), takenUp);
    const strays = stray.files.length > 0 ? `; there, ${bytesInWords(stray.bytes)} are taken by ${stray.files.length} unfinished decoding${stray.files.length > 1 ? 's' : ''} that no process is writing (${firstFew(stray.files.map((f) => basename(f)))}): remove those of folders or sizes you no longer use` : '';
    throw new DataError(
      dirname(path),
      `decoding the ${n} images of ${dir} at ${size}x${size} needs ${bytesInWords(need)} in ${dirname(path)}, which has ${bytesInWords(free)} free: free space, or set --cache-dir (or ALEXNET_CACHE_DIR) to a folder on a larger disk${earlier}${strays}`,
    );
  }
}

/**
 * Two splits still to decode (ILSVRC's training and val): the room for both checked before the first starts, not
 * the second's after hours of the first. One still to decode: its own check (ensureCache) says it.
 */
function checkRoomForSplits(what: string, splits: readonly { listing: SplitListing; path: string }[], size: number): void {
  const pending: { path: string; n: number; need: number; partial: string | null }[] = [];
  for (const { listing, path } of splits) {
    const n = listing.items.length;
    // done, or being decoded by another process now (ensureCache waits for it rather than decoding it here)
    if (existsSync(path) || liveWriter(path, n, size)) continue;
    const left = leftoverProgress(path, n, size);
    pending.push({ path, n, need: cacheFileBytes(n, size) - (left?.written ?? 0) * 3 * size * size, partial: left?.partial ?? null });
  }
  if (pending.length < 2) return;
  makeCacheDir(dirname(pending[0]!.path));
  const need = pending.reduce((a, p) => a + p.need, 0);
  const n = pending.reduce((a, p) => a + p.n, 0);
  checkCacheRoom(what, n, size, pending[0]!.path, need, undefined, pending.flatMap((p) => (p.partial ? [p.partial] : [])));
}

/** "120000 of 1281167 (9%), 850 images/s, about 23 min left": `fresh` images decoded in `seconds` by this process. */
export function decodeProgressLine(done: number, total: number, fresh: number, seconds: number): string {
  const rate = fresh / Math.max(seconds, 1e-3);
  const left = rate > 0 ? (total - done) / rate : Infinity;
  const eta = !Number.isFinite(left) ? '' : left >= 5400 ? `, about ${(left / 3600).toFixed(1)} h left` : left >= 90 ? `, about ${Math.round(left / 60)} min left` : `, about ${Math.max(1, Math.round(left))} s left`;
  return `${done} of ${total} (${Math.floor((100 * done) / total)}%), ${rate.toFixed(0)} images/s${eta}`;
}

/**
 * Waits while another process decodes the cache at `path` (its journal renewed, its process alive): true once the
 * cache is in place or that decoding stopped (the caller looks again), false at once when there is none.
 */
async function waitForOtherWriter(path: string, listing: SplitListing, size: number, o: OpenDatasetOptions): Promise<boolean> {
  let other = liveWriter(path, listing.items.length, size);
  if (!other) return false;
  const n = listing.items.length;
  const who = (w: { host: string; pid: number }) => `process ${w.pid}${w.host === thisHost() ? '' : ` on ${w.host}`}`;
  o.log?.(`${who(other)} is decoding ${listing.dir} at ${size}x${size} into ${path} (${other.done} of ${n} done): waiting for it rather than decoding it twice`);
  let lastLog = performance.now();
  let progress = { done: other.done, at: performance.now() };
  while (other && !existsSync(path)) {
    // how often it looks again: ALEXNET_DECODE_WAIT_POLL_MS (tests), else 2 s
    await new Promise((r) => setTimeout(r, msFromEnv('ALEXNET_DECODE_WAIT_POLL_MS', 2000)));
    other = liveWriter(path, n, size);
    if (!other) break;
    const now = performance.now();
    if (other.done !== progress.done) progress = { done: other.done, at: now };
    else if (now - progress.at > STALE_MS) {
      // alive but not moving (stopped with Ctrl-Z, a suspended job): this process decodes on its own
      o.log?.(`${who(other)} has decoded nothing for ${STALE_MS / 60_000} minutes: decoding ${listing.dir} here`);
      return false;
    }
    if (now - lastLog > 10_000) {
      lastLog = now;
      o.log?.(`waiting for ${who(other)}: ${other.done} of ${n} of ${listing.dir} decoded`);
    }
  }
  return true;
}

async function ensureCache(
  listing: SplitListing,
  path: string,
  size: number,
  cacheDir: string,
  withStats: boolean,
  o: OpenDatasetOptions,
  onWarning: WarningSink,
): Promise<{ path: string; count: number; stats: ChannelStats | null; files: string[] }> {
  // the files the cache holds, in its order: the listing's, less those it could not read
  const filesOf = (skipped: readonly DataWarning[]) => {
    const gone = new Set(skipped.map((w) => w.path));
    return listing.items.map((i) => i.path).filter((f) => !gone.has(f));
  };
  if (existsSync(path)) {
    // what interrupted decodings of it left is of no more use
    removeAbandoned(path);
    const h = readCacheHeader(path);
    for (const w of h.skipped) onWarning(w);
    let stats = withStats ? readStatsFile(statsPathFor(path)) : null;
    if (withStats && !stats) {
      const set = openCacheFile(path, 0);
      stats = statsOf(set);
      set.close?.();
      writeStatsFile(statsPathFor(path), stats);
    }
    return { path, count: h.count, stats, files: filesOf(h.skipped) };
  }
  // another process decoding this very cache now (a sweep's runs started together, evaluate beside a run): its
  // cache is waited for rather than decoded twice; should it stop, its file is taken up below
  if (await waitForOtherWriter(path, listing, size, o)) return ensureCache(listing, path, size, cacheDir, withStats, o, onWarning);
  // a cache folder that cannot be made, or without room for the images, is said before any decoding
  makeCacheDir(dirname(path));
  // the caches of this folder decoded before its images changed: of no more use to a new run, maybe the room needed,
  // but perhaps still open in a run begun before the change (it opens its held-out cache at its first evaluation):
  // named, not removed
  const superseded = supersededCaches(path, listing.dir, listing.classes);
  const n = listing.items.length;
  const left = leftoverProgress(path, n, size);
  const bytes = cacheFileBytes(n, size);
  checkCacheRoom(listing.dir, n, size, path, bytes - (left?.written ?? 0) * 3 * size * size, undefined, left?.partial ? [left.partial] : [], superseded);
  if (superseded.files.length > 0) o.log?.(supersededInWords(superseded, listing.dir, size, 'once'));
  o.log?.(
    left
      ? `decoding ${n} images of ${listing.dir} at ${size}x${size} into ${path} (${bytesInWords(bytes)}), going on from image ${left.done}, where an interrupted decoding stopped`
      : `decoding ${n} images of ${listing.dir} at ${size}x${size} into ${path} (${bytesInWords(bytes)}, once; an interrupted decoding goes on where it stopped)`,
  );
  const t0 = performance.now();
  let lastLog = t0;
  let from = 0;
  const r = await buildDecodedCache({
    items: listing.items,
    classes: listing.classes,
    size,
    path,
    source: listing.dir,
    stats: withStats,
    onWarning,
    onResume: (done) => {
      from = done;
    },
    onProgress: (p) => {
      if (p.done < p.total && performance.now() - lastLog > 10_000) {
        lastLog = performance.now();
        o.log?.(`decoding ${listing.dir}: ${decodeProgressLine(p.done, p.total, p.done - from, (lastLog - t0) / 1000)}`);
      }
    },
  });
  const s = (performance.now() - t0) / 1000;
  o.log?.(`decoded ${r.header.count} images of ${listing.dir} in ${s.toFixed(1)} s (${((n - from) / s).toFixed(0)} images/s${from > 0 ? `, going on from image ${from}` : ''}), ${r.header.skipped.length} skipped`);
  return { path, count: r.header.count, stats: r.stats, files: filesOf(r.header.skipped) };
}

/** Caches a folder's images superseded (supersededCaches), in words, with when to remove them ("once" or "if" no run uses them). */
function supersededInWords(old: { files: string[]; bytes: number }, source: string, size: number, when: 'once' | 'if'): string {
  const n = old.files.length;
  const it = n === 1 ? 'it' : 'them';
  return `${n === 1 ? 'a cache' : `${n} caches`} of ${source} at ${size}x${size} decoded before its images changed ${n === 1 ? 'takes' : 'take'} ${bytesInWords(old.bytes)} (${firstFew(old.files.map((f) => basename(f)))}): remove ${it} ${when} no run uses ${it}`;
}

/** ", the val images' classes from FILE" for a flat held-out folder, else nothing. */
function labelsFrom(f: FolderSplits): string {
  const file = f.heldOut?.labelFile;
  return file ? `, the ${f.heldOutName} images' classes from ${relative(f.root, file)}` : '';
}

/**
 * A training class whose every image was skipped (none could be read) is never trained on: said once, beside the
 * images' own problems, which may be far down their list.
 */
function warnUnreadClasses(train: SplitListing, kept: readonly string[], onWarning: WarningSink): void {
  const keptSet = new Set(kept);
  const listed = new Array<number>(train.classes.length).fill(0);
  const read = new Array<number>(train.classes.length).fill(0);
  for (const it of train.items) {
    listed[it.label]!++;
    if (keptSet.has(it.path)) read[it.label]!++;
  }
  listed.forEach((n, c) => {
    if (n > 0 && read[c] === 0) onWarning({ path: join(train.dir, train.classes[c]!), message: `none of the class's ${n} training image${n === 1 ? '' : 's'} could be read: class ${train.classes[c]} is never trained on` });
  });
}

async function openImageFolder(root: string, cacheDir: string, o: OpenDatasetOptions, warnings: DataWarning[], onWarning: WarningSink): Promise<Dataset> {
  const f = await listImageFolder(root, { onWarning });
  checkClassCount(root, f.train.classes.length, o.maxClasses);
  // only the held-out split is wanted, and there is none: said before the training split is decoded for nothing
  if (o.heldOutOnly && !f.heldOut) throw new DataError(root, `${root} has no held-out split (val/ or test/) to evaluate on`);
  if (o.heldOutOnly && f.heldOut) {
    const held = await ensureCache(f.heldOut, await cachePathFor(cacheDir, f.heldOut, o.size), o.size, cacheDir, true, o, onWarning);
    return {
      kind: 'image-folder',
      root,
      description: `image folder ${root}: ${held.count} ${f.heldOutName} images (its held-out split only), ${f.train.classes.length} class${f.train.classes.length === 1 ? '' : 'es'}${labelsFrom(f)}, decoded at ${o.size}x${o.size}`,
      classes: f.train.classes,
      storedSize: o.size,
      train: { kind: 'cache', path: held.path },
      trainCount: held.count,
      heldOut: { kind: 'cache', path: held.path },
      heldOutName: f.heldOutName,
      heldOutCount: held.count,
      heldOutFiles: held.files,
      stats: held.stats!,
      warnings,
    };
  }
  // each cache's name hashes its images' sizes and times (a stat of every file): made once here
  const trainPath = await cachePathFor(cacheDir, f.train, o.size);
  const heldPath = f.heldOut ? await cachePathFor(cacheDir, f.heldOut, o.size) : null;
  if (f.heldOut && heldPath) checkRoomForSplits(`${root}'s training and ${f.heldOutName} splits`, [{ listing: f.train, path: trainPath }, { listing: f.heldOut, path: heldPath }], o.size);
  const train = await ensureCache(f.train, trainPath, o.size, cacheDir, true, o, onWarning);
  warnUnreadClasses(f.train, train.files, onWarning);
  const held = f.heldOut && heldPath ? await ensureCache(f.heldOut, heldPath, o.size, cacheDir, false, o, onWarning) : null;
  return {
    kind: 'image-folder',
    root,
    description: `image folder ${root}: ${train.count} training${held ? ` and ${held.count} ${f.heldOutName}` : ''} images, ${f.train.classes.length} class${f.train.classes.length === 1 ? '' : 'es'}${labelsFrom(f)}, decoded at ${o.size}x${o.size}`,
    classes: f.train.classes,
    storedSize: o.size,
    train: { kind: 'cache', path: train.path },
    trainCount: train.count,
    heldOut: held ? { kind: 'cache', path: held.path } : null,
    heldOutName: f.heldOutName,
    heldOutCount: held?.count ?? 0,
    heldOutFiles: held?.files,
    stats: train.stats!,
    warnings,
  };
}
