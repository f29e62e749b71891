/**
 * The temporary files of a short command (features' rows, evaluate's --wrong list), written beside their
 * target and renamed onto it at the end, are removed when the command is stopped by a signal (Ctrl-C,
 * SIGTERM, SIGHUP) or exits before that end (process.exit: its output's reader gone): neither runs its
 * `finally` blocks, and features' rows can run to gigabytes. The handlers are there only while such a file is: the signal then ends the process as
 * it would have (its default action, re-raised), with the files gone. Not for the training processes,
 * which stop on a signal at a step's end with a checkpoint (their own handlers).
 */
import fs from 'node:fs';
import path from 'node:path';
import { replaceFile, tempBeside } from '@alexnet-mp/core';
import { standardStream } from './cli/output-gone.js';

export { standardStream };

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const live = new Set<string>();

function removeAll(): void {
  for (const f of live) fs.rmSync(f, { force: true });
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  removeAll();
  unlisten();
  // the signal's own ending (exit status 128 + its number, as the shell sees it)
  process.kill(process.pid, signal);
}

function unlisten(): void {
  for (const s of SIGNALS) process.off(s, onSignal);
  process.off('exit', removeAll);
}

/**
 * Removes `file` if a signal stops the process, or it exits (process.exit: a reader of its output gone, an
 * error reported), before the returned function is called (the file renamed or removed).
 */
export function removeOnSignal(file: string): () => void {
  if (live.size === 0) {
    for (const s of SIGNALS) process.on(s, onSignal);
    process.on('exit', removeAll);
  }
  live.add(file);
  return () => {
    live.delete(file);
    if (live.size === 0) unlisten();
  };
}

/**
 * Writes a short command's output file whole (a picture, a CSV, an event file): into a temporary file beside it,
 * renamed onto it once complete, so that a failed write (a full disk) leaves the file as it was, never a part
 * of one, with the mode the file had. Something other than a regular file (`--csv /dev/stdout`, a pipe) is
 * written to directly; a symbolic link's target is replaced, not the link. A signal during the write ends the
 * process once the write is done (the handlers of removeOnSignal, there while it lasts), with its temporary
 * file .NAME.PID.tmp renamed or removed.
 */
export function writeWhole(given: string, data: string | Uint8Array): void {
  const target = outputTarget(given);
  if (target.special) {
    const fd = standardStream(target.file);
    // this process's own stdout or stderr through its descriptor (redirected to a file, a second opening would
    // write over what the command printed); anything else at its end
    if (fd !== null) fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    else fs.writeFileSync(target.file, data, { flag: 'a' });
    return;
  }
  const done = removeOnSignal(tempBeside(target.file));
  try {
    replaceFile(target.file, data);
    if (target.mode !== null) fs.chmodSync(target.file, target.mode);
  } finally {
    done();
  }
}

/**
 * Where an output named `given` goes: its symbolic link's target when it has one; whether it is to be written to
 * directly rather than replaced (a device, a pipe, anything named under /dev or /proc: /dev/stdout is a regular
 * file when the output is redirected to one, which must not be replaced); the permission bits of an existing
 * file (kept).
 */
export function outputTarget(given: string): { file: string; special: boolean; mode: number | null } {
  const direct = { file: given, special: true, mode: null };
  if (/^\/(dev|proc)\//.test(path.resolve(given))) return direct;
  let st: fs.Stats;
  try {
    st = fs.statSync(given);
  } catch {
    return { file: given, special: false, mode: null };
  }
  // a folder is no output: the caller's checks say so
  if (st.isDirectory()) return { file: given, special: false, mode: null };
  if (!st.isFile()) return direct;
  try {
    return { file: fs.realpathSync(given), special: false, mode: st.mode & 0o7777 };
  } catch {
    return direct;
  }
}
