/**
 * Making the decoded cache: a folder of image files decoded once (decode.ts) into one cache file (its layout and
 * readers: cache-file.ts), so that training reads fixed-size records instead of decoding at every use.
 *
 * A decoding cut short (Ctrl-C, a crash, a full disk) is taken up where it stopped by the next one
 * (partial-decode.ts). The file's name carries a hash of the source folder's real path (not the spelling of its
 * path) and listing (paths, sizes, modification times) and the size, so a changed folder is decoded anew and the
 * same folder reached another way is not. The training split's colour statistics (stats.ts), accumulated while
 * decoding, are saved beside it as `<cache>.stats.json`.
 *
 * Decoding runs in a worker thread (decode-worker.ts) with several images in flight in sharp's thread pool; the
 * calling thread only receives progress and warnings.
 */
import { createHash } from 'node:crypto';
import { existsSync, realpathSync, statSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { DataError, cacheError, makeCacheDir, type DataWarning, type WarningSink } from './errors.js';
import { ChannelStatsAccumulator, type ChannelStats } from './stats.js';
import { decodeImage } from './decode.js';
import type { ImageItem, SplitListing } from './image-folder.js';
import { startWorker } from './threads.js';
import { claimPartial, closeJournal, filesWithBytes, msFromEnv, newJournalGate, removeAbandoned, removePartial, shutJournalGate, writeJournal, writeUnlessClosed, type JournalState } from './partial-decode.js';
import { CacheWriter, ShortPartialError, CACHE_VERSION, readCacheHeader, type CacheHeader } from './cache-file.js';

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
 * left open would be taken up on this machine only, or after 10 minutes). Returns how many decodings there were
 * and how many images their journals keep for the next one (those recorded by the last journal: it is written
 * every few seconds, so one stopped in its first seconds keeps none).
 */
export function closeActiveDecodings(): { decodings: number; kept: number } {
  let kept = 0;
  for (const [partial, gate] of active) {
    // a journal the thread is writing now is let finish, and none after: the close is the last word
    shutJournalGate(gate);
    kept += closeJournal(partial);
  }
  return { decodings: active.size, kept };
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
  h.update(JSON.stringify({ v: CACHE_VERSION, size, dir: real, classes: listing.classes }));
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
