/**
 * Errors that are the user's to fix: printed as one clear line, never as a
 * stack trace. Anything else is a bug and keeps its stack.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

const userErrorNames = new Set(['UserError', 'NoWebGPUError', 'AdapterIndexError', 'AdapterChoiceError', 'BackendFallbackError', 'ArrayTooLargeError', 'DataError', 'CheckpointError', 'FileError', 'EnvSettingError', 'CpuAffinityError']);

/** Whether `err` is the user's to fix (said in one line), not a bug (said with its stack). */
export function isUserError(err: unknown): err is Error {
  return err instanceof Error && (userErrorNames.has(err.name) || /^unknown preset/.test(err.message));
}

export function reportAndExit(err: unknown): never {
  if (isUserError(err)) {
    process.stderr.write(`alexnet: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`alexnet: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
