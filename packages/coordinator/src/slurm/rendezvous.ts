/**
 * How the three tasks of a job step find each other: files in the run directory, which is on storage every
 * node sees (it has to be: the checkpoints a requeued job resumes from are there).
 *
 * RUN_DIR/slurm/JOB.RESTART.STEP/ (mode 700), one folder per attempt of the step, so that a requeued job
 * never reads the addresses of its previous attempt:
 * - token: the attempt's random token (mode 600), made by whichever task comes first;
 * - worker0, worker1: each worker's HOST:PORT, once it listens (on a port the OS chose);
 * - worker0.node, worker1.node: the node each worker task runs on (the batch scripts name it when a GPU is lost);
 * - worker0.exit, worker1.exit, coordinator.exit: a task's exit code, written as it exits.
 * Every file is written to a temporary name first and then linked or renamed into place, so that a reader
 * never sees half a file.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileError, makeDir } from '@alexnet-mp/core';
import { randomToken } from '@alexnet-mp/worker';
import type { SlurmTask } from './env.js';

export const attemptName = (t: Pick<SlurmTask, 'jobId' | 'restartCount' | 'stepId'>): string => `${t.jobId}.${t.restartCount}.${t.stepId}`;

/** The rendezvous folder of this attempt, created (mode 700) if missing. */
export function rendezvousDir(runDir: string, t: Pick<SlurmTask, 'jobId' | 'restartCount' | 'stepId'>): string {
  // core's makeDir: a folder that cannot be made (under /proc, a read-only disk, a file in the way) is one line, never a loop
  makeDir(runDir, 'the run directory');
  const parent = path.join(runDir, 'slurm');
  const dir = path.join(parent, attemptName(t));
  makeDir(dir, 'the rendezvous folder');
  try {
    fs.chmodSync(parent, 0o700);
    fs.chmodSync(dir, 0o700);
  } catch (e) {
    throw fileError('make private (mode 700)', dir, e);
  }
  return dir;
}

const tmpName = (file: string) => `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;

/** Writes `file` whole or not at all (temporary file, then rename). */
export function writeAtomic(file: string, text: string, mode = 0o600): void {
  const tmp = tmpName(file);
  fs.writeFileSync(tmp, text, { mode });
  fs.renameSync(tmp, file);
}

/**
 * The attempt's token file: made by the first task to get here (a hard link fails if the name exists, so
 * exactly one token wins, on NFS too), read by all. Readable by the job's user only.
 */
export function jobTokenFile(dir: string): string {
  const file = path.join(dir, 'token');
  if (!fs.existsSync(file)) {
    const tmp = tmpName(file);
    fs.writeFileSync(tmp, randomToken() + '\n', { mode: 0o600 });
    try {
      fs.linkSync(tmp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  return file;
}

/** Reads a rendezvous file; null while it is not there. */
export function readEntry(dir: string, name: string): string | null {
  try {
    return fs.readFileSync(path.join(dir, name), 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Writes this task's exit code (call from a process 'exit' handler: synchronous). */
export function writeExit(dir: string, role: string, code: number): void {
  try {
    writeAtomic(path.join(dir, `${role}.exit`), `${code}\n`, 0o644);
  } catch {
    // the run folder is gone or full: the other tasks end with the step anyway
  }
}

/**
 * Removes the folders of attempts that have ended: those whose coordinator wrote its exit code, and the earlier
 * attempts of this job (a lower restart count: Slurm ended them before requeueing the job, even where a lost node
 * or a killed coordinator wrote no exit code). Another job's folder without an exit code is kept: that job may
 * still run.
 */
export function removeEndedAttempts(runDir: string, current: string): void {
  const parent = path.join(runDir, 'slurm');
  const mine = /^(.+)\.(\d+)\.([^.]+)$/.exec(path.basename(current));
  for (const name of fs.readdirSync(parent)) {
    const dir = path.join(parent, name);
    if (dir === current) continue;
    const theirs = /^(.+)\.(\d+)\.([^.]+)$/.exec(name);
    const earlierOfThisJob = mine !== null && theirs !== null && theirs[1] === mine[1] && Number(theirs[2]) < Number(mine[2]);
    if (!earlierOfThisJob && !fs.existsSync(path.join(dir, 'coordinator.exit'))) continue;
    // not an attempt's folder at all (gpu-lost, a file the user put there): left alone
    if (theirs === null || !fs.statSync(dir).isDirectory()) continue;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Polls until every name has a file, or until `abort` says why not (e.g. a worker's exit file), or the time
 * is up; resolves with the files' contents.
 */
export async function waitForEntries(dir: string, names: readonly string[], timeoutMs: number, abort: () => string | null, pollMs = 200): Promise<string[]> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const got = names.map((n) => readEntry(dir, n));
    if (got.every((g) => g !== null && g !== '')) return got as string[];
    const why = abort();
    if (why !== null) throw new RendezvousError(why);
    if (performance.now() >= until) {
      const missing = names.filter((_, i) => got[i] === null || got[i] === '');
      throw new RendezvousError(`${missing.join(' and ')} did not appear in ${dir} within ${(timeoutMs / 1000).toFixed(0)} s: did the other tasks start (srun --ntasks=3), and do all nodes see the run folder (it must be on shared storage)?`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export class RendezvousError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RendezvousError';
  }
}
