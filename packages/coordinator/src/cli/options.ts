/** Options shared by `alexnet coordinator` and `alexnet launch`, and their checks. */
import type { Options } from 'yargs';
import { backendChoices, presetNames, type SgdHyper } from '@alexnet-mp/core';
import { parseAddress } from '@alexnet-mp/worker';
import { sourceNames } from '../batch-source.js';
import { UserError } from './errors.js';

/** The preset every command starts with unless told: fast enough on two CPU cores. */
export const DEFAULT_PRESET = 'tiny';

export const runOptions = {
  preset: { choices: presetNames, default: DEFAULT_PRESET, describe: 'model preset (the same on the workers and the coordinator)' },
  steps: { type: 'number', default: 20, describe: 'training steps' },
  batch: { type: 'number', default: 16, describe: 'images per step (both towers see all of them)' },
  seed: { type: 'number', default: 1, describe: 'run seed: initial weights, dropout masks and synthetic data derive from it' },
  lr: { type: 'number', default: 0.01, describe: 'learning rate (paper: 0.01)' },
  momentum: { type: 'number', default: 0.9, describe: 'SGD momentum (paper: 0.9)' },
  'weight-decay': { type: 'number', default: 0.0005, describe: 'weight decay (paper: 0.0005)' },
  data: { choices: sourceNames, default: 'synthetic' as const, describe: 'batch source (real data sets come later)' },
  'run-dir': { type: 'string', describe: 'directory for run.json and metrics.jsonl (created if missing)' },
  'eval-every': {
    type: 'number',
    default: 0,
    describe:
      'evaluate every N steps and after the last one (0: never): the held-out batches through both workers, forward only, no dropout; ' +
      'logs {"event":"eval", step, loss, top1_error, top5_error, images}. Held out for --data synthetic: the same generator with a seed derived from --seed',
  },
  'eval-batch': { type: 'number', describe: 'images per evaluation batch (default: --batch; may differ from it)' },
  'eval-batches': { type: 'number', default: 4, describe: 'batches per evaluation (the same ones every time)' },
} satisfies Record<string, Options>;

export const backendOption = {
  choices: backendChoices,
  default: 'auto',
  describe: 'gpu.js mode: auto (webgpu if an adapter answers, else webasm), webgpu, webasm, cpu',
} satisfies Options;

export const fallbackOption = {
  choices: ['throw', 'warn'] as const,
  default: 'throw' as const,
  describe: 'when a kernel would run in a slower gpu.js mode than asked: fail (throw) or warn and carry on',
} satisfies Options;

export interface RunArgs {
  preset: string;
  steps: number;
  batch: number;
  seed: number;
  lr: number;
  momentum: number;
  'weight-decay': number;
  data: 'synthetic';
  'run-dir'?: string;
  'eval-every': number;
  'eval-batch'?: number;
  'eval-batches': number;
}

export function positiveInt(v: number, name: string, min = 1): number {
  if (!Number.isInteger(v) || v < min) throw new UserError(`--${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

/** Checks the numbers of a run and returns the SGD hyper-parameters. */
export function checkRunArgs(a: RunArgs): SgdHyper {
  positiveInt(a.steps, 'steps', 0);
  positiveInt(a.batch, 'batch');
  positiveInt(a['eval-every'], 'eval-every', 0);
  if (a['eval-batch'] !== undefined) positiveInt(a['eval-batch'], 'eval-batch');
  positiveInt(a['eval-batches'], 'eval-batches');
  if (!Number.isInteger(a.seed) || a.seed < 0 || a.seed > 0xffffffff) throw new UserError(`--seed must be an integer in 0..4294967295, got ${a.seed}`);
  for (const k of ['lr', 'momentum', 'weight-decay'] as const) {
    if (!Number.isFinite(a[k]) || a[k] < 0) throw new UserError(`--${k} must be a number >= 0, got ${a[k]}`);
  }
  return { lr: a.lr, momentum: a.momentum, weightDecay: a['weight-decay'] };
}

/** The evaluation batch size: --eval-batch, else --batch. */
export const evalBatchOf = (a: RunArgs): number => a['eval-batch'] ?? a.batch;

/** Parses an address given on the command line; a user error if malformed. */
export function checkAddress(s: string, option: string): string {
  try {
    parseAddress(s, `--${option}`);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  return s.trim();
}
