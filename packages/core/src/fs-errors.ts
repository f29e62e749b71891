/**
 * File and disk errors as one line that names the path and the reason ("cannot write runs/r1/metrics.jsonl:
 * no space left on the device"), and a bounded `mkdir -p`.
 *
 * Node's `fs.mkdirSync(dir, { recursive: true })` can loop forever where the kernel answers ENOENT for a
 * folder that cannot exist (under /proc); `makeDir` makes one folder at a time, at most MAX_DEPTH of them.
 */
import fs from 'node:fs';
import path from 'node:path';

/** A file or folder that cannot be read, written or made: the user's to fix (one line, exit 2). */
export class FileError extends Error {
  constructor(readonly path: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FileError';
  }
}

const REASONS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a part of the path is a file, not a folder',
  ENOENT: 'no such file or folder',
  EISDIR: 'it is a folder',
  EEXIST: 'it already exists',
  EMFILE: 'too many open files in this process',
  ENFILE: 'too many open files on this system',
  EIO: 'input/output error',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
  EFBIG: 'the file is too large',
  ENOTFILE: 'it is not a regular file but a device, a pipe or a socket',
};

/** The reason of a file system error in words (its code in brackets), or its message. */
export function fsReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code && REASONS[code]) return `${REASONS[code]} (${code})`;
  return e instanceof Error ? e.message : String(e);
}

/**
 * Throws, as fs would (an error with a code: ENOENT, or ENOTFILE, this module's, for a device, a pipe or a
 * socket, which a read would wait on or never finish), unless `file` is a regular file or a folder (whose read
 * fails on its own, EISDIR). For the files a command reads whole, named by a user: `/dev/zero`, a FIFO.
 */
export function checkRegularFile(file: string): void {
  const st = fs.statSync(file);
  if (!st.isFile() && !st.isDirectory()) throw Object.assign(new Error(`${file}: not a regular file`), { code: 'ENOTFILE', path: file });
}

/** A regular file's bytes (readFileSync after checkRegularFile): never a wait on a pipe or an endless device. */
export function readRegularFile(file: string): Buffer {
  checkRegularFile(file);
  return fs.readFileSync(file);
}

/** Whether the error is a full disk or an exhausted quota. */
export const diskFull = (e: unknown): boolean => ['ENOSPC', 'EDQUOT'].includes((e as NodeJS.ErrnoException | null)?.code ?? '');

/** "cannot VERB PATH: REASON[; HINT]" as a FileError. */
export function fileError(verb: string, file: string, e: unknown, hint?: string): FileError {
  if (e instanceof FileError) return e;
  return new FileError(file, `cannot ${verb} ${file}: ${fsReason(e)}${hint ? `; ${hint}` : ''}`, { cause: e });
}

const MAX_DEPTH = 64;

/** `mkdir -p DIR`, one folder at a time and at most 64 of them; a FileError naming the folder and why when it cannot be made. */
export function makeDir(dir: string, what = 'the folder'): void {
  const missing: string[] = [];
  let d = path.resolve(dir);
  for (;;) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fileError(`make ${what}`, dir, e);
    }
    if (st) {
      if (!st.isDirectory()) throw new FileError(dir, `cannot make ${what} ${dir}: ${d} is a file, not a folder`);
      break;
    }
    missing.push(d);
    const up = path.dirname(d);
    if (up === d || missing.length > MAX_DEPTH) throw new FileError(dir, `cannot make ${what} ${dir}: more than ${MAX_DEPTH} folders to make`);
    d = up;
  }
  for (const m of missing.reverse()) {
    try {
      fs.mkdirSync(m);
    } catch (e) {
      // made meanwhile by another process: fine
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && fs.statSync(m).isDirectory()) continue;
      throw fileError(`make ${what}`, dir, e);
    }
  }
}

/** The bytes an unprivileged process may still write on the file system holding `dir` (statfs's bavail), or null when it cannot be told. */
export function freeBytes(dir: string): number | null {
  try {
    const st = fs.statfsSync(path.resolve(dir));
    return st.bavail * st.bsize;
  } catch {
    return null;
  }
}
