/**
 * Resuming a run: the newest checkpoint of RUN_DIR/checkpoints that verifies
 * (core's decodeCheckpoint checks its checksums and values and refuses another
 * preset's with a clear message; damaged ones are passed over, and said), and
 * what the coordinator saved in its run state.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CIFAR10_DOWNLOAD, checkDataLayout } from '@alexnet-mp/core/data';
import { CheckpointError, firstFew, decodeCheckpoint, fileError, getPreset, latestCheckpoint, legacyHyper, listCheckpoints, readMetadataOnly, stepOfFile, unverifiedNote, type LrScheduleSpec, type LrScheduleState, type ModelSpec, type RunState, type SgdHyper, type TowerParams } from '@alexnet-mp/core';
import { sourceNames } from './batch-source.js';
import { CHECKPOINT_MINUTES, DEFAULTS, type RunArgs } from './cli/options.js';
import { UserError } from './cli/errors.js';
import { readRunJson } from './run-files.js';
import { checkViewsOfData, isGeneratedData } from './training-data.js';

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
  /** The evaluation due after the checkpoint's step was still to do when it was written (a resumed run does it first). */
  eval_due?: boolean;
  /** Written for the time alone (--checkpoint-minutes): the next checkpoint of the run replaces it. */
  by_time?: boolean;
  /** The data cache folder the run was given (--cache-dir or ALEXNET_CACHE_DIR, absolute); null for the default. */
  cache_dir?: string | null;
  /** The class names of the run's data in label order; null for generated data (absent in older checkpoints). */
  class_names?: string[] | null;
  /** The run's plan: total steps, epochs, checkpoint interval, evaluation. */
  plan?: { steps?: number; epochs?: number | null; checkpoint_every?: number; checkpoint_minutes?: number; keep?: number; eval_every?: number; eval_batch?: number; eval_batches?: number | null; eval_views?: 'centre' | 'ten' };
}

export const checkpointDir = (runDir: string) => path.join(runDir, 'checkpoints');

/** The folder `abs` (a resolved path) as `typed` was said: a relative path stays relative. */
const saidAs = (typed: string, abs: string): string => (path.isAbsolute(typed) ? abs : path.relative(process.cwd(), abs) || '.');

/**
 * The run and step of one of a run's checkpoints by the layout RUN/checkpoints/step-N.safetensors (the run
 * said as `file` was); null for any other path. Reads nothing: the file need not exist.
 */
export function runOfCheckpointFile(file: string): { runDir: string; step: number } | null {
  const abs = path.resolve(file);
  const step = stepOfFile(abs);
  if (step === null || path.basename(path.dirname(abs)) !== 'checkpoints') return null;
  return { runDir: saidAs(file, path.dirname(path.dirname(abs))), step };
}

/**
 * The run above a run's checkpoints/ folder (said as `dir` was); null for any other folder, and for a folder
 * named checkpoints that holds a checkpoints/ folder itself (a run folder so named).
 */
export function runOfCheckpointsFolder(dir: string): string | null {
  const abs = path.resolve(dir);
  if (path.basename(abs) !== 'checkpoints' || fs.existsSync(path.join(abs, 'checkpoints'))) return null;
  return saidAs(dir, path.dirname(abs));
}

/**
 * Checkpoints chosen by file (`--resume RUN_DIR/checkpoints/step-N.safetensors`), by their run folder: that run
 * resumes from step N (newestVerified reads that file alone), not from its newest checkpoint.
 */
const pinned = new Map<string, number>();

/**
 * What `--resume` names: a run folder (or its checkpoints/ folder), or one of its checkpoints (an earlier one than the newest: a run that
 * diverged goes on from before its loss rose). Returns the run folder; a checkpoint file is remembered for
 * newestVerified. A UserError for a file that is not a run's checkpoint.
 */
export function resumeTarget(resume: string): string {
  const abs = path.resolve(resume);
  // one of a run's checkpoints: its run folder, as the user wrote it
  const checkpoint = runOfCheckpointFile(resume);
  let st: fs.Stats;
  try {
    st = fs.statSync(resume);
  } catch {
    // a requeued Slurm job whose chosen checkpoint --keep has since pruned: its course has begun, so the run
    // goes on from its newest (the caller unpins it), as it would with the file still there
    if (checkpoint !== null && courseBegunFrom(checkpoint.runDir, checkpoint.step)) {
      pinned.set(path.resolve(checkpoint.runDir), checkpoint.step);
      return checkpoint.runDir;
    }
    // a checkpoint that is not there (pruned by --keep, a step mistyped): said with the steps the run has
    if (/\.safetensors$/i.test(resume) || path.basename(path.dirname(abs)) === 'checkpoints') {
      const steps = listCheckpoints(path.dirname(abs)).map((f) => stepOfFile(f));
      throw new UserError(`--resume ${resume}: no such checkpoint${steps.length > 0 ? `; ${path.dirname(resume)} has step${steps.length === 1 ? '' : 's'} ${firstFew(steps.map(String), 8)}` : fs.existsSync(path.dirname(abs)) ? `; ${path.dirname(resume)} has none` : ''}`);
    }
    return resume; // said by latestOf: no such run directory
  }
  // a run's checkpoints/ folder: the run folder above it (as verify takes either)
  if (st.isDirectory()) return runOfCheckpointsFolder(resume) ?? resume;
  if (checkpoint === null) {
    throw new UserError(`--resume ${resume} is a file: give a run folder (its newest checkpoint) or one of its checkpoints, RUN_DIR/checkpoints/step-N.safetensors`);
  }
  pinned.set(path.resolve(checkpoint.runDir), checkpoint.step);
  return checkpoint.runDir;
}

/** Where setAsideLater notes the step a course was resumed from (RUN_DIR/checkpoints/resumed-from). */
const resumedFromFile = (runDir: string) => path.join(checkpointDir(runDir), 'resumed-from');

/** Whether a course resumed from `step` of `runDir` has begun (setAsideLater noted it). */
export function courseBegunFrom(runDir: string, step: number): boolean {
  try {
    return Number(fs.readFileSync(resumedFromFile(runDir), 'utf8').trim()) === step;
  } catch {
    return false;
  }
}

/**
 * A new course from a chosen checkpoint is starting in `runDir`: a mark left by an earlier course (perhaps from
 * the same step) is removed, so that until setAsideLater marks this one, its course counts as not begun.
 */
export function forgetCourse(runDir: string): void {
  fs.rmSync(resumedFromFile(runDir), { force: true });
}

/** The step of the checkpoint `--resume` chose in `runDir`, or undefined. */
export const pinnedStep = (runDir: string): number | undefined => pinned.get(path.resolve(runDir));

/** Forgets the checkpoint `--resume` chose in `runDir`: it resumes from its newest again. */
export function unpinCheckpoint(runDir: string): void {
  pinned.delete(path.resolve(runDir));
}

/** The checkpoint file `--resume` chose in `runDir` (resumeTarget), or undefined for its newest. */
export function pinnedCheckpoint(runDir: string): string | undefined {
  const step = pinned.get(path.resolve(runDir));
  return step === undefined ? undefined : path.join(checkpointDir(runDir), `step-${String(step).padStart(9, '0')}.safetensors`);
}

/**
 * A run resumed from an earlier checkpoint than its newest: the later ones are of the abandoned course (a
 * diverged one), and a later `--resume RUN_DIR` would take them over the new course's. They are moved into
 * RUN_DIR/checkpoints/set-aside-<time>/ (kept, not deleted) and said.
 */
export function setAsideLater(runDir: string, step: number, info: (line: string) => void): void {
  // the course from `step` has begun: a requeued Slurm job continues it rather than starting it again
  fs.writeFileSync(resumedFromFile(runDir), `${step}\n`);
  const later = listCheckpoints(checkpointDir(runDir)).filter((f) => (stepOfFile(f) ?? -1) > step);
  if (later.length === 0) return;
  const dir = path.join(checkpointDir(runDir), `set-aside-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of later) fs.renameSync(f, path.join(dir, path.basename(f)));
  info(`resuming from step ${step}: the ${later.length} later checkpoint${later.length === 1 ? '' : 's'} (step${later.length === 1 ? '' : 's'} ${later.map((f) => stepOfFile(f)).join(', ')}) moved to ${dir}`);
}

/** The latest checkpoint file of a run directory; a CheckpointError when there is none. */
export function latestOf(runDir: string): string {
  if (!fs.existsSync(runDir)) throw new CheckpointError(`--resume ${runDir}: no such run directory`);
  const file = latestCheckpoint(checkpointDir(runDir));
  if (!file) throw new CheckpointError(`--resume ${runDir}: no checkpoint in ${checkpointDir(runDir)} (${noCheckpointToResume(runDir)})`);
  return file;
}

/** Why a run folder has no checkpoint to resume, and what to do instead. */
function noCheckpointToResume(runDir: string): string {
  const run = readRunJson(runDir);
  if (run === null) return 'runs write them into RUN_DIR/checkpoints when given --run-dir, at their end and every --checkpoint-every steps';
  return `the run${run.runId !== undefined ? ` ${run.runId}` : ''} ended before its first checkpoint, or keeps only a model exported from it, which holds no momentum to go on from: start a new run, with --run-dir ${runDir} --overwrite or another folder`;
}

/** The run state in a checkpoint's header, without reading its tensors; a damaged CheckpointError when it cannot be read. */
export function readCheckpointHeader(file: string): { preset?: string; state: RunState & { extra?: SavedRun } } {
  const meta = readCheckpointMetadata(file);
  try {
    return { preset: meta.preset, state: JSON.parse(meta.state ?? 'null') as RunState & { extra?: SavedRun } };
  } catch (e) {
    throw new CheckpointError(`${file} is damaged: its run state does not parse (${(e as Error).message})`, true);
  }
}

/** A safetensors file's metadata map, without reading its tensors; a damaged CheckpointError when its header cannot be read. */
export const readCheckpointMetadata = (file: string): Record<string, string> => readMetadataOnly(file);

export interface Resumed {
  readonly file: string;
  readonly params: [TowerParams, TowerParams];
  readonly step: number;
  readonly seed: number;
  readonly saved: SavedRun;
  /** Whether the checkpoint had checksums (older ones have none). */
  readonly checksums: 'verified' | 'absent';
  /** The newer checkpoints passed over because they are damaged, newest first, with what is wrong. */
  readonly skipped: readonly { readonly file: string; readonly why: string }[];
}

/** Verified checkpoints of this process, by file (resolvePreset, launch and the coordinator read the same one). */
const verified = new Map<string, { mtimeMs: number; size: number; preset: string; r: Resumed }>();

/**
 * The newest checkpoint of a run directory that verifies (checksums, values, structure), for `spec` when
 * given (else the preset it names): damaged ones are passed over and listed in `skipped`. A CheckpointError,
 * one line, when there is none, or when the newest sound one is of another preset than `spec`.
 */
export function newestVerified(runDir: string, spec?: ModelSpec): Resumed {
  latestOf(runDir); // no run directory, or no checkpoint: said
  const chosen = pinnedCheckpoint(runDir);
  if (chosen !== undefined && !fs.existsSync(chosen)) throw new CheckpointError(`--resume ${chosen}: no such checkpoint`);
  // a checkpoint chosen by file is read alone: damaged, it is an error, not passed over
  const all = chosen !== undefined ? [chosen] : listCheckpoints(checkpointDir(runDir)).reverse();
  const skipped: { file: string; why: string }[] = [];
  for (const file of all) {
    try {
      const st = fs.statSync(file);
      const hit = verified.get(file);
      if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size && (!spec || spec.name === hit.preset)) return { ...hit.r, skipped };
      const head = readCheckpointHeader(file);
      const foreign = notThisRuns(runDir, file, head);
      if (foreign !== null) throw new CheckpointError(`cannot resume from ${file}: ${foreign}: not this run's checkpoint (copied or renamed from another run?); move it out of ${path.dirname(file)}`);
      if (spec && head.preset !== undefined && head.preset !== spec.name) {
        throw new CheckpointError(`cannot resume from ${file}: it is a checkpoint of preset "${head.preset}", this run is preset "${spec.name}" (give --preset ${head.preset})`);
      }
      const s = spec ?? getPreset(head.preset ?? '');
      const d = decodeCheckpoint(s, fs.readFileSync(file), file);
      const r: Resumed = { file, params: d.params, step: d.state.step, seed: d.state.seed, saved: (d.state.extra ?? {}) as SavedRun, checksums: d.checksums, skipped: [] };
      verified.set(file, { mtimeMs: st.mtimeMs, size: st.size, preset: s.name, r });
      return { ...r, skipped };
    } catch (e) {
      if (!(e instanceof CheckpointError && e.damaged) || chosen !== undefined) throw e;
      skipped.push({ file, why: e.message });
    }
  }
  throw new CheckpointError(`--resume ${runDir}: none of its ${all.length} checkpoint${all.length === 1 ? '' : 's'} verifies (${skipped.map((x) => x.why).join('; ')})`);
}

/**
 * Why a checkpoint in a run folder cannot be the run's own, or null: its name's step is not the step it holds,
 * or its preset, seed or batch are not the run's (run.json: its last session's run line; a resumed run keeps
 * all three). A run folder without a run.json that reads is checked by the name alone.
 */
export function notThisRuns(runDir: string, file: string, head: ReturnType<typeof readCheckpointHeader>): string | null {
  const named = stepOfFile(file);
  const held = head.state?.step;
  if (named !== null && typeof held === 'number' && named !== held) return `it holds step ${held}, its name says step ${named}`;
  let run: { preset?: unknown; seed?: unknown; batch?: unknown };
  try {
    run = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8')) as typeof run;
  } catch {
    return null;
  }
  const differs = (what: string, mine: unknown, its: unknown) => (mine !== undefined && its !== undefined && mine !== its ? `its ${what} is ${JSON.stringify(its)}, the run's (run.json) ${JSON.stringify(mine)}` : null);
  return differs('preset', run.preset, head.preset) ?? differs('seed', run.seed, head.state?.seed) ?? differs('batch', run.batch, head.state?.extra?.batch);
}

/**
 * Reads the newest checkpoint of a run directory that verifies for this preset (newestVerified). Saying so
 * with `info`: each damaged one passed over (then renamed to NAME.damaged, out of the way of the checkpoints
 * this run writes) and how many steps falling back loses; a checkpoint without checksums, once.
 */
export function loadResume(runDir: string, spec: ModelSpec, info: (line: string) => void = () => {}): Resumed {
  const r = newestVerified(runDir, spec);
  if (r.skipped.length > 0) {
    for (const s of r.skipped) {
      try {
        fs.renameSync(s.file, `${s.file}.damaged`);
        info(`${s.why}: set aside as ${path.basename(s.file)}.damaged`);
      } catch (e) {
        info(`${s.why}; ${fileError('set it aside as', `${path.basename(s.file)}.damaged`, e).message}`);
      }
    }
    const newest = stepOfFile(r.skipped[0]!.file) ?? r.step;
    info(`resuming from ${r.file} (step ${r.step}), the newest checkpoint that verifies: ${newest - r.step} step${newest - r.step === 1 ? '' : 's'} since it (to step ${newest}) are lost and done again`);
  }
  const note = unverifiedNote(r.file, r.checksums);
  if (note) info(note);
  return r;
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
  // one place named once: the folder as given resolves here to where it was (an absolute path, the same directory)
  if (saved.data_path !== undefined && path.resolve(cwd, name) === saved.data_path) {
    throw new CheckpointError(`the run was trained on ${saved.data_path}, which is not there any more: give --data with the same images`);
  }
  const where = saved.data_path !== undefined ? `${saved.data_path} when the run was checkpointed` : 'relative to the directory the run was started in';
  throw new CheckpointError(`the run was trained on ${name} (${where}), which is not there from ${cwd}: run the command from the directory the run was started in, or give --data with the same images`);
}

/**
 * The update rule of a run: the command line's, else (with --resume) the checkpoint's, else the defaults.
 * A checkpoint from before --decay-biases existed decayed its biases, and its run goes on doing so.
 */
export function runHyper(a: Pick<RunArgs, 'lr' | 'momentum' | 'weight-decay' | 'decay-biases'>, saved: SavedRun, preset?: string): Required<SgdHyper> {
  return {
    lr: a.lr ?? saved.hyper?.lr ?? defaultLr(preset),
    momentum: a.momentum ?? saved.hyper?.momentum ?? DEFAULTS.momentum,
    weightDecay: a['weight-decay'] ?? saved.hyper?.weightDecay ?? DEFAULTS.weightDecay,
    decayBiases: a['decay-biases'] ?? (saved.hyper ? legacyHyper(saved.hyper).decayBiases : DEFAULTS.decayBiases),
  };
}

/**
 * The learning rate a run gets without --lr: the paper's 0.01, but 0.005 for `tiny`, whose 16-unit fc layers
 * under dropout throw its loss away at 0.01 after about 2,000 steps of its synthetic data (steady over 10,000 at 0.005).
 */
export function defaultLr(preset: string | undefined): number {
  return preset === 'tiny' ? TINY_LR : DEFAULTS.lr;
}
const TINY_LR = 0.005;

/** When a run checkpoints and evaluates: the command line's (0 included), else (with --resume) the run's plan, else the defaults. */
export function runCadence(
  a: Pick<RunArgs, 'checkpoint-every' | 'checkpoint-minutes' | 'keep' | 'eval-every' | 'eval-batch' | 'eval-batches' | 'eval-views'>,
  plan: NonNullable<SavedRun['plan']>,
  batch: number,
) {
  return {
    checkpointEvery: a['checkpoint-every'] ?? plan.checkpoint_every ?? 0,
    checkpointMinutes: a['checkpoint-minutes'] ?? plan.checkpoint_minutes ?? CHECKPOINT_MINUTES,
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
    const saved = readCheckpointHeader(newestVerified(resume).file).preset;
    if (saved !== undefined) return saved;
  }
  return fallback;
}

/**
 * What a resumed run keeps whatever the command line says: its batch (the data order depends on it) and its
 * seed. A UserError, one line, for a command line that asks for another.
 */
export function checkResumeArgs(a: Pick<RunArgs, 'batch' | 'seed'>, resume: string, r: Pick<Resumed, 'seed' | 'saved'>): void {
  if (a.batch !== undefined && r.saved.batch !== undefined && a.batch !== r.saved.batch) {
    throw new UserError(`--batch ${a.batch}: the run in ${resume} has batch ${r.saved.batch} (the data order depends on it); leave --batch out`);
  }
  if (a.seed !== undefined && a.seed !== r.seed) throw new UserError(`--seed ${a.seed}: the run in ${resume} has seed ${r.seed}; leave --seed out`);
}

/**
 * The checks of a run's command line that need only files: the data folder is there; a resumed run has a
 * checkpoint of `spec`'s preset that verifies, keeps its batch and seed, and finds its data. `launch` makes
 * them before it starts any process, rather than have its coordinator refuse once the workers are up.
 */
export function checkRunFiles(a: Pick<RunArgs, 'batch' | 'seed' | 'data' | 'resume' | 'steps' | 'epochs' | 'eval-views'>, spec: ModelSpec): { nothingToDo: string | null; saved: SavedRun | null } {
  if (a.data !== undefined && !NOT_A_FOLDER.has(a.data)) checkDataLayout(a.data);
  if (a.resume === undefined) {
    checkViewsOfData(a['eval-views'], !isGeneratedData(a.data ?? 'synthetic'));
    return { nothingToDo: a.steps === 0 ? '--steps 0' : null, saved: null };
  }
  const r = newestVerified(a.resume, spec);
  checkResumeArgs(a, a.resume, r);
  const fromRun = a.data === undefined ? resumedData(r.saved) : undefined;
  checkViewsOfData(a['eval-views'], !isGeneratedData(a.data ?? fromRun?.data ?? 'synthetic'));
  const { target, why } = resumedStepTarget(a, r.saved);
  if (target === undefined || r.step < target) return { nothingToDo: null, saved: r.saved };
  return { nothingToDo: `the run in ${a.resume} is at step ${r.step}, and ${why}`, saved: r.saved };
}

/**
 * The step a resumed run trains to, as far as its files tell, and why: --steps counts from the run's start;
 * --epochs too, in the run's epochs (its steps an epoch, on its own data: another --data may have another
 * count, left to the coordinator); without either, the run's own plan. Undefined when the files do not tell.
 */
function resumedStepTarget(a: Pick<RunArgs, 'steps' | 'epochs' | 'data'>, saved: SavedRun): { target?: number; why?: string } {
  const plan = saved.plan ?? {};
  const spe = a.data === undefined ? (saved.data?.steps_per_epoch ?? null) : null;
  if (a.steps !== undefined) {
    if (a.epochs === undefined && (plan.epochs ?? null) !== null && spe !== null) checkStepsWithinEpochs(a.steps, plan.epochs!, spe);
    return { target: a.steps, why: `--steps ${a.steps} counts from its start (give more to train on)` };
  }
  if (a.epochs !== undefined) {
    if (spe === null) return {};
    const target = a.epochs * spe;
    return { target, why: `--epochs ${a.epochs} counts from its start (to step ${target}: ${a.epochs} epoch${a.epochs === 1 ? '' : 's'} of ${spe} steps; give more to train on)` };
  }
  if ((plan.epochs ?? null) === null) return plan.steps === undefined ? {} : { target: plan.steps, why: `its plan was ${plan.steps} steps (give --steps to train on)` };
  // epochs of another --data may have another count of steps: left to the coordinator
  if (plan.steps === undefined || a.data !== undefined) return {};
  return { target: plan.steps, why: `its plan was ${plan.epochs} epoch${plan.epochs === 1 ? '' : 's'}, ${plan.steps} steps (give --epochs or --steps to train on)` };
}

/**
 * `--steps` given alone to a resumed run planned in epochs: a step past the plan's last epoch would never come
 * (the plan's epochs end the run first), so it is refused, saying the --epochs that reaches it.
 */
export function checkStepsWithinEpochs(steps: number, epochs: number, stepsPerEpoch: number): void {
  const end = epochs * stepsPerEpoch;
  if (steps <= end) return;
  const need = Math.ceil(steps / stepsPerEpoch);
  throw new UserError(`--steps ${steps}: the run's plan of ${epochs} epoch${epochs === 1 ? '' : 's'} (${stepsPerEpoch} steps each) ends it at step ${end}: give --epochs ${need} as well to train on to step ${steps}`);
}

/**
 * A resumed run goes on with the classes it was trained on: a data set with other classes, generated data for a
 * run of real images or the reverse, is refused (its outputs would mean other things). `classes`: the data's
 * class names in label order, null for generated data; a checkpoint that predates recording them passes.
 */
export function checkResumedClasses(saved: SavedRun, classes: readonly string[] | null, data: string): void {
  const had = saved.class_names;
  if (had === undefined) return;
  const same = had === null ? classes === null : classes !== null && classes.length === had.length && classes.every((c, i) => c === had[i]);
  if (same) return;
  const what = (c: readonly string[] | null) => (c === null ? 'generated (synthetic) images' : `${c.length} classes (${firstFew(c, 4)})`);
  throw new UserError(`--data ${data}: the run was trained on ${what(had)}, this data set has ${what(classes)}: resume it on the data it was trained on, or start a new run`);
}
