/**
 * Errors and warnings of the data loaders.
 *
 * A `DataError` is the user's to fix (a missing or empty folder, a file in the
 * wrong format, a failed download or checksum): its message names the path
 * (or URL) and says what was expected, so a command line can print it as one
 * line. A `DataWarning` is a problem the loader survives (an unreadable image
 * is skipped): it is counted and reported, never a crash.
 */
import { diskFull, fileError, makeDir } from '../fs-errors.js';

export class DataError extends Error {
  /** The file, folder or URL the error is about. */
  readonly path: string;

  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DataError';
    this.path = path;
  }
}

export interface DataWarning {
  /** The file (or folder) concerned. */
  readonly path: string;
  /** What went wrong, e.g. "VipsJpeg: premature end of JPEG image (skipped)". */
  readonly message: string;
}

export type WarningSink = (w: DataWarning) => void;

const CACHE_HINT = 'set --cache-dir (or ALEXNET_CACHE_DIR) to a writable folder';

/** A file error in the cache (a folder that cannot be made, a full disk) as a DataError: one line naming the path and why. */
export function cacheError(verb: string, path: string, e: unknown): DataError {
  if (e instanceof DataError) return e;
  return new DataError(path, `${fileError(verb, path, e).message}; ${CACHE_HINT}${diskFull(e) ? ' with room' : ''}`, { cause: e });
}

/** `mkdir -p` of a cache folder (bounded: fs-errors.ts's makeDir); a DataError when it cannot be made. */
export function makeCacheDir(dir: string): void {
  try {
    makeDir(dir, 'the cache folder');
  } catch (e) {
    throw new DataError(dir, `${(e as Error).message}; ${CACHE_HINT}`, { cause: e });
  }
}
