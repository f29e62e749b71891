/**
 * Resuming a run: the latest checkpoint of RUN_DIR/checkpoints, decoded for
 * this preset (core's decodeCheckpoint refuses another preset's with a clear
 * message), and what the coordinator saved in its run state.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CIFAR10_DOWNLOAD } from '@alexnet-mp/core/data';
import { CheckpointError, decodeCheckpoint, latestCheckpoint, legacyHyper, type LrScheduleSpec, type LrScheduleState, type ModelSpec, type RunState, type SgdHyper, type TowerParams } from '@alexnet-mp/core';
import { sourceNames } from './batch-source.js';
import { DEFAULTS, type RunArgs } from './cli/options.js';

/** What the coordinator keeps in a checkpoint's run state (`extra`). */
export interface SavedRun {
  run_id?: string;
  batch?: number;
  hyper?: SgdHyper;
  lr_schedule?: { spec: LrScheduleSpec; state: LrScheduleState } | null;
  data?: { name?: string; position?: number; epoch?: number; steps_per_epoch?: number | null; order_seed?: number; source?: string };
  /** The --data the run was started with (synthetic, cifar10 or a folder, as given): --resume uses it unless told otherwise. */
  data_name?: string;
  /** A folder's --data as it resolved when the checkpoint was written (absolute): found again when the run is resumed from another directory. */
  data_path?: string;
  /** The run's plan: total steps, epochs, checkpoint interval, evaluation. */
  plan?: { steps?: number; epochs?: number | null; checkpoint_every?: number; keep?: number; eval_every?: number; eval_batch?: number; eval_batches?: number | null; eval_views?: 'centre' | 'ten' };
}

export const checkpointDir = (runDir: string) => path.join(runDir, 'checkpoints');

/** The latest checkpoint file of a run directory; a CheckpointError when there is none. */
export function latestOf(runDir: string): string {
  if (!fs.existsSync(runDir)) throw new CheckpointError(`--resume ${runDir}: no such run directory`);
  const file = latestCheckpoint(checkpointDir(runDir));
  if (!file) throw new CheckpointError(`--resume ${runDir}: no checkpoint in ${checkpointDir(runDir)} (runs write them with --run-dir and --checkpoint-every or --epochs)`);
  return file;
}

/** The run state in a checkpoint's header, without reading its tensors (safetensors: 8-byte length, JSON header). */
export function readCheckpointHeader(file: string): { preset?: string; state: RunState & { extra?: SavedRun } } {
  const fd = fs.openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    if (!(n > 0 && n < 100 * 1024 * 1024)) throw new CheckpointError(`${file} is not a safetensors file`);
    const head = Buffer.alloc(n);
    fs.readSync(fd, head, 0, n, 8);
    const meta = (JSON.parse(head.toString('utf8')) as { __metadata__?: Record<string, string> }).__metadata__ ?? {};
    return { preset: meta.preset, state: JSON.parse(meta.state ?? 'null') as RunState & { extra?: SavedRun } };
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`${file}: unreadable checkpoint header (${(e as Error).message})`);
  } finally {
    fs.closeSync(fd);
  }
}

export interface Resumed {
  readonly file: string;
  readonly params: [TowerParams, TowerParams];
  readonly step: number;
  readonly seed: number;
  readonly saved: SavedRun;
}

/** Reads and checks the latest checkpoint of a run directory for this preset. */
export function loadResume(runDir: string, spec: ModelSpec): Resumed {
  const file = latestOf(runDir);
  const head = readCheckpointHeader(file);
  if (head.preset !== undefined && head.preset !== spec.name) {
    throw new CheckpointError(`cannot resume from ${file}: it is a checkpoint of preset "${head.preset}", this run is preset "${spec.name}" (give --preset ${head.preset})`);
  }
  let decoded: ReturnType<typeof decodeCheckpoint>;
  try {
    decoded = decodeCheckpoint(spec, fs.readFileSync(file), file);
  } catch (e) {
    if (e instanceof CheckpointError) throw new CheckpointError(`cannot resume: ${e.message}`);
    throw new CheckpointError(`cannot resume from ${file}: ${(e as Error).message}`);
  }
  return { file, params: decoded.params, step: decoded.state.step, seed: decoded.state.seed, saved: (decoded.state.extra ?? {}) as SavedRun };
}

/** Names of --data that are not folders: the generated sources and the CIFAR-10 download. */
const NOT_A_FOLDER: ReadonlySet<string> = new Set([...sourceNames, CIFAR10_DOWNLOAD]);

/** What a checkpoint keeps of --data: as given, and a folder's absolute path. */
export function savedDataOf(data: string, cwd = process.cwd()): Pick<SavedRun, 'data_name' | 'data_path'> {
  return NOT_A_FOLDER.has(data) ? { data_name: data } : { data_name: data, data_path: path.resolve(cwd, data) };
}

/**
 * The data a resumed run goes on with when no --data is given: the run's own, as given when it
 * still resolves from here (a relative path keeps a run folder portable: a repository with the data
 * beside it), else the folder it resolved to when the checkpoint was written. Undefined for runs that
 * saved no data; a CheckpointError when neither place exists.
 */
export function resumedData(saved: SavedRun, cwd = process.cwd()): { data: string; note?: string } | undefined {
  const name = saved.data_name;
  if (name === undefined) return undefined;
  if (NOT_A_FOLDER.has(name) || fs.existsSync(path.resolve(cwd, name))) return { data: name };
  if (saved.data_path !== undefined && fs.existsSync(saved.data_path)) {
    return { data: saved.data_path, note: `the run's data ${name} is not there from ${cwd}: using ${saved.data_path}, where it was when the run was checkpointed` };
  }
  const where = saved.data_path !== undefined ? `${saved.data_path} when the run was checkpointed` : 'relative to the directory the run was started in';
  throw new CheckpointError(`the run was trained on ${name} (${where}), which is not there from ${cwd}: resume from that directory, or give --data with the same images`);
}

/**
 * The update rule of a run: the command line's, else (with --resume) the checkpoint's, else the defaults.
 * A checkpoint from before --decay-biases existed decayed its biases, and its run goes on doing so.
 */
export function runHyper(a: Pick<RunArgs, 'lr' | 'momentum' | 'weight-decay' | 'decay-biases'>, saved: SavedRun): Required<SgdHyper> {
  return {
    lr: a.lr ?? saved.hyper?.lr ?? DEFAULTS.lr,
    momentum: a.momentum ?? saved.hyper?.momentum ?? DEFAULTS.momentum,
    weightDecay: a['weight-decay'] ?? saved.hyper?.weightDecay ?? DEFAULTS.weightDecay,
    decayBiases: a['decay-biases'] ?? (saved.hyper ? legacyHyper(saved.hyper).decayBiases : DEFAULTS.decayBiases),
  };
}

/** When a run checkpoints and evaluates: the command line's (0 included), else (with --resume) the run's plan, else the defaults. */
export function runCadence(
  a: Pick<RunArgs, 'checkpoint-every' | 'keep' | 'eval-every' | 'eval-batch' | 'eval-batches' | 'eval-views'>,
  plan: NonNullable<SavedRun['plan']>,
  batch: number,
) {
  return {
    checkpointEvery: a['checkpoint-every'] ?? plan.checkpoint_every ?? 0,
    keep: a.keep ?? plan.keep ?? 3,
    evalEvery: a['eval-every'] ?? plan.eval_every ?? 0,
    evalBatch: a['eval-batch'] ?? plan.eval_batch ?? batch,
    evalBatches: a['eval-batches'] ?? plan.eval_batches ?? undefined,
    evalViews: a['eval-views'] ?? plan.eval_views ?? 'centre',
  };
}

/** The preset of a run: the command line's, else (with --resume) the checkpoint's, else the default. */
export function resolvePreset(explicit: string | undefined, resume: string | undefined, fallback: string): string {
  if (explicit !== undefined) return explicit;
  if (resume !== undefined) {
    const saved = readCheckpointHeader(latestOf(resume)).preset;
    if (saved !== undefined) return saved;
  }
  return fallback;
}
