/**
 * Errors and warnings of the data loaders.
 *
 * A `DataError` is the user's to fix (a missing or empty folder, a file in the
 * wrong format, a failed download or checksum): its message names the path
 * (or URL) and says what was expected, so a command line can print it as one
 * line. A `DataWarning` is a problem the loader survives (an unreadable image
 * is skipped): it is counted and reported, never a crash.
 */
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
