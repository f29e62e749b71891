/**
 * One run per run directory.
 *
 * - A lock file, RUN_DIR/run.lock, names the process that holds the directory (host, pid, since when). It is
 *   made whole or not at all (written beside it, then hard-linked into place, which fails when one exists).
 *   A lock whose holder is gone (same host, that pid no longer alive) is broken, and said; so is one of an
 *   earlier incarnation of the run on another host (a requeued Slurm job's earlier attempt, a process of the same
 *   ALEXNET_LOCK_OWNER: a Kubernetes Job's earlier pod); a lock of a live process, or of another host, is a
 *   refusal naming it. The coordinator that `alexnet launch` starts works
 *   under its launcher's lock (the holder is its parent process).
 * - A new run in a directory that holds another run's checkpoints is refused unless it resumes that run
 *   (--resume) or starts over (--overwrite: those checkpoints, metrics.jsonl, run.json and the logs go).
 * - Temporary files left by a writer killed mid-write are removed at the start.
 * - The directory is made with a bounded number of attempts (core's makeDir), and every file error is one line.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHECKPOINT_FORMAT, fileError, listCheckpoints, makeDir, processAlive, removeStrayTemporaries, stepOfFile } from '@alexnet-mp/core';
import { UserError } from './cli/errors.js';
import { checkpointDir, readCheckpointHeader, readCheckpointMetadata } from './resume.js';
import { headOf, readRunJson } from './run-files.js';

export const LOCK_NAME = 'run.lock';

export interface LockHolder {
  readonly host: string;
  readonly pid: number;
  readonly since: string;
  readonly command: string;
  /** Under Slurm: the job and its attempt (SLURM_JOB_ID, SLURM_RESTART_COUNT); a requeued job keeps its id. */
  readonly slurmJob?: string;
  readonly slurmAttempt?: string;
  /**
   * ALEXNET_LOCK_OWNER: what the run belongs to when it may come back on another host (a Kubernetes Job's uid,
   * from the downward API): one of its later processes on another host takes the lock over.
   */
  readonly owner?: string;
}

/** The environment variable naming what a run directory's lock belongs to beyond this process (LockHolder.owner). */
export const LOCK_OWNER_ENV = 'ALEXNET_LOCK_OWNER';

type Succession = Pick<LockHolder, 'slurmJob' | 'slurmAttempt' | 'owner'>;

/** This process's Slurm job and attempt, when it runs in one, and its ALEXNET_LOCK_OWNER when set. */
function successionOf(env: NodeJS.ProcessEnv = process.env): Succession {
  return {
    ...(env.SLURM_JOB_ID ? { slurmJob: env.SLURM_JOB_ID, slurmAttempt: env.SLURM_RESTART_COUNT ?? '0' } : {}),
    ...(env[LOCK_OWNER_ENV] ? { owner: env[LOCK_OWNER_ENV] } : {}),
  };
}

export interface RunDirOptions {
  readonly runDir: string;
  /** The run directory resumed (--resume), if any: its checkpoints are this run's. */
  readonly resume?: string;
  /** --overwrite: another run's checkpoints, metrics and logs are removed instead of refused. */
  readonly overwrite?: boolean;
  /** What takes it ('launch', 'coordinator'), written into the lock. */
  readonly command: string;
  readonly info: (line: string) => void;
}

export interface RunDirLock {
  readonly file: string;
  /** Removes the lock, when this process made it (idempotent). */
  release(): void;
}

function readHolder(file: string): LockHolder | null {
  try {
    const h = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockHolder>;
    return typeof h.host === 'string' && Number.isSafeInteger(h.pid) ? (h as LockHolder) : null;
  } catch {
    return null;
  }
}

const inUse = (runDir: string, file: string, h: LockHolder) =>
  new UserError(`${runDir} is in use by another run: ${h.command}, pid ${h.pid} on ${h.host}, since ${h.since} (${file}; remove it only if that process is gone)`);

/**
 * Refuses, before anything reads the run's files, a run directory whose lock a live process of this host holds
 * (on another host the lock is checked when it is taken): `--resume` of a run still training would otherwise
 * be told of a missing or older checkpoint.
 */
export function checkNotInUse(runDir: string): void {
  const file = path.join(runDir, LOCK_NAME);
  const h = readHolder(file);
  const me = { host: os.hostname(), ...successionOf() };
  if (h && h.host === me.host && h.pid !== process.pid && h.pid !== process.ppid && processAlive(h.pid) && earlierIncarnation(h, me, lockAgeMs(file)) === null) throw inUse(runDir, file, h);
}

/** A held lock is renewed (its file's time set to now) this often... */
export const LOCK_RENEW_MS = 10_000;
/** ...and one of another host not renewed for this long is taken as its holder's being gone (ALEXNET_LOCK_OWNER). */
export const LOCK_STALE_MS = 60_000;

/**
 * Whether the holder is an earlier incarnation of this run that is gone, on whichever host, and in words which: a
 * requeued Slurm job (the same job, a later attempt: Slurm ended the earlier attempt first), or a process of the
 * same ALEXNET_LOCK_OWNER on another host whose lock has not been renewed for LOCK_STALE_MS (a Kubernetes Job's
 * next pod, after a lost node; a pod still terminating renews it, and keeps it). Null when it is not.
 */
function earlierIncarnation(h: LockHolder, me: Succession & { host: string }, lockAgeMs: number): string | null {
  if (h.slurmJob !== undefined && h.slurmJob === me.slurmJob && h.slurmAttempt !== me.slurmAttempt) return `attempt ${h.slurmAttempt} of Slurm job ${h.slurmJob}, on ${h.host}`;
  if (h.owner !== undefined && h.owner === me.owner && h.host !== me.host && lockAgeMs >= LOCK_STALE_MS) {
    return `an earlier process of ${LOCK_OWNER_ENV} ${h.owner}, on ${h.host}, its lock not renewed for ${(lockAgeMs / 1000).toFixed(0)} s`;
  }
  return null;
}

/** How long ago the lock file was last renewed (its modification time); 0 when that cannot be read. */
function lockAgeMs(file: string): number {
  try {
    return Math.max(0, Date.now() - fs.statSync(file).mtimeMs);
  } catch {
    return 0;
  }
}

/** How long a process waits for the same owner's earlier process on another host to let go of the lock (a pod still terminating). */
export const OWNER_WAIT_MS = 300_000;

export interface LockOptions {
  /** How long to wait for the same ALEXNET_LOCK_OWNER's earlier process on another host (default OWNER_WAIT_MS; 0: refuse at once). */
  readonly ownerWaitMs?: number;
  /** The lock was taken over while held (this process went unrenewed too long: paused, or its storage hung); default: say so and exit 1. */
  readonly onLost?: (by: LockHolder) => void;
}

/** Waits without holding the event loop: a signal meanwhile is handled (it stops the command at once, early-stop.ts). */
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Takes RUN_DIR's lock for this process (see the top of the file); a UserError naming the holder when another
 * live process has it. Null when this process works under its parent's lock (launch's coordinator).
 */
export async function lockRunDir(runDir: string, command: string, info: (line: string) => void, lo: LockOptions = {}): Promise<RunDirLock | null> {
  const file = path.join(runDir, LOCK_NAME);
  const me: LockHolder = { host: os.hostname(), pid: process.pid, since: new Date().toISOString(), command, ...successionOf() };
  // its own name on shared storage (containers of several hosts may all be pid 1), and not one the stray-file
  // cleanup of another process starting in the folder takes for a killed writer's (it ends in -HEX, not a pid)
  const tmp = path.join(runDir, `.${LOCK_NAME}.${process.pid}.${me.host}-${randomBytes(4).toString('hex')}.tmp`);
  const waitUntil = performance.now() + (lo.ownerWaitMs ?? OWNER_WAIT_MS);
  let waitSaid = false;
  // under launch (its lock): nothing to write, not even on a full disk
  const parents = readHolder(file);
  if (parents && parents.host === me.host && parents.pid === process.ppid && processAlive(parents.pid)) return null;
  // not left behind by a process that exits meanwhile (a signal while it waits for the lock's holder)
  const dropTmp = () => fs.rmSync(tmp, { force: true });
  try {
    fs.writeFileSync(tmp, JSON.stringify(me) + '\n');
  } catch (e) {
    // made but not written (a full disk): not left behind
    dropTmp();
    throw fileError('write the lock file', file, e);
  }
  process.on('exit', dropTmp);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        fs.linkSync(tmp, file);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw fileError('take the lock', file, e);
      }
      const h = readHolder(file);
      // how long ago the holder last renewed it (read once: the decisions and messages below agree)
      const age = lockAgeMs(file);
      if (h && h.host === me.host && h.pid === process.ppid && processAlive(h.pid)) return null;
      // our own pid, though this process has not taken it: an earlier process of the same pid (a container's pid
      // 1 restarted in its pod) that died without removing it
      if (h && h.host === me.host && h.pid === process.pid) {
        info(`${file}: held by an earlier process with this one's pid (${h.pid}, ${h.command}, since ${h.since}), which is gone: lock broken`);
        fs.rmSync(file, { force: true });
        continue;
      }
      const earlier = h !== null ? earlierIncarnation(h, me, age) : null;
      if (h && ((h.host === me.host && !processAlive(h.pid)) || earlier !== null)) {
        const who = earlier ?? `pid ${h.pid}`;
        info(`${file}: the run that held it (${who}, ${h.command}, since ${h.since}) is gone: lock broken`);
        fs.rmSync(file, { force: true });
        continue;
      }
      if (h?.owner !== undefined && h.owner === me.owner && h.host !== me.host) {
        // the same owner's earlier process, still renewing its lock: a pod still terminating (its checkpoint) or
        // a partitioned node; waited for until it lets go or its lock goes unrenewed for LOCK_STALE_MS
        if (performance.now() < waitUntil) {
          if (!waitSaid) info(`${file}: held by an earlier process of ${LOCK_OWNER_ENV} ${h.owner} (${h.command}, pid ${h.pid} on ${h.host}, its lock renewed ${(age / 1000).toFixed(0)} s ago): waiting for it to end (taken over once not renewed for ${LOCK_STALE_MS / 1000} s; at most ${((lo.ownerWaitMs ?? OWNER_WAIT_MS) / 1000).toFixed(0)} s)`);
          waitSaid = true;
          await sleep(Math.min(2000, Math.max(1, waitUntil - performance.now())));
          attempt = -1;
          continue;
        }
        throw new UserError(
          `${runDir} is in use by an earlier process of ${LOCK_OWNER_ENV} ${h.owner}: ${h.command}, pid ${h.pid} on ${h.host}, since ${h.since}, its lock renewed ${(age / 1000).toFixed(0)} s ago (${file}; it is taken over once not renewed for ${LOCK_STALE_MS / 1000} s)`,
        );
      }
      if (h) throw inUse(runDir, file, h);
      throw new UserError(`${runDir} is locked by ${file}, which does not say who holds it: remove it if no run uses ${runDir}`);
    }
  } finally {
    process.off('exit', dropTmp);
    dropTmp();
  }
  // this lock, not one a later holder made after taking it over (both may be pid 1 of their containers)
  const mine = () => {
    const h = readHolder(file);
    return h !== null && h.host === me.host && h.pid === me.pid && h.since === me.since;
  };
  // renewed while held, so that the same owner's next process elsewhere can tell a gone holder from a live one
  const lost = lo.onLost ?? ((by: LockHolder) => {
    process.stderr.write(`alexnet: ${file} was taken over by ${by.command}, pid ${by.pid} on ${by.host} (this process's lock went unrenewed for ${LOCK_STALE_MS / 1000} s: was it paused, or its storage hung?): stopping, so that two runs do not write one folder\n`);
    process.exit(1);
  });
  const renewal = setInterval(() => {
    try {
      if (mine()) {
        const now = new Date();
        fs.utimesSync(file, now, now);
        return;
      }
      const other = readHolder(file);
      if (other !== null) {
        clearInterval(renewal);
        released = true;
        lost(other);
      }
    } catch {
      // the run folder unreachable for a moment: the next renewal tries again
    }
  }, LOCK_RENEW_MS);
  renewal.unref();
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    clearInterval(renewal);
    if (mine()) fs.rmSync(file, { force: true });
  };
  process.on('exit', release);
  return { file, release };
}

/** A later attempt of a requeued Slurm job: the log of its earlier attempts in the run folder is its own. */
const isSlurmRequeue = (env: NodeJS.ProcessEnv = process.env): boolean => env.SLURM_JOB_ID !== undefined && Number(env.SLURM_RESTART_COUNT ?? '0') > 0;

/** Whether the run folder's run was this process's own ALEXNET_LOCK_OWNER (a Kubernetes Job's earlier pod or container). */
const isSameOwner = (runDir: string, env: NodeJS.ProcessEnv = process.env): boolean => {
  const owner = env[LOCK_OWNER_ENV];
  return owner !== undefined && owner !== '' && readRunJson(runDir)?.lockOwner === owner;
};

/** Whether a metrics.jsonl logs training steps (a run that failed before its first step logged none: not worth keeping). */
function logsSteps(file: string): boolean {
  // the first step line follows the run line: the head of the file says
  return headOf(file, 256 << 10)?.includes('"event":"step"') ?? false;
}

/** `, run ID` from a run folder's run.json, or '' when it has none that reads. */
function runIdOf(runDir: string): string {
  const id = readRunJson(runDir)?.runId;
  return id !== undefined ? `, run ${id}` : '';
}

/** The files of a run in its directory that --overwrite removes. */
const RUN_FILES = ['metrics.jsonl', 'run.json', 'worker0.log', 'worker1.log', 'coord.log'];

/**
 * What `file` is when it is one of a run's own files, which no output of another command may replace: a training
 * checkpoint (by its place and name, or by the format its header names), or a run folder's metrics.jsonl,
 * run.json, logs or lock. Null for any other file.
 */
export function runFileKind(file: string): string | null {
  const A_CHECKPOINT = 'a training checkpoint (weights and momentum, what --resume reads)';
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  const name = path.basename(abs);
  if (path.basename(dir) === 'checkpoints' && stepOfFile(abs) !== null) return fs.existsSync(abs) ? A_CHECKPOINT : "a training checkpoint's name in a run's checkpoints folder (what --resume would read)";
  const isRunFolder = ['metrics.jsonl', 'run.json', 'checkpoints'].some((f) => fs.existsSync(path.join(dir, f)));
  if (isRunFolder && [...RUN_FILES, 'launch.log', LOCK_NAME].includes(name)) return `the ${name} of the run in ${path.dirname(file) || '.'}`;
  try {
    if (readCheckpointMetadata(abs).format === CHECKPOINT_FORMAT) return A_CHECKPOINT;
  } catch {
    /* absent, or not a safetensors file */
  }
  return null;
}

/**
 * The run folder's parts are of the kind the run writes: checkpoints/ a folder, its logs and run.json files.
 * Found otherwise (a file named checkpoints, a folder named metrics.jsonl), the run is refused before it
 * starts, rather than failing at its first checkpoint or log line after hours of training.
 */
function checkRunFolderParts(runDir: string): void {
  const kindOf = (p: string) => fs.statSync(p, { throwIfNoEntry: false });
  if (kindOf(checkpointDir(runDir))?.isDirectory() === false) {
    throw new UserError(`${checkpointDir(runDir)} is a file, not a folder: the run writes its checkpoints there; move the file away, or give another --run-dir`);
  }
  for (const f of RUN_FILES) {
    const p = path.join(runDir, f);
    if (kindOf(p)?.isDirectory()) throw new UserError(`${p} is a folder: the run writes its ${f} file there; move the folder away, or give another --run-dir`);
  }
}

/**
 * Readies a run directory for a run: makes it, takes its lock, checks its parts are of the kind the run writes
 * (checkRunFolderParts), removes stray temporary files, and refuses a
 * directory holding another run's checkpoints unless resuming it or --overwrite (then clears it), or another
 * run's log of steps without a checkpoint unless --overwrite (or a requeued Slurm job's own earlier attempt, or an
 * earlier process of the same ALEXNET_LOCK_OWNER). Every
 * failure is one line: a FileError naming the path and why, or a UserError.
 */
export async function prepareRunDir(o: RunDirOptions): Promise<RunDirLock | null> {
  makeDir(o.runDir, 'the run directory');
  const lock = await lockRunDir(o.runDir, o.command, o.info);
  try {
    const ckDir = checkpointDir(o.runDir);
    checkRunFolderParts(o.runDir);
    const stray = [...removeStrayTemporaries(o.runDir), ...removeStrayTemporaries(ckDir)];
    if (stray.length > 0) o.info(`removed ${stray.length} temporary file${stray.length === 1 ? '' : 's'} left by a run killed mid-write (${stray.join(', ')})`);
    const resumesThis = o.resume !== undefined && path.resolve(o.resume) === path.resolve(o.runDir);
    const theirs = listCheckpoints(ckDir);
    if (!resumesThis && theirs.length > 0 && lock !== null) {
      if (!o.overwrite) {
        const last = theirs[theirs.length - 1]!;
        let what = '';
        try {
          const id = readCheckpointHeader(last).state?.extra?.run_id;
          if (id) what = ` of run ${id}`;
        } catch {
          // damaged: named without its run id
        }
        throw new UserError(`${o.runDir} holds another run's checkpoints${what} (${theirs.length}, the latest ${path.basename(last)}): continue that run with --resume ${o.runDir}, start over with --overwrite, or give another --run-dir`);
      }
      const gone = [...theirs, ...RUN_FILES.map((f) => path.join(o.runDir, f)).filter((f) => fs.existsSync(f))];
      for (const f of gone) fs.rmSync(f, { force: true });
      o.info(`--overwrite: removed the previous run's ${theirs.length} checkpoint${theirs.length === 1 ? '' : 's'} and its logs from ${o.runDir}`);
    } else if (!resumesThis && theirs.length === 0 && lock !== null && !isSlurmRequeue() && !isSameOwner(o.runDir)) {
      // another run's log of steps without a checkpoint (killed before its first, or a finished run that keeps only
      // its exported model): a new run would append its sessions to that run's history
      const log = path.join(o.runDir, 'metrics.jsonl');
      if (logsSteps(log)) {
        if (!o.overwrite) {
          throw new UserError(`${o.runDir} holds another run's log (${log}${runIdOf(o.runDir)}) but no checkpoint to continue it from: start over with --overwrite (its log goes), or give another --run-dir`);
        }
        for (const f of RUN_FILES.map((f) => path.join(o.runDir, f)).filter((f) => fs.existsSync(f))) fs.rmSync(f, { force: true });
        o.info(`--overwrite: removed the previous run's logs from ${o.runDir} (it had no checkpoint)`);
      }
    }
    return lock;
  } catch (e) {
    lock?.release();
    throw (e as NodeJS.ErrnoException).code !== undefined ? fileError('ready the run directory', o.runDir, e) : e;
  }
}
