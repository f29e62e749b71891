/**
 * A decoding into the cache that was cut short goes on where it stopped. ILSVRC-2012's training set decodes
 * into about 250 GB for the paper preset, for most of an hour: a Ctrl-C, a crash or a full disk should not
 * cost it all.
 *
 * While decoding, a process writes the cache file under `<cache>.partial-<pid>` and, every few seconds, a
 * journal beside it (`<cache>.partial-<pid>.json`): how many of the listing's images are done, how many are
 * in the file, the ones skipped and the colour sums so far. Images are written before the journal that counts
 * them, so the file holds at least what the journal says (a process killed between the two has written a
 * little more, cut off when the decoding goes on). The next decoding of the same cache (same folder
 * contents, size and key: decoded-cache.ts's cachePathFor) takes over the partial file of a process that is
 * gone by renaming it to its own name, an atomic claim, so two processes never write one file.
 */
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { DataWarning } from './errors.js';
import type { AccumulatorState } from './stats.js';
import { processAlive } from '../process-alive.js';

const VERSION = 1;

export interface DecodeJournal {
  readonly version: number;
  /** The process that wrote it (the one writing the file is named in the file's name). */
  readonly pid: number;
  /** The listing's length and the decoded size: a journal of another listing is not taken over. */
  readonly items: number;
  readonly size: number;
  /** Items of the listing done (decoded and written, or skipped), from the first. */
  readonly done: number;
  /** Images in the file (done less skipped). */
  readonly written: number;
  readonly skipped: readonly DataWarning[];
  /** The colour sums over the written images (a training split), else null. */
  readonly stats: AccumulatorState | null;
}

/** This process's partial file for the cache file `cachePath`. */
export const partialPath = (cachePath: string, pid = process.pid): string => `${cachePath}.partial-${pid}`;
export const journalPath = (partial: string): string => `${partial}.json`;

/** Partial files this process is writing now: never claimed by another decoding in this process. */
const writing = new Set<string>();

export function markWriting(partial: string, on: boolean): void {
  if (on) writing.add(partial);
  else writing.delete(partial);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function readJournal(path: string): DecodeJournal | null {
  try {
    const j = JSON.parse(readFileSync(path, 'utf8')) as DecodeJournal;
    return j.version === VERSION && Number.isInteger(j.done) && Number.isInteger(j.written) ? j : null;
  } catch {
    return null;
  }
}

interface Leftover {
  readonly partial: string;
  readonly journal: DecodeJournal;
}

/** Partial decodings of `cachePath` whose process is gone (or is this one, between decodings), the furthest first. */
function leftovers(cachePath: string): Leftover[] {
  const dir = dirname(cachePath);
  const prefix = `${basename(cachePath)}.partial-`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const found: Leftover[] = [];
  for (const n of names) {
    // the writer's pid is in the name (a claimed journal keeps its first writer's until it is written again)
    const m = new RegExp(`^${escape(prefix)}(\\d+)\\.json$`).exec(n);
    if (!m) continue;
    const partial = join(dir, n.slice(0, -'.json'.length));
    const journal = readJournal(join(dir, n));
    if (!journal || writing.has(partial) || !existsSync(partial)) continue;
    const pid = Number(m[1]);
    // this process's own, between two decodings, is taken up; another live process's is left alone
    if (pid !== process.pid && processAlive(pid)) continue;
    found.push({ partial, journal });
  }
  return found.sort((a, b) => b.journal.done - a.journal.done);
}

/** How far the furthest leftover partial decoding of `cachePath` got, or null when there is none (for the room check and the log). */
export function leftoverProgress(cachePath: string, items: number, size: number): { done: number; written: number } | null {
  const l = leftovers(cachePath).find((x) => x.journal.items === items && x.journal.size === size);
  return l ? { done: l.journal.done, written: l.journal.written } : null;
}

/**
 * Takes over the furthest leftover partial decoding of `cachePath` for a listing of `items` images at
 * `size`: its file renamed to this process's partial name, its journal returned; null when there is none.
 * Leftovers of another listing or size are removed (the key covers both: they are damaged).
 */
export function claimPartial(cachePath: string, items: number, size: number): { partial: string; journal: DecodeJournal } | null {
  const mine = partialPath(cachePath);
  for (const l of leftovers(cachePath)) {
    if (l.journal.items !== items || l.journal.size !== size) {
      removePartial(l.partial);
      continue;
    }
    if (l.partial !== mine) {
      try {
        // atomic: of two processes claiming one leftover, one gets it and the other ENOENT
        renameSync(l.partial, mine);
      } catch {
        continue;
      }
      // its journal comes along (a process stopped before it writes its own leaves the two together)
      try {
        renameSync(journalPath(l.partial), journalPath(mine));
      } catch {
        removePartial(mine);
        continue;
      }
    }
    return { partial: mine, journal: l.journal };
  }
  return null;
}

/** Writes the journal of `partial` (under a temporary name, then renamed: never half a journal). */
export function writeJournal(partial: string, journal: Omit<DecodeJournal, 'version' | 'pid'>): void {
  const path = journalPath(partial);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify({ version: VERSION, pid: process.pid, ...journal }));
  renameSync(tmp, path);
}

export function removePartial(partial: string): void {
  for (const p of [partial, journalPath(partial), `${journalPath(partial)}.tmp`]) rmSync(p, { force: true });
}
