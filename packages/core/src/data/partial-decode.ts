/**
 * A decoding into the cache that was cut short goes on where it stopped. ILSVRC-2012's training set decodes
 * into about 250 GB for the paper preset, for hours: a Ctrl-C, a crash or a full disk should not
 * cost it all.
 *
 * While decoding, a process writes the cache file under a name of its own, `<cache>.partial-<host>-<pid>-<tag>`,
 * and a journal beside it (`<same>.json`), written when the file is opened and then every few seconds: how many
 * of the listing's images are done, how many are in the file, the ones skipped and the colour sums so far. The
 * file's data is flushed to the disk (fdatasync) before each journal that counts it, so the file holds at least
 * what the journal says, after a crash of the machine too (a process killed between the two has written a little
 * more, cut off when the decoding goes on). A journal names its writer; the writer marks it `closed` when it stops
 * on an error (a full disk), leaving the file for the next decoding.
 *
 * The next decoding of the same cache (same folder contents, size and key: decoded-cache.ts's cachePathFor) takes
 * over the furthest partial file that is no longer being written: closed, or its writer gone (a process this one
 * can see, on this machine and in its pid namespace, that no longer exists or whose pid another process now has),
 * or, a writer it cannot see (another machine sharing the cache folder, another container), its journal not
 * renewed for STALE_MS. The writer checks, at each journal, that its file is still under its name, and stops if
 * not. When the cache is in place, what other decodings of it left is removed. Taking over is a rename of the file to the new writer's name,
 * atomic: of two processes only one gets it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { DataWarning } from './errors.js';
import type { AccumulatorState } from './stats.js';
import { processAlive } from '../process-alive.js';

const VERSION = 1;

/** Milliseconds from environment variable `name` (tests shorten the waits of a decoding), else `fallback`. */
export function msFromEnv(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** A journal not renewed for this long belongs to a writer that is gone, wherever it ran (a live one renews it every few seconds). */
export const STALE_MS = 10 * 60_000;

export interface DecodeJournal {
  readonly version: number;
  /** The process writing the file: its machine, pid namespace (Linux; '' elsewhere) and pid, and when that pid started (boot and start time; '' elsewhere). */
  readonly host: string;
  readonly ns: string;
  readonly pid: number;
  readonly started: string;
  /** The writer stopped (an error) and left the file for the next decoding. */
  readonly closed: boolean;
  /** The listing's length and the decoded size: a journal of another listing is not taken over. */
  readonly items: number;
  readonly size: number;
  /** Items of the listing done (decoded and written, or skipped), from the first. */
  readonly done: number;
  /** Images in the file (done less skipped). */
  readonly written: number;
  readonly skipped: readonly DataWarning[];
  /** The colour sums over the written images. */
  readonly stats: AccumulatorState;
}

export type JournalState = Omit<DecodeJournal, 'version' | 'host' | 'ns' | 'pid' | 'started'>;

export const thisHost = (): string => hostname().replace(/[^A-Za-z0-9.-]/g, '_') || 'host';

const readOr = (f: () => string): string => {
  try {
    return f().trim();
  } catch {
    return '';
  }
};

/** This process's pid namespace (Linux: the link /proc/self/ns/pid names it), '' where it cannot be told. */
export const pidNamespace = (): string => readOr(() => readlinkSync('/proc/self/ns/pid'));

/**
 * When process `pid` started: this boot's id and the process's start time in clock ticks (/proc/PID/stat, field
 * 22), so that a pid reused by another process (or after a reboot) is not taken for the writer; '' where it
 * cannot be told (not Linux, or no such process).
 */
export function processStart(pid: number): string {
  const stat = readOr(() => readFileSync(`/proc/${pid}/stat`, 'utf8'));
  // the fields after the command name, which may hold spaces and brackets: from the last ')'
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = fields[19];
  const boot = thisBoot();
  return ticks && boot ? `${boot}:${ticks}` : '';
}

/** A new partial file name for the cache file `cachePath`, this process's (tests name other writers). */
export function partialPath(cachePath: string, writer: { host?: string; pid?: number; tag?: string } = {}): string {
  return `${cachePath}.partial-${writer.host ?? thisHost()}-${writer.pid ?? process.pid}-${writer.tag ?? randomBytes(3).toString('hex')}`;
}
export const journalPath = (partial: string): string => `${partial}.json`;
/** A partial file's journal and the temporary files its writes go through (writeJournal's, closeJournal's). */
const journalFiles = (partial: string): string[] => [journalPath(partial), `${journalPath(partial)}.tmp`, `${journalPath(partial)}.closing.tmp`];

/** Puts `journal` in place as the journal of `partial` through the temporary file `tmp` (never half a journal). */
function storeJournal(partial: string, journal: object, tmp: string): void {
  writeFileSync(tmp, JSON.stringify(journal));
  renameSync(tmp, journalPath(partial));
}

function readJournal(path: string): DecodeJournal | null {
  try {
    const j = JSON.parse(readFileSync(path, 'utf8')) as DecodeJournal;
    return j.version === VERSION && Number.isInteger(j.done) && Number.isInteger(j.written) && typeof j.host === 'string' && typeof j.ns === 'string' && typeof j.started === 'string' && j.stats !== null && typeof j.stats === 'object' ? j : null;
  } catch {
    return null;
  }
}

const ageMs = (path: string): number => {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
};

/**
 * Whether nobody writes the partial file of this journal any more: its writer said so (closed); or, a writer this
 * process can see (this machine, this pid namespace), its process is gone (or its pid is another process's now);
 * or, a writer elsewhere, its journal has not been renewed for STALE_MS. A writer this process can see that is
 * alive keeps its file however long it is stopped (Ctrl-Z, a suspended job).
 */
function abandoned(journal: DecodeJournal, journalFile: string): boolean {
  if (journal.closed) return true;
  if (visibleWriter(journal)) {
    // its pid now: gone, or another process's (started at another time; '' where /proc hides it: taken as the writer)
    if (journal.pid !== process.pid && !processAlive(journal.pid)) return true;
    const now = processStart(journal.pid);
    return now !== '' && now !== journal.started;
  }
  return ageMs(journalFile) > STALE_MS;
}

/**
 * Whether the journal's writer is a process this one can see: the same host name, pid namespace and boot (two
 * machines may share a host name, and every machine's first pid namespace looks alike); not when any is unknown.
 */
function visibleWriter(journal: DecodeJournal): boolean {
  const boot = thisBoot();
  return journal.host === thisHost() && journal.ns !== '' && journal.ns === pidNamespace() && boot !== '' && journal.started.startsWith(`${boot}:`);
}

const thisBoot = (): string => readOr(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'));

interface Leftover {
  readonly partial: string;
  readonly journal: DecodeJournal;
}

/** The partial files of `cachePath` in its folder, each with its journal (null: none, or unreadable). */
function partials(cachePath: string): { partial: string; journal: DecodeJournal | null }[] {
  const dir = dirname(cachePath);
  const prefix = `${basename(cachePath)}.partial-`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  // the data files: not a journal, nor a journal's temporary file
  return names.filter((n) => n.startsWith(prefix) && !n.includes('.json')).map((n) => ({ partial: join(dir, n), journal: readJournal(join(dir, `${n}.json`)) }));
}

/**
 * Partial decodings of `cachePath` for a listing of `items` images at `size` that nobody writes any more, the
 * furthest first. On the way, what can never be taken up is removed: a journal whose file is gone (a writer
 * stopped while taking another's over), and a file without a journal that has not changed for STALE_MS.
 */
function leftovers(cachePath: string, items: number, size: number): Leftover[] {
  const dir = dirname(cachePath);
  const prefix = `${basename(cachePath)}.partial-`;
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  for (const n of names) {
    const bare = n.replace(/\.json(\..*)?$/, '');
    if (n.startsWith(prefix) && bare !== n && !existsSync(join(dir, bare)) && ageMs(join(dir, n)) > 60_000) removeQuietly(join(dir, n));
  }
  const found: Leftover[] = [];
  for (const { partial, journal } of partials(cachePath)) {
    if (journal === null) {
      if (ageMs(partial) > STALE_MS) removeQuietly(partial);
      continue;
    }
    if (!abandoned(journal, journalPath(partial)) || journal.items !== items || journal.size !== size) continue;
    found.push({ partial, journal });
  }
  return found.sort((a, b) => b.journal.done - a.journal.done);
}

/**
 * A decoding of `cachePath` for a listing of `items` images at `size` that another process is writing now (its
 * journal not abandoned), the furthest: its writer and progress; null when none.
 */
export function liveWriter(cachePath: string, items: number, size: number): { host: string; pid: number; done: number } | null {
  let best: { host: string; pid: number; done: number } | null = null;
  for (const { partial, journal } of partials(cachePath)) {
    if (journal === null || journal.items !== items || journal.size !== size || abandoned(journal, journalPath(partial))) continue;
    if (journal.host === thisHost() && journal.pid === process.pid) continue;
    if (!best || journal.done > best.done) best = { host: journal.host, pid: journal.pid, done: journal.done };
  }
  return best;
}

/** How far the furthest partial decoding of `cachePath` that can be taken up got, or null (for the room check and the log). */
export function leftoverProgress(cachePath: string, items: number, size: number): { partial: string; done: number; written: number } | null {
  const l = leftovers(cachePath, items, size)[0];
  return l ? { partial: l.partial, done: l.journal.done, written: l.journal.written } : null;
}

/**
 * Takes over the furthest partial decoding of `cachePath` that nobody writes, for a listing of `items` images at
 * `size`: its journal written again under this process's new name, then its file renamed to it (atomic: another
 * process taking it at the same time gets ENOENT and goes on to the next), the old journal removed. Null when
 * there is none.
 */
export function claimPartial(cachePath: string, items: number, size: number): { partial: string; journal: DecodeJournal } | null {
  for (const l of leftovers(cachePath, items, size)) {
    const mine = partialPath(cachePath);
    const { version: _v, host: _h, ns: _n, pid: _p, started: _s, ...state } = l.journal;
    writeJournal(mine, { ...state, closed: false });
    try {
      renameSync(l.partial, mine);
    } catch {
      removeQuietly(journalPath(mine));
      continue;
    }
    for (const f of journalFiles(l.partial)) removeQuietly(f);
    return { partial: mine, journal: l.journal };
  }
  return null;
}

/** Writes the journal of `partial` (under a temporary name, then renamed: never half a journal). */
export function writeJournal(partial: string, state: JournalState): void {
  storeJournal(partial, { version: VERSION, host: thisHost(), ns: pidNamespace(), pid: process.pid, started: processStart(process.pid), ...state }, journalFiles(partial)[1]!);
}

/**
 * A decoding thread's journal writes against its process closing the journal (closeJournal before an exit on a
 * signal), in one shared Int32: FREE, WRITING (a write under way), CLOSED (no more writes). Without it a thread's
 * write could land after the close and leave the journal open.
 */
const FREE = 0;
const WRITING = 1;
const CLOSED = 2;
/** A write under way that the process is waiting for: the writer shuts the gate as it ends. */
const CLOSING = 3;

export function newJournalGate(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4));
}

/** The decoding thread's side: writes unless its process closed the journal; whether it wrote. */
export function writeUnlessClosed(gate: Int32Array | undefined, write: () => void): boolean {
  if (!gate) {
    write();
    return true;
  }
  if (Atomics.compareExchange(gate, 0, FREE, WRITING) !== FREE) return false;
  try {
    write();
  } finally {
    // freed only if nobody is shutting it; one the process waits for is shut here, so that no later write takes it
    // first; one shut meanwhile (shutJournalGate gave up waiting) stays shut
    if (Atomics.compareExchange(gate, 0, WRITING, FREE) !== WRITING) Atomics.compareExchange(gate, 0, CLOSING, CLOSED);
    Atomics.notify(gate, 0);
  }
  return true;
}

/**
 * The process's side: waits for a write under way to end (`timeoutMs` at most: a write that takes longer, on a slow
 * network disk, may still land after the close), then lets no more through.
 */
export function shutJournalGate(gate: Int32Array, timeoutMs = 5000): void {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const was = Atomics.compareExchange(gate, 0, FREE, CLOSED);
    if (was === FREE || was === CLOSED) return;
    // a write under way: it shuts the gate as it ends
    Atomics.compareExchange(gate, 0, WRITING, CLOSING);
    if (performance.now() >= until) {
      Atomics.store(gate, 0, CLOSED);
      return;
    }
    Atomics.wait(gate, 0, CLOSING, 50);
  }
}

/**
 * Marks the journal of `partial` closed, as it stands (its images on the disk): left for the next decoding, whichever
 * process runs it. Quiet when it cannot (the journal is the last one written either way). Returns how many images
 * the journal counts (what the next decoding goes on from), 0 when there is none.
 */
export function closeJournal(partial: string): number {
  const j = readJournal(journalPath(partial));
  if (!j) return 0;
  try {
    // a temporary file of its own: the decoding thread may be writing its journal at the same time
    storeJournal(partial, { ...j, closed: true }, journalFiles(partial)[2]!);
  } catch {
    /* the open journal stands */
  }
  return j.done;
}

export function removePartial(partial: string): void {
  for (const p of [partial, ...journalFiles(partial)]) removeQuietly(p);
}

/** Removes a file, saying nothing when it cannot (another user's, in a shared folder): clearing up never stops a decoding. */
function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    /* left */
  }
}

/** Removes every partial decoding of `cachePath` that nobody writes any more (the cache is in place: they are of no use). */
export function removeAbandoned(cachePath: string): void {
  for (const { partial, journal } of partials(cachePath)) {
    if (journal === null ? ageMs(partial) > STALE_MS : abandoned(journal, journalPath(partial))) removePartial(partial);
  }
}

/**
 * Partial files in the cache folder `dir` that nobody writes, but `except` (the one the decoding about to start
 * takes up), with their bytes: named when the disk is short of room (of a folder since changed, another size, the
 * other split, or further leftovers of this cache).
 */
export function strayPartials(dir: string, except: readonly string[] = []): { files: string[]; bytes: number } {
  return filesWithBytes(dir, (n) => {
    if (!/\.u8\.partial-/.test(n) || n.includes('.json') || except.includes(join(dir, n))) return false;
    const journal = readJournal(join(dir, `${n}.json`));
    return journal === null || abandoned(journal, join(dir, `${n}.json`));
  });
}

/** The files of folder `dir` whose names `keep` takes, with their bytes in all; none when the folder does not read. */
export function filesWithBytes(dir: string, keep: (name: string) => boolean): { files: string[]; bytes: number } {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return { files: [], bytes: 0 };
  }
  const files: string[] = [];
  let bytes = 0;
  for (const n of names) {
    if (!keep(n)) continue;
    try {
      bytes += statSync(join(dir, n)).size;
      files.push(join(dir, n));
    } catch {
      /* gone meanwhile */
    }
  }
  return { files, bytes };
}
