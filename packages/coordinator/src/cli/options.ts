/** Options shared by `alexnet coordinator` and `alexnet launch`, and their checks. */
import type { Options } from 'yargs';
import { backendChoices, microBatchProblem, parseLrSchedule, presetNames } from '@alexnet-mp/core';
import { parseAddress } from '@alexnet-mp/worker';
import { UserError } from './errors.js';

/** Steps between two readings of the layers' norms (--norms-every), unless told. */
export const NORMS_EVERY = 100;

/** Minutes between the checkpoints written by wall time (--checkpoint-minutes), unless told. */
export const CHECKPOINT_MINUTES = 30;

/** The preset every command starts with unless told: fast enough on two CPU cores. */
export const DEFAULT_PRESET = 'tiny';

export const runOptions = {
  preset: { choices: presetNames, describe: `model preset (the same on the workers and the coordinator; default ${DEFAULT_PRESET}, or with --resume the run's own)` },
  steps: { type: 'number', describe: 'training steps in all (default 20; with --epochs, a cap on epochs x steps an epoch; with --resume, the steps counted from the start of the run)' },
  epochs: { type: 'number', describe: 'train this many epochs: ceil(training images / batch) steps each (synthetic data: 1024 images an epoch)' },
  batch: { type: 'number', describe: 'images per step (both towers see all of them; default 16)' },
  seed: { type: 'number', describe: 'run seed: initial weights, dropout masks, data order and augmentation derive from it (default 1)' },
  lr: { type: 'number', describe: "learning rate (default: the paper's 0.01; 0.005 for the tiny preset)" },
  'lr-schedule': { type: 'string', describe: 'divide the learning rate by 10 at given epochs ("steps:30,60,80") or when the epoch-end top-1 error stops improving ("plateau[:PATIENCE[:MIN_DELTA]]", at most 3 times); default: constant' },
  momentum: { type: 'number', describe: 'SGD momentum (paper: 0.9; default 0.9)' },
  'weight-decay': { type: 'number', describe: 'weight decay (paper: 0.0005; default 0.0005)' },
  'decay-biases': { type: 'boolean', describe: "apply the weight decay to the biases too (cuda-convnet's and Caffe's AlexNet do not; default: no, but a run checkpointed before this option existed goes on decaying them)" },
  data: { type: 'string', describe: 'synthetic, cifar10 (downloaded into --cache-dir), or a folder: train/<class>/*.jpg with val/ or test/, or CIFAR-10\'s binary batches (default: synthetic, or with --resume the run\'s own)' },
  'cache-dir': { type: 'string', describe: 'downloads and decoded images (default: $ALEXNET_CACHE_DIR, $XDG_CACHE_HOME/alexnet-mp or ~/.cache/alexnet-mp)' },
  'run-dir': { type: 'string', describe: 'directory for run.json, metrics.jsonl and checkpoints/ (created if missing)' },
  'eval-every': {
    type: 'number',
    describe:
      'evaluate every N steps, at the end of each epoch and after the last step (default 0, or the resumed run\'s; 0: only at epoch ends and after the last step with --epochs or, on real data, --eval-batches, else never): the held-out batches through both workers, forward only, no dropout; ' +
      'logs {"event":"eval", step, loss, top1_error, top5_error, images}. Held out: the data set\'s val/ or test/ split (centre crops, or ten patches with --eval-views ten); for --data synthetic the same generator with a seed derived from --seed',
  },
  'eval-batch': { type: 'number', describe: 'images per evaluation batch (default: --batch; may differ from it)' },
  'eval-batches': { type: 'number', describe: 'batches per evaluation, the same ones every time (default: 4 for synthetic data, the whole held-out split for real data)' },
  'eval-views': {
    type: 'string',
    choices: ['centre', 'ten'],
    // the American spelling too, as predict --views takes it
    coerce: (v: unknown) => (v === 'center' ? 'centre' : v),
    describe:
      'real data: evaluate each held-out image on its centre crop (default, or the resumed run\'s), or on its ten patches (four corners and centre, and their flips; the paper\'s section 4.1), ' +
      'the softmax averaged per image: each image is 10 in the evaluation batches sent to the workers; the eval lines gain views: 10',
  },
  'checkpoint-every': { type: 'number', describe: 'with --run-dir: write RUN_DIR/checkpoints/step-N.safetensors every N steps (default 0, or the resumed run\'s; 0: none between); a run with --run-dir always writes one after its last step, when it is stopped early (Ctrl-C, SIGTERM, --stop-after) and at each epoch\'s end when the run counts epochs (real data, --epochs or an --lr-schedule)' },
  'checkpoint-minutes': {
    type: 'number',
    describe:
      `with --run-dir: also write a checkpoint after the first step that ends M minutes or more after the last one (or the run's start), so that a crash or a killed job loses at most about M minutes (default ${CHECKPOINT_MINUTES}, or the resumed run's; 0: by steps and epochs only)`,
  },
  keep: { type: 'number', describe: 'checkpoints kept, the latest ones (default 3, or the resumed run\'s)' },
  resume: { type: 'string', describe: "continue the run in RUN_DIR from its newest checkpoint that verifies (damaged ones are passed over and set aside, and said): both workers' weights and momentum, the step, the data order, the schedule (--run-dir defaults to it); or from one of its checkpoints, RUN_DIR/checkpoints/step-N.safetensors (the later ones are moved aside)" },
  overwrite: { type: 'boolean', describe: "start a new run in a --run-dir that holds another run's checkpoints or its log of steps, removing them, its metrics.jsonl, run.json and logs (without it such a directory is refused: --resume continues a run from its checkpoint)" },
  'micro-batches': {
    type: 'string',
    describe:
      'cut each step into N micro-batches (N divides --batch) whose crossing tensors travel while the next micro-batch computes (the whole batch\'s arithmetic, to float32 rounding); ' +
      '1 (default): the whole batch at once, bit for bit reproducible; auto: 1 unless the workers wait on the exchange 15% or more of their step, then 2 or 4 if measured faster (docs/distributed.md)',
  },
  'norms-every': {
    type: 'number',
    describe:
      `every N steps, each layer's norms after the update (weights, the step's change of them, biases; per tower) in that step's line as layer_norms, and the update/weight ratio per layer on the dashboard (default ${NORMS_EVERY}; 0: never)`,
  },
  'queue-steps': {
    type: 'boolean',
    describe:
      'send each step to the workers while the one before runs, when nothing (a checkpoint, an evaluation, a dashboard request) comes between the two: they start it the moment they end that one, without a round trip through the coordinator (default: yes; --no-queue-steps: each step waits for the replies of the one before)',
  },
  'stop-after': {
    type: 'string',
    describe:
      'end the run after this much wall time ("90m", "2h", "1h30m", "45s"; a plain number is seconds) at the end of the step then in progress, with a checkpoint of that step when the run writes them (--run-dir); ' +
      'exit code 0, and --resume RUN_DIR continues it. Ctrl-C (SIGINT) or SIGTERM does the same at once (exit code 130 or 143); a second one stops without waiting',
  },
} satisfies Record<string, Options>;

export const backendOption = {
  choices: backendChoices,
  default: 'auto',
  describe: 'gpu.js mode: auto (webgpu on a GPU, else webasm: never a software adapter), webgpu (any adapter, a software one included), webasm, cpu',
} satisfies Options;

export const fallbackOption = {
  choices: ['throw', 'warn'] as const,
  default: 'throw' as const,
  describe: 'when a kernel would run in a slower gpu.js mode than asked: fail (throw) or warn and carry on',
} satisfies Options;

export interface RunArgs {
  preset?: string;
  steps?: number;
  epochs?: number;
  batch?: number;
  seed?: number;
  lr?: number;
  'lr-schedule'?: string;
  momentum?: number;
  'weight-decay'?: number;
  'decay-biases'?: boolean;
  data?: string;
  'cache-dir'?: string;
  'run-dir'?: string;
  'eval-every'?: number;
  'eval-batch'?: number;
  'eval-batches'?: number;
  'eval-views'?: 'centre' | 'ten';
  'checkpoint-every'?: number;
  'checkpoint-minutes'?: number;
  keep?: number;
  resume?: string;
  overwrite?: boolean;
  'stop-after'?: string;
  'micro-batches'?: string;
  'norms-every'?: number;
  'queue-steps'?: boolean;
}

export const DEFAULTS = { steps: 20, batch: 16, seed: 1, lr: 0.01, momentum: 0.9, weightDecay: 0.0005, decayBiases: false } as const;

export function positiveInt(v: number, name: string, min = 1): number {
  if (!Number.isInteger(v) || v < min) throw new UserError(`--${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

/** `--step N` of predict, inspect and export: a step of the run given with --run (TrainedModel.openRun checks the run kept it). */
export function checkRunStep(step: number | undefined, run: string | undefined): void {
  if (step === undefined) return;
  if (run === undefined) throw new UserError('--step picks a checkpoint of a run: give it with --run RUN_DIR');
  positiveInt(step, 'step', 0);
}

/** `--threads N` (a worker's kernel threads on CPUs; `flag`: the option's name where it has another): a whole number 1..1024. */
export function checkThreads(v: number | undefined, flag = 'threads'): void {
  if (v === undefined) return;
  if (!Number.isInteger(v) || v < 1 || v > 1024) throw new UserError(`--${flag} must be a whole number 1..1024, got ${v}`);
}

/** Checks the numbers given on the command line (what is not given is checked once resolved). */
export function checkRunArgs(a: RunArgs): void {
  if (a.steps !== undefined) positiveInt(a.steps, 'steps', 0);
  if (a.epochs !== undefined) positiveInt(a.epochs, 'epochs');
  if (a.batch !== undefined) positiveInt(a.batch, 'batch');
  if (a['eval-every'] !== undefined) positiveInt(a['eval-every'], 'eval-every', 0);
  if (a['eval-batch'] !== undefined) positiveInt(a['eval-batch'], 'eval-batch');
  if (a['eval-batches'] !== undefined) positiveInt(a['eval-batches'], 'eval-batches');
  if (a['checkpoint-every'] !== undefined) positiveInt(a['checkpoint-every'], 'checkpoint-every', 0);
  if (a['norms-every'] !== undefined) positiveInt(a['norms-every'], 'norms-every', 0);
  if (a.keep !== undefined) positiveInt(a.keep, 'keep');
  const minutes = a['checkpoint-minutes'];
  if (minutes !== undefined && !(Number.isFinite(minutes) && minutes >= 0)) throw new UserError(`--checkpoint-minutes must be a number of minutes >= 0 (0: off), got ${minutes}`);
  if (a.seed !== undefined && (!Number.isInteger(a.seed) || a.seed < 0 || a.seed > 0xffffffff)) throw new UserError(`--seed must be an integer in 0..4294967295, got ${a.seed}`);
  for (const k of ['lr', 'momentum', 'weight-decay'] as const) {
    const v = a[k];
    if (v !== undefined && (!Number.isFinite(v) || v < 0)) throw new UserError(`--${k} must be a number >= 0, got ${v}`);
  }
  if (a.momentum !== undefined && a.momentum >= 1) throw new UserError(`--momentum must be below 1 (the paper's is 0.9), got ${a.momentum}`);
  if (a['lr-schedule'] !== undefined) {
    try {
      parseLrSchedule(a['lr-schedule'], 1);
    } catch (e) {
      throw new UserError((e as Error).message);
    }
  }
  if (a.data !== undefined && a.data.trim() === '') throw new UserError('--data needs synthetic, cifar10 or a folder');
  if (a['stop-after'] !== undefined) parseDuration(a['stop-after'], 'stop-after');
  // the batch of a resumed run is known later: the coordinator checks it there (Coordinator, micro-batches.ts)
  if (a['micro-batches'] !== undefined) parseMicroBatches(a['micro-batches'], a.resume === undefined ? (a.batch ?? DEFAULTS.batch) : undefined);
  if (a.overwrite && a.resume !== undefined && (a['run-dir'] === undefined || a['run-dir'] === a.resume)) throw new UserError('--overwrite and --resume: give one (--resume continues the run in the directory, --overwrite starts over there)');
  if (a.overwrite && a['run-dir'] === undefined) throw new UserError('--overwrite needs --run-dir');
}

/** --micro-batches: 'auto', or N >= 1 dividing `batch` when it is known; a UserError otherwise. */
export function parseMicroBatches(text: string, batch?: number): number | 'auto' {
  const s = String(text).trim();
  if (s === 'auto') return 'auto';
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!(n >= 1)) throw new UserError(`--micro-batches ${s}: give a whole number >= 1 that divides --batch, or auto`);
  const problem = batch === undefined ? null : microBatchProblem(batch, n);
  if (problem) throw new UserError(`--micro-batches ${s}: ${problem} (--batch ${batch})`);
  return n;
}

/** Seconds in a duration written "2h", "90m", "1h30m", "45s" or "3600" (seconds); a UserError otherwise. */
export function parseDuration(text: string, option: string): number {
  const s = String(text).trim();
  let seconds = 0;
  if (/^\d+(\.\d+)?$/.test(s)) seconds = Number(s);
  else {
    const parts = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(s);
    if (!parts || s === '') throw new UserError(`--${option} must be a duration such as 90m, 2h, 1h30m, 45s or a number of seconds, got "${s}"`);
    seconds = Number(parts[1] ?? 0) * 3600 + Number(parts[2] ?? 0) * 60 + Number(parts[3] ?? 0);
  }
  if (!(seconds > 0)) throw new UserError(`--${option} must be longer than 0 seconds, got "${s}"`);
  // a timer waits at most 2^31-1 ms (24.8 days)
  if (seconds > 2_000_000) throw new UserError(`--${option} must be at most 2000000 seconds (about 555h), got "${s}"`);
  return seconds;
}

/** The evaluation batch size: --eval-batch, else --batch. */
export const evalBatchOf = (a: RunArgs, batch = a.batch ?? DEFAULTS.batch): number => a['eval-batch'] ?? batch;

/** Images the workers see per held-out image: 10 for --eval-views ten. */
export const viewsPerImage = (views: string | undefined): number => (views === 'ten' ? 10 : 1);

/** Parses an address given on the command line; a user error if malformed. */
export function checkAddress(s: string, option: string): string {
  try {
    parseAddress(s, `--${option}`);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  return s.trim();
}
