/**
 * Writing the run directory's small files so that a kill at any moment
 * leaves no half-written file: run.json is replaced atomically (temporary
 * file, fsync, rename), metrics.jsonl is appended one line per write, and a
 * torn last line (a crash or a full disk in the middle of a write) is cut off
 * when the file is opened again. Checkpoints have their own atomic writer (core).
 */
import fs from 'node:fs';
import path from 'node:path';
import { diskFull, fsReason, listCheckpoints, replaceFile } from '@alexnet-mp/core';
import { UserError } from './cli/errors.js';

/** Cuts a JSON-lines file back to its last complete line; returns the bytes dropped (0 when it was whole or absent). */
export function repairTornTail(file: string): number {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r+');
  } catch {
    return 0;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return 0;
    // read back from the end until a newline
    const chunk = Buffer.alloc(Math.min(size, 64 * 1024));
    for (let end = size; end > 0; ) {
      const start = Math.max(0, end - chunk.length);
      const n = fs.readSync(fd, chunk, 0, end - start, start);
      const i = chunk.subarray(0, n).lastIndexOf(0x0a);
      if (i >= 0) {
        const keep = start + i + 1;
        if (keep < size) fs.ftruncateSync(fd, keep);
        return size - keep;
      }
      end = start;
    }
    fs.ftruncateSync(fd, 0);
    return size;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A run folder's run.json, as far as its readers need it: the run id and the ALEXNET_LOCK_OWNER it ran under (each
 * undefined when it records none); null when there is no run.json that reads.
 */
export function readRunJson(runDir: string): { runId: string | undefined; lockOwner: string | undefined } | null {
  try {
    const run = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')) as { run_id?: unknown; lock_owner?: unknown };
    return { runId: typeof run.run_id === 'string' ? run.run_id : undefined, lockOwner: typeof run.lock_owner === 'string' ? run.lock_owner : undefined };
  } catch {
    return null;
  }
}

/** The first `maxBytes` of a file (fewer when it is shorter); null when it cannot be read. */
export function headOf(file: string, maxBytes = 64 * 1024): Buffer | null {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(maxBytes);
      return buf.subarray(0, fs.readSync(fd, buf, 0, maxBytes, 0));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
}

/** The last non-empty line of a text file, read from its end (at most `maxBytes`); null when the file is absent, empty or not a file that reads. */
export function lastLineOf(file: string, maxBytes = 64 * 1024): string | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const n = Math.min(size, maxBytes);
    const buf = Buffer.alloc(n);
    fs.readSync(fd, buf, 0, n, size - n);
    const line = buf.toString('utf8').trimEnd().split('\n').at(-1) ?? '';
    return line === '' ? null : line;
  } catch {
    return null; // not a file that reads (a folder of that name)
  } finally {
    fs.closeSync(fd);
  }
}

/** Replaces `file` with `data` atomically (core's replaceFile); a failure is one clear line. */
export function writeFileAtomic(file: string, data: string): void {
  try {
    replaceFile(file, data);
  } catch (e) {
    throw runDirError(file, e);
  }
}

/** A failed write into the run directory as one clear line (a full disk is the usual cause). */
export function runDirError(file: string, e: unknown): UserError {
  return new UserError(`cannot write ${file}: ${fsReason(e)}${fullDiskAdvice(e, path.dirname(file))}`);
}

/**
 * What to do after a write into the run folder `runDir` failed, when a full disk failed it (else ''): free
 * space, then --resume where the run has a checkpoint to go on from, else start the run again.
 */
export function fullDiskAdvice(e: unknown, runDir: string): string {
  if (!diskFull(e)) return '';
  let checkpoints = 0;
  try {
    checkpoints = listCheckpoints(path.join(runDir, 'checkpoints')).length;
  } catch {
    // no checkpoints/ folder, or one that cannot be listed: nothing to resume from
  }
  return checkpoints > 0 ? ' (the checkpoints already written are intact; free space, then --resume)' : ' (the run has no checkpoint yet: free space, then start it again)';
}

/** The events of metrics.jsonl that end a session (the dashboard's feed reads a session's end from them too). */
export const SESSION_END_EVENTS: readonly string[] = ['done', 'stopped', 'failed'];

/**
 * How a run folder's latest session ended, from the last 256 KiB of its metrics.jsonl: the done, stopped or
 * failed line after the last run line; 'running' when there is none (still training, or killed); null: no log.
 */
export function lastSessionEnd(runDir: string): 'done' | 'stopped' | 'failed' | 'running' | null {
  const file = path.join(runDir, 'metrics.jsonl');
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const n = Math.min(size, 256 << 10);
      const buf = Buffer.alloc(n);
      fs.readSync(fd, buf, 0, n, size - n);
      text = buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
  const ends = SESSION_END_EVENTS.map((e) => [e, text.lastIndexOf(`"event":"${e}"`)] as const);
  const [event, at] = ends.reduce((a, b) => (b[1] > a[1] ? b : a));
  return at >= 0 && at > text.lastIndexOf('"event":"run"') ? (event as 'done' | 'stopped' | 'failed') : 'running';
}

/** Whether a run folder's latest session has ended (lastSessionEnd: done, stopped or failed); null: no log. */
export function lastSessionEnded(runDir: string): boolean | null {
  const end = lastSessionEnd(runDir);
  return end === null ? null : end !== 'running';
}

/**
 * The evaluation of `step` the run folder's metrics.jsonl has after the last checkpoint line of `checkpoint`
 * (the same file name at that step), as its top-1 error: a checkpoint is written before the evaluation that
 * follows it and says the evaluation is still due, so a run resumed from it would evaluate again what was
 * evaluated already. Reads the log back from its end (a long run's log is large; the checkpoint line is usually
 * near the end); null when there is no log, no such checkpoint line, or no such evaluation after it.
 */
export function evaluationLoggedAfter(runDir: string, checkpoint: string, step: number): { readonly top1Error: number } | null {
  let fd: number;
  try {
    fd = fs.openSync(path.join(runDir, 'metrics.jsonl'), 'r');
  } catch {
    return null;
  }
  const name = path.basename(checkpoint);
  try {
    const size = fs.fstatSync(fd).size;
    let evaluated: { readonly top1Error: number } | null = null; // the earliest after the lines read so far
    let rest = Buffer.alloc(0); // the start of the line cut by the last chunk read, completed by the next one back
    const chunk = Buffer.alloc(Math.min(size, 1 << 20));
    for (let end = size; end > 0; ) {
      const start = Math.max(0, end - chunk.length);
      const n = fs.readSync(fd, chunk, 0, end - start, start);
      const text = Buffer.concat([chunk.subarray(0, n), rest]);
      const cut = start > 0 ? text.indexOf(0x0a) : -1;
      rest = cut >= 0 ? Buffer.from(text.subarray(0, cut)) : Buffer.alloc(0);
      const lines = text.subarray(cut + 1).toString('utf8').split('\n');
      for (let i = lines.length - 1; i >= 0; i--) {
        const line = lines[i]!;
        if (!line.startsWith('{"event":"eval"') && !line.startsWith('{"event":"checkpoint"')) continue;
        let e: { event?: unknown; step?: unknown; file?: unknown; top1_error?: unknown };
        try {
          e = JSON.parse(line) as typeof e;
        } catch {
          continue; // a torn line
        }
        if (e.step !== step) continue;
        if (e.event === 'eval') evaluated = typeof e.top1_error === 'number' ? { top1Error: e.top1_error } : evaluated;
        else if (typeof e.file === 'string' && path.basename(e.file) === name) return evaluated;
      }
      end = start;
    }
    return null;
  } finally {
    fs.closeSync(fd);
  }
}
