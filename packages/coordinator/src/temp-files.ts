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
import { replaceFile } from '@alexnet-mp/core';

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
 * of one. Something other than a regular file (`--csv /dev/stdout`, a pipe) is written to directly; a symbolic
 * link's target is replaced, not the link.
 */
export function writeWhole(given: string, data: string | Uint8Array): void {
  let special = false;
  let file = given;
  try {
    special = !fs.statSync(given).isFile();
    file = fs.realpathSync(given);
  } catch {
    // not there yet
  }
  if (special) {
    fs.writeFileSync(file, data);
    return;
  }
  const kept = removeOnSignal(path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`));
  try {
    replaceFile(file, data);
  } finally {
    kept();
  }
}
