/**
 * The decoded cache: a folder of JPEG/PNG files decoded once into one file of
 * uint8 pixels, N x [3][size][size] plus labels, so that training reads
 * fixed-size records instead of decoding (decode.ts) at every use.
 *
 * File layout (little-endian):
 *   0      "AXNDEC01"                              magic, 8 bytes
 *   8      float64  offset of the JSON header
 *   16     uint32   length of the JSON header
 *   4096   images, N x 3 x size x size bytes, image i at 4096 + i * 3 * size^2
 *   ...    labels, N x uint32
 *   ...    JSON header: { version, count, size, classes, labelsOffset,
 *          imagesOffset, source, skipped: [{ path, message }] }
 *
 * The file is written under a temporary name and renamed when complete, so a
 * crash never leaves a half cache behind; a decoding cut short (Ctrl-C, a crash,
 * a full disk) is taken up where it stopped by the next one (partial-decode.ts). Its name carries a hash of the
 * source folder's real path (not the spelling of its path) and listing (paths,
 * sizes, modification times) and the size, so a changed folder is decoded anew
 * and the same folder reached another way is not. The training split's colour statistics
 * (stats.ts), accumulated while decoding, are saved beside it as
 * `<cache>.stats.json`.
 *
 * Decoding runs in a worker thread (decode-worker.ts) with several images in
 * flight in sharp's thread pool; the calling thread only receives progress
 * and warnings. Readers open the file per image with positioned reads (Node
 * has no mmap); a cache small enough (default up to 1 GiB) is read whole into
 * memory instead.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, realpathSync, statSync, readFileSync, readSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { DataError, cacheError, makeCacheDir, type DataWarning, type WarningSink } from './errors.js';
import { MemorySet, type DecodedSet } from './decoded-set.js';
import { ChannelStatsAccumulator, type ChannelStats } from './stats.js';
import { decodeImage } from './decode.js';
import type { ImageItem, SplitListing } from './image-folder.js';
import { startWorker } from './threads.js';
import { claimPartial, closeJournal, filesWithBytes, msFromEnv, newJournalGate, partialPath, removeAbandoned, removePartial, shutJournalGate, writeJournal, writeUnlessClosed, type JournalState } from './partial-decode.js';

const MAGIC = 'AXNDEC01';
const IMAGES_OFFSET = 4096;

/** The bytes of a cache file of `n` images at `size` (the layout above, its JSON header allowed for). */
export function cacheFileBytes(n: number, size: number): number {
  return IMAGES_OFFSET + n * (3 * size * size + 4) + 65_536;
}
const VERSION = 1;

export interface CacheHeader {
  readonly version: number;
  readonly count: number;
  readonly size: number;
  readonly classes: readonly string[];
  readonly labelsOffset: number;
  readonly imagesOffset: number;
  readonly source: string;
  readonly skipped: readonly DataWarning[];
}

/** The cache file's images are longer than a journal said: a file to start afresh. */
class ShortPartialError extends Error {}

/** Appends decoded images to a new cache file (synchronous: meant for a worker thread), or on to a claimed partial one. */
export class CacheWriter {
  private readonly fd: number;
  private readonly labels: number[];
  /** The file being written: this process's partial name (partial-decode.ts). */
  readonly tmp: string;
  private offset: number;
  private readonly bytes: number;

  /**
   * `resume`: carry on in the claimed partial file `resume.partial`, which holds the images of `resume.labels`
   * (a ShortPartialError when it is shorter than that: the data the journal counted never reached the disk).
   */
  constructor(private readonly path: string, private readonly size: number, private readonly classes: readonly string[], resume?: { partial: string; labels: readonly number[] }) {
    makeCacheDir(dirname(path));
    this.tmp = resume?.partial ?? partialPath(path);
    this.bytes = 3 * size * size;
    this.labels = resume ? [...resume.labels] : [];
    this.offset = IMAGES_OFFSET + this.labels.length * this.bytes;
    try {
      // a new name of this process's own: never another writer's file
      this.fd = openSync(this.tmp, resume ? 'r+' : 'wx');
    } catch (e) {
      throw cacheError('write the cache file', this.tmp, e);
    }
    if (resume) {
      if (fstatSync(this.fd).size < this.offset) {
        closeSync(this.fd);
        throw new ShortPartialError(`${this.tmp} is shorter than its journal says`);
      }
      // a process killed after an image and before its journal left a little more: cut off
      ftruncateSync(this.fd, this.offset);
    }
  }

  /** Images in the file. */
  get written(): number {
    return this.labels.length;
  }

  append(chw: Uint8Array, label: number): void {
    if (chw.length !== this.bytes) throw new Error(`CacheWriter: image of ${chw.length} bytes, expected 3x${this.size}x${this.size}`);
    writeAll(this.fd, chw, this.offset);
    this.offset += chw.length;
    this.labels.push(label);
  }

  /**
   * The images written so far, on the disk (before a journal counts them); an Error when the file is no longer
   * under this writer's name (another process took it over, wrongly thinking this one gone): this writer stops.
   */
  flush(): void {
    fdatasyncSync(this.fd);
    this.checkOwn();
  }

  /** A DataError (TakenOver) when the file is no longer under this writer's name: another process took it over. */
  private checkOwn(): void {
    let ino: number | null = null;
    try {
      ino = statSync(this.tmp).ino;
    } catch (e) {
      // renamed away; any other failure (a flaky network file system) is not a take-over
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (ino !== fstatSync(this.fd).ino) throw new DataError(this.tmp, `${this.tmp} was taken over by another process, which thought this one gone: decode again (the other process goes on with it)`);
  }

  /** Whether the file is closed: renamed into place by finish(), or given up. */
  private closed = false;
  /** Whether finish() put the cache in place: nothing is left to keep or resume. */
  finished = false;

  /** Writes labels and header, flushes them to the disk and renames the file into place. */
  finish(source: string, skipped: readonly DataWarning[]): CacheHeader {
    this.checkOwn();
    const labels = Uint32Array.from(this.labels);
    const labelsOffset = this.offset;
    writeAll(this.fd, new Uint8Array(labels.buffer), labelsOffset);
    const header: CacheHeader = {
      version: VERSION,
      count: labels.length,
      size: this.size,
      classes: this.classes,
      labelsOffset,
      imagesOffset: IMAGES_OFFSET,
      source,
      skipped,
    };
    const json = Buffer.from(JSON.stringify(header));
    const jsonOffset = labelsOffset + labels.byteLength;
    writeAll(this.fd, json, jsonOffset);
    const prefix = Buffer.alloc(20);
    prefix.write(MAGIC, 0, 'latin1');
    prefix.writeDoubleLE(jsonOffset, 8);
    prefix.writeUInt32LE(json.length, 16);
    writeAll(this.fd, prefix, 0);
    // whole on the disk before it is put in place: a crash never leaves a cache cut short under the final name
    fdatasyncSync(this.fd);
    this.closed = true;
    closeSync(this.fd);
    renameSync(this.tmp, this.path);
    this.finished = true;
    removePartial(this.tmp);
    return header;
  }

  /** Stops writing: the partial file and its journal are kept for the next decoding to go on from, or removed. */
  abort(keep: boolean): void {
    if (!this.closed) {
      this.closed = true;
      closeSync(this.fd);
    }
    if (!keep && !this.finished) removePartial(this.tmp);
  }
}

/** writeSync until every byte is written (a short write, a nearly full disk, is not an image written). */
function writeAll(fd: number, bytes: Uint8Array, at: number): void {
  for (let o = 0; o < bytes.length; ) {
    const n = writeSync(fd, bytes, o, bytes.length - o, at + o);
    if (n <= 0) throw Object.assign(new Error('no space left on the device'), { code: 'ENOSPC' });
    o += n;
  }
}

/** Reads a cache file's header; a DataError when it is not one. */
export function readCacheHeader(path: string): CacheHeader {
  const fd = openSync(path, 'r');
  try {
    const prefix = Buffer.alloc(20);
    readSync(fd, prefix, 0, 20, 0);
    if (prefix.toString('latin1', 0, 8) !== MAGIC) throw new DataError(path, `${path} is not a decoded cache file (no ${MAGIC} magic)`);
    const jsonOffset = prefix.readDoubleLE(8);
    const jsonLength = prefix.readUInt32LE(16);
    const json = Buffer.alloc(jsonLength);
    readSync(fd, json, 0, jsonLength, jsonOffset);
    let h: CacheHeader;
    try {
      h = JSON.parse(json.toString('utf8')) as CacheHeader;
    } catch {
      throw new DataError(path, `${path} is damaged (its header does not read): remove it, and it is decoded again`);
    }
    if (h.version !== VERSION) throw new DataError(path, `${path}: decoded cache version ${h.version}, this program reads version ${VERSION}`);
    return h;
  } finally {
    closeSync(fd);
  }
}

/** A cache file read image by image with positioned reads. */
export class CacheFileSet implements DecodedSet {
  readonly count: number;
  readonly size: number;
  readonly classes: readonly string[];
  readonly labels: Uint32Array;
  private fd: number;
  private readonly buf: Uint8Array;
  private readonly bytes: number;

  constructor(readonly path: string, readonly header: CacheHeader) {
    this.count = header.count;
    this.size = header.size;
    this.classes = header.classes;
    this.bytes = 3 * this.size * this.size;
    this.buf = new Uint8Array(this.bytes);
    this.fd = openSync(path, 'r');
    const lab = Buffer.alloc(4 * this.count);
    readSync(this.fd, lab, 0, lab.length, header.labelsOffset);
    this.labels = new Uint32Array(lab.buffer.slice(lab.byteOffset, lab.byteOffset + lab.length));
  }

  image(i: number): Uint8Array {
    if (!(i >= 0 && i < this.count)) throw new RangeError(`image ${i} of ${this.count}`);
    const got = readSync(this.fd, this.buf, 0, this.bytes, this.header.imagesOffset + i * this.bytes);
    if (got !== this.bytes) throw new DataError(this.path, `${this.path}: short read at image ${i} (file truncated?)`);
    return this.buf;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** Opens a cache file: whole in memory when its images take at most `memoryLimit` bytes, else read per image. */
export function openCacheFile(path: string, memoryLimit = 1 << 30): DecodedSet {
  const h = readCacheHeader(path);
  const bytes = h.count * 3 * h.size * h.size;
  if (bytes > memoryLimit) return new CacheFileSet(path, h);
  const fd = openSync(path, 'r');
  try {
    const total = fstatSync(fd).size;
    if (total < h.labelsOffset + 4 * h.count) throw new DataError(path, `${path} is truncated`);
    const pixels = new Uint8Array(bytes);
    let o = 0;
    while (o < bytes) o += readSync(fd, pixels, o, Math.min(bytes - o, 1 << 28), h.imagesOffset + o);
    const lab = new Uint8Array(4 * h.count);
    readSync(fd, lab, 0, lab.length, h.labelsOffset);
    return new MemorySet(pixels, new Uint32Array(lab.buffer), h.size, h.classes);
  } finally {
    closeSync(fd);
  }
}

export function statsPathFor(cachePath: string): string {
  return `${cachePath}.stats.json`;
}

/** Whether two spellings of a folder are the same folder (real paths, as the cache's name hashes it). */
function sameFolder(a: string, b: string): boolean {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  return a === b || real(a) === real(b);
}

/**
 * Finished caches of the folder `source` at the size of `cachePath`, with the same `classes`, other than that one:
 * decoded before the folder's images changed (the name's hash covers its files' names, sizes and times), of no more use. Found by
 * their name's folder part and their header's source folder (two folders of one name elsewhere keep theirs).
 */
export function supersededCaches(cachePath: string, source: string, classes: readonly string[]): { files: string[]; bytes: number } {
  const name = basename(cachePath);
  const prefix = name.slice(0, name.lastIndexOf('-') + 1);
  return filesWithBytes(dirname(cachePath), (n) => {
    if (n === name || !n.startsWith(prefix) || !/^[0-9a-f]{16}\.u8$/.test(n.slice(prefix.length))) return false;
    try {
      const h = readCacheHeader(join(dirname(cachePath), n));
      // the same folder listed with other classes (a model's, to evaluate on) is another use of it, kept
      return sameFolder(h.source, source) && h.classes.length === classes.length && h.classes.every((c, i) => c === classes[i]);
    } catch {
      return false; // another version's, or damaged: left alone
    }
  });
}

export function readStatsFile(path: string): ChannelStats | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ChannelStats;
  } catch {
    return null;
  }
}

export function writeStatsFile(path: string, stats: ChannelStats): void {
  makeCacheDir(dirname(path));
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, JSON.stringify(stats, null, 1));
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw cacheError('write', path, e);
  }
}

export interface DecodeProgress {
  readonly done: number;
  readonly total: number;
  readonly skipped: number;
}

export interface DecodeResult {
  readonly header: CacheHeader;
  readonly stats: ChannelStats | null;
  readonly ms: number;
}

/** What to decode into a cache file, and where progress and warnings go. */
export interface DecodeOptions {
  items: readonly ImageItem[];
  classes: readonly string[];
  size: number;
  path: string;
  source: string;
  stats?: boolean;
  concurrency?: number;
  /** Write the journal after this many images as well as every JOURNAL_MS (tests: a small number). */
  journalEvery?: number;
  onWarning?: WarningSink;
  onProgress?: (p: DecodeProgress) => void;
  /** Called before decoding when an interrupted decoding of the same cache is taken up: `done` items of the listing are behind it. */
  onResume?: (done: number) => void;
  /** Called when the partial file is open (its journal written): the file being written, under its own name. */
  onOpened?: (partial: string) => void;
  /** Shared with the thread's process, which shuts it before it closes the journal (partial-decode.ts newJournalGate). */
  journalGate?: Int32Array;
}

/** The first line of sharp's message, without a dangling colon ("Input file has corrupt header: " with nothing after). */
const firstLine = (e: Error) => (e.message.split('\n')[0] ?? '').trim().replace(/:$/, '').trim();

/**
 * Why an image could not be decoded ("VipsJpeg: premature end of JPEG image"), or null when sharp's message says
 * nothing of it ("Unknown error", "Input file has corrupt header: " and nothing after).
 */
function reasonOf(e: Error): string | null {
  const line = firstLine(e);
  return line === '' || /^unknown error$/i.test(line) || /^input file has corrupt header$/i.test(line) ? null : line;
}

/** What a skipped image's warning says of it: what the file is (empty, a link to nothing), else its reason, else what little sharp said. */
function skipMessage(e: Error, path: string): string {
  const line = firstLine(e);
  return `${fileTrouble(path) ?? reasonOf(e) ?? (line === '' || /^unknown error$/i.test(line) ? 'cannot be decoded (libvips gave no reason)' : line)} (skipped)`;
}

/** Why a file that did not decode is no image before any decoder looks at it, in words; null when it is a file with bytes. */
function fileTrouble(path: string): string | null {
  try {
    if (statSync(path).size === 0) return 'the file is empty (0 bytes)';
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ELOOP' ? 'a symbolic link in a loop' : code === 'ENOENT' ? 'a symbolic link to nothing, or the file is gone' : null;
  }
}

/** How often a decoding writes its journal: at most this much decoding is done again after a crash. */
const JOURNAL_MS = 5_000;

/** The state an interrupted decoding left, taken over for this listing; null to start afresh (none, or one that does not fit). */
function takeUp(o: DecodeOptions): { partial: string; done: number; labels: number[]; skipped: DataWarning[]; acc: ChannelStatsAccumulator } | null {
  const claimed = claimPartial(o.path, o.items.length, o.size);
  if (!claimed) return null;
  const j = claimed.journal;
  const behind = o.items.slice(0, j.done);
  // a failure in a warning's handler leaves that image skipped and not yet done: it is taken again
  const before = new Set(behind.map((it) => it.path));
  const skipped = j.skipped.filter((w) => before.has(w.path));
  const gone = new Set(skipped.map((w) => w.path));
  const labels = behind.filter((it) => !gone.has(it.path)).map((it) => it.label);
  if (j.done > o.items.length || labels.length !== j.written || j.stats.n !== j.written) {
    removePartial(claimed.partial);
    return null;
  }
  return { partial: claimed.partial, done: j.done, labels, skipped, acc: ChannelStatsAccumulator.from(j.stats) };
}

/** A writer carrying on from an interrupted decoding of the same cache, or a new one (a taken-over file shorter than its journal: afresh). */
function openWriter(o: DecodeOptions): { writer: CacheWriter; resumed: ReturnType<typeof takeUp> } {
  const resumed = takeUp(o);
  if (resumed) {
    try {
      return { writer: new CacheWriter(o.path, o.size, o.classes, { partial: resumed.partial, labels: resumed.labels }), resumed };
    } catch (e) {
      // shorter than its journal: of no use; one this user may not write (another user's, in a shared folder):
      // left to its owner, whose next run takes it up again
      if (e instanceof ShortPartialError) removePartial(resumed.partial);
    }
  }
  return { writer: new CacheWriter(o.path, o.size, o.classes), resumed: null };
}

/**
 * Decodes `items` into a cache file at `path`, on the calling thread (the
 * worker's body; use buildDecodedCache from a training process). Images are
 * written in the items' order whatever order sharp finishes them in; an image
 * that fails to decode is skipped and reported. A decoding of the same cache
 * cut short before is taken up where its journal says it stopped; one that fails
 * here keeps its partial file for the next (unless no image could be decoded).
 * The colour sums are kept in the journal whether or not `stats` asks for the
 * statistics file, so that any decoding can take up any other's.
 */
export async function decodeToCache(o: DecodeOptions): Promise<DecodeResult> {
  const t0 = performance.now();
  let opened: ReturnType<typeof openWriter>;
  try {
    opened = openWriter(o);
  } catch (e) {
    // a cache folder that cannot be written (or taken from another user): one line
    throw e instanceof DataError || (e as NodeJS.ErrnoException).code === undefined ? e : cacheError('write the cache file', o.path, e);
  }
  const { writer, resumed } = opened;
  if (resumed) o.onResume?.(resumed.done);
  const acc = resumed ? resumed.acc : new ChannelStatsAccumulator();
  const skipped: DataWarning[] = resumed ? resumed.skipped : [];
  const first = resumed?.done ?? 0;
  /** Items of the listing done: decoded and written, or skipped. */
  let done = first;
  const state = (): JournalState => ({ closed: false, items: o.items.length, size: o.size, done, written: writer.written, skipped, stats: acc.state() });
  // the images counted on the disk first: a journal never counts more than the file holds
  /** The last state a journal counted, its images flushed: what a failure leaves for the next decoding. */
  let lastGood: JournalState | null = null;
  /** A flush failed: later ones may report success on pages that were lost (Linux reports a writeback error once). */
  let flushFailed = false;
  const journal = () => {
    try {
      writer.flush();
    } catch (e) {
      flushFailed = true;
      throw e;
    }
    const st = state();
    if (writeUnlessClosed(o.journalGate, () => writeJournal(writer.tmp, st))) lastGood = st;
  };
  // how often: ALEXNET_DECODE_JOURNAL_MS (tests), else JOURNAL_MS
  const every = msFromEnv('ALEXNET_DECODE_JOURNAL_MS', JOURNAL_MS);
  let lastJournal = performance.now();
  const inFlight = Math.max(1, o.concurrency ?? 8);
  const pending: Promise<Uint8Array | Error>[] = [];
  const decode = (i: number) => decodeImage(o.items[i]!.path, o.size).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  const start = (i: number) => {
    pending[i] = decode(i);
  };
  try {
    // at once: the file is found (and taken up, or cleared away) whatever happens next
    journal();
    o.onOpened?.(writer.tmp);
    for (let i = first; i < Math.min(first + inFlight, o.items.length); i++) start(i);
    for (let i = first; i < o.items.length; i++) {
      let r = await pending[i]!;
      delete pending[i];
      if (r instanceof Error) {
        // libvips keeps one error buffer for the whole process, and each decoding that ends clears it: among
        // concurrent decodings a failure's reason can be lost ("Unknown error") or be another file's. Decoded
        // again alone (the others in flight ended first, none started meanwhile), the reason is its own; tried
        // up to 3 times while it says none (sharp used elsewhere in the process at the same time can still clear it).
        const together = r;
        await Promise.all(pending.filter(Boolean));
        for (let k = 0; k < 3 && (k === 0 || (r instanceof Error && !reasonOf(r))); k++) r = await decode(i);
        if (r instanceof Error && !reasonOf(r) && reasonOf(together)) r = together;
      }
      if (i + inFlight < o.items.length) start(i + inFlight);
      if (r instanceof Error) {
        const w = { path: o.items[i]!.path, message: skipMessage(r, o.items[i]!.path) };
        skipped.push(w);
        o.onWarning?.(w);
      } else {
        writer.append(r, o.items[i]!.label);
        acc.add(r, o.size * o.size);
      }
      done = i + 1;
      if ((o.journalEvery !== undefined && (done - first) % o.journalEvery === 0) || performance.now() - lastJournal > every) {
        journal();
        lastJournal = performance.now();
      }
      if (o.onProgress && (done % 500 === 0 || done === o.items.length)) o.onProgress({ done, total: o.items.length, skipped: skipped.length });
    }
    if (skipped.length === o.items.length) throw new DataError(o.source, `none of the ${o.items.length} images in ${o.source} could be decoded (first: ${skipped[0]?.path}: ${skipped[0]?.message})`);
    const header = writer.finish(o.source, skipped);
    // the cache is in place: what other decodings of it left behind is of no more use
    removeAbandoned(o.path);
    const stats = o.stats ? acc.finish() : null;
    if (stats) writeStatsFile(statsPathFor(o.path), stats);
    return { header, stats, ms: performance.now() - t0 };
  } catch (e) {
    await Promise.allSettled(pending.filter(Boolean));
    // what was decoded since the last journal, unless the disk has failed to take it
    if (!flushFailed && !writer.finished && !(e instanceof DataError)) {
      try {
        journal();
      } catch {
        /* the last journal stands */
      }
    }
    // (set inside `journal`: a cast, as control flow cannot see it)
    const good = lastGood as JournalState | null;
    const keep = !(e instanceof DataError) && good !== null && good.written > 0 && !writer.finished;
    if (keep) {
      try {
        // left for the next decoding, whichever process runs it: what the last journal counted, whose images are on
        // the disk (after a failed flush another one may report success on pages that were lost)
        writeUnlessClosed(o.journalGate, () => writeJournal(writer.tmp, { ...good, closed: true }));
      } catch {
        /* a full disk: the last journal written stands */
      }
    }
    writer.abort(keep);
    // a full disk or an unwritable cache: one line (a DataError crosses from the decoding thread whole)
    const err = (e as NodeJS.ErrnoException).code !== undefined ? cacheError('write the cache file', o.path, e) : e;
    if (keep && err instanceof Error) err.message += `; the ${good!.written} images decoded so far are kept, and the next run goes on from them`;
    throw err;
  }
}

/** The partial files this process's decoding threads are writing now, with their journal gates (for closeActiveDecodings). */
const active = new Map<string, Int32Array>();

/**
 * Marks the journal of every decoding this process is running closed, its file left for the next decoding
 * whichever process runs it: for a process about to exit on a signal (the decoding threads die with it; a journal
 * left open would be taken up on this machine only, or after 10 minutes).
 */
export function closeActiveDecodings(): void {
  for (const [partial, gate] of active) {
    // a journal the thread is writing now is let finish, and none after: the close is the last word
    shutJournalGate(gate);
    closeJournal(partial);
  }
}

/** decodeToCache in a worker thread; progress and warnings come back as they happen. */
export function buildDecodedCache(o: DecodeOptions): Promise<DecodeResult> {
  const { onWarning, onProgress, onResume, onOpened, ...rest } = o;
  const journalGate = newJournalGate();
  const data = { ...rest, journalGate };
  const w = startWorker(new URL('./decode-worker.ts', import.meta.url), data);
  let partial: string | null = null;
  const forget = () => partial !== null && active.delete(partial);
  return new Promise<DecodeResult>((resolvePromise, reject) => {
    let settled = false;
    w.on('message', (m: { type: string; [k: string]: unknown }) => {
      if (m.type === 'opened') {
        partial = m.partial as string;
        active.set(partial, journalGate);
        onOpened?.(partial);
      } else if (m.type === 'warning') onWarning?.(m.warning as DataWarning);
      else if (m.type === 'progress') onProgress?.(m.progress as DecodeProgress);
      else if (m.type === 'resumed') onResume?.(m.done as number);
      else if (m.type === 'done') {
        settled = true;
        forget();
        resolvePromise(m.result as DecodeResult);
        void w.terminate();
      } else if (m.type === 'error') {
        settled = true;
        forget();
        const e = m.error as { name: string; message: string; path?: string };
        reject(e.name === 'DataError' ? new DataError(e.path ?? o.source, e.message) : new Error(`decoding ${o.source}: ${e.message}`));
        void w.terminate();
      }
    });
    w.on('error', (e) => {
      if (!settled) reject(new Error(`decode worker for ${o.source} failed: ${e.message}`, { cause: e }));
      settled = true;
    });
    w.on('exit', (code) => {
      forget();
      if (!settled) reject(new Error(`decode worker for ${o.source} exited with code ${code} before finishing`));
      settled = true;
    });
  });
}

/**
 * The cache file for a split at a size: `<cacheDir>/decoded/<name>-<split>-<size>px-<hash>.u8`,
 * keyed by the folder's real path (fs.realpath: the same folder reached through a symlink or
 * `a/../b` is the same cache) and its contents: the hash over the real path, the classes and the
 * listing's paths relative to the folder, labels, file sizes and modification times.
 */
export async function cachePathFor(cacheDir: string, listing: SplitListing, size: number): Promise<string> {
  const real = await realpath(listing.dir).catch(() => listing.dir);
  const h = createHash('sha256');
  h.update(JSON.stringify({ v: VERSION, size, dir: real, classes: listing.classes }));
  const STAT_BATCH = 256;
  for (let i = 0; i < listing.items.length; i += STAT_BATCH) {
    const part = listing.items.slice(i, i + STAT_BATCH);
    const stats = await Promise.all(part.map((it) => stat(it.path).then((s) => `${s.size}:${Math.round(s.mtimeMs)}`, () => 'missing')));
    part.forEach((it, j) => h.update(`${relative(listing.dir, it.path)}|${it.label}|${stats[j]}\n`));
  }
  const root = basename(dirname(real)).replace(/[^A-Za-z0-9._-]/g, '_') || 'data';
  const split = basename(real).replace(/[^A-Za-z0-9._-]/g, '_');
  return join(cacheDir, 'decoded', `${root}-${split}-${size}px-${h.digest('hex').slice(0, 16)}.u8`);
}
