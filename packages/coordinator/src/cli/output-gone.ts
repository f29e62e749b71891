/**
 * What a command does when its output goes. Short commands (predict, summary, inspect ...) piped into `| head`
 * end quietly when the reader is gone, as Unix tools do (exit status 141, 128 + SIGPIPE), instead of printing a
 * stack trace. Training outlives its terminal: when whatever reads this process's output goes away (the
 * terminal closed, an SSH session dropped, `| tee log` killed), writing to stdout or stderr fails with EPIPE
 * or EIO, which Node throws as an unhandled 'error' event that would end a run of days without its
 * checkpoint. The long-running commands (launch, coordinator, worker, and dashboard, which serves its pages)
 * keep going instead: the run directory has every line that matters (metrics.jsonl, the processes' logs),
 * and later writes to the lost stream are dropped.
 */
import fs from 'node:fs';
import path from 'node:path';

const GONE = new Set(['EPIPE', 'EIO', 'ECONNRESET', 'ERR_STREAM_DESTROYED']);

/** The exit status of a command whose reader went away: 128 + SIGPIPE, as a Unix tool killed by it. */
const OUTPUT_GONE_STATUS = 141;

/** Whether an error of stdout or stderr is a lost reader (a closed pipe, a gone terminal). */
const isOutputGone = (e: NodeJS.ErrnoException): boolean => GONE.has(e.code ?? '');

/** stdout's or stderr's own error (only theirs: a file's EIO is the file's, said as such). */
function endQuietly(e: NodeJS.ErrnoException): void {
  if (!isOutputGone(e)) {
    // not a lost reader: as Node would have it
    process.nextTick(() => {
      throw e;
    });
    return;
  }
  // temporary files go with the process (temp-files.ts removes them on exit)
  process.exit(OUTPUT_GONE_STATUS);
}

/** Every command's default (cli/main.ts): a lost reader of stdout or stderr ends the command quietly with status 141. */
export function endQuietlyOnLostOutput(): void {
  process.stdout.on('error', endQuietly);
  process.stderr.on('error', endQuietly);
}

/** 1 or 2 for an output named /dev/stdout or /dev/stderr (or /proc/self/fd/1, 2, /dev/fd/1, 2): this process's own; else null. */
export function standardStream(file: string): 1 | 2 | null {
  const m = /^\/(?:dev\/(?:std(out|err)|fd\/([12]))|proc\/self\/fd\/([12]))$/.exec(path.resolve(file));
  if (!m) return null;
  return m[1] === 'out' || m[2] === '1' || m[3] === '1' ? 1 : 2;
}

/**
 * Whether `file` is where this process's stdout goes (`/dev/stdout` and its other names, or the file stdout is
 * redirected to): a command writing its output there says what it wrote on stderr, so that the output stays whole.
 */
export function isStdout(file: string): boolean {
  if (standardStream(file) === 1) return true;
  try {
    const a = fs.statSync(file);
    const b = fs.fstatSync(1);
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}

/** Keeps the process running when stdout or stderr loses its reader; `onGone` is told once, with the stream's name and the error's code. */
export function surviveLostOutput(onGone: (stream: 'stdout' | 'stderr', code: string) => void = () => {}): void {
  process.stdout.off('error', endQuietly);
  process.stderr.off('error', endQuietly);
  let told = false;
  for (const [name, s] of [['stdout', process.stdout], ['stderr', process.stderr]] as const) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (!isOutputGone(e)) {
        // not a lost reader: as Node would have it
        process.nextTick(() => {
          throw e;
        });
        return;
      }
      if (told) return;
      told = true;
      onGone(name, e.code!);
    });
  }
}

/** The environment variable by which launch tells a worker the file it keeps that worker's lines in (RUN_DIR/workerN.log). */
export const LAUNCH_LOG_ENV = 'ALEXNET_LAUNCH_LOG';

/**
 * From now on this process's output lines are appended to `file` (RUN_DIR/coord.log, RUN_DIR/workerN.log) instead of its stdout and
 * stderr, whose reader, launch, is gone: the lines that say how the run ended are kept where launch kept the
 * others. Step lines are left out, as launch leaves them out (metrics.jsonl has them). Quiet when it cannot.
 */
export function writeOutputTo(file: string): void {
  let fd: number;
  try {
    fd = fs.openSync(file, 'a');
  } catch {
    return;
  }
  for (const stream of [process.stdout, process.stderr]) {
    stream.write = ((chunk: string | Uint8Array, encoding?: unknown, callback?: unknown) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      const kept = text
        .split(/(?<=\n)/)
        .filter((l) => !l.startsWith('{"event":"step"'))
        .join('');
      try {
        if (kept !== '') fs.writeSync(fd, kept);
      } catch {
        /* a full disk: the lines go, the run's end does not wait for them */
      }
      const done = typeof encoding === 'function' ? encoding : callback;
      if (typeof done === 'function') (done as () => void)();
      return true;
    }) as typeof stream.write;
  }
}
