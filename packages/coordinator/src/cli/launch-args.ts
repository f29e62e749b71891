/**
 * The command lines of the two workers and the coordinator of one run, from the run options: what `launch`
 * starts as child processes on this machine and what `slurm` runs in each task of a job step.
 */
import { DEFAULTS, viewsPerImage, type RunArgs } from './options.js';
import { recoveryArgv, type RecoveryArgs } from './recovery-options.js';
import { newestVerified, pinnedCheckpoint } from '../resume.js';

export interface ChildArgsInput extends RunArgs, RecoveryArgs {
  backend: string;
  'on-fallback': string;
}

export interface ChildArgs {
  /** Each worker's options (without --tower/--port/--host/--device). */
  readonly workerArgs: string[];
  /** The coordinator's options (without --workers). */
  readonly coordinatorArgs: string[];
  /** The training batch (the command line's, or the resumed run's). */
  readonly batch: number;
  /** The largest batch the workers will see (training, or evaluation with its views): their --max-batch. */
  readonly maxBatch: number;
}

/** `preset`: the run's preset (the command line's, or the resumed run's); `securityArgs`: the credentials options all three take. */
export function childArgs(a: ChildArgsInput, preset: string, securityArgs: readonly string[]): ChildArgs {
  const common = ['--preset', preset, ...securityArgs];
  // a resumed run keeps its batch (the data order depends on it): the workers' limits follow it
  const saved = a.resume !== undefined ? newestVerified(a.resume).saved : null;
  const batch = a.batch ?? saved?.batch ?? DEFAULTS.batch;
  const plan = saved?.plan;
  const evalBatch = a['eval-batch'] ?? plan?.eval_batch ?? batch;
  // the workers' message size limits follow the largest batch they will see (training, or evaluation: 10 images per held-out image with --eval-views ten)
  const maxBatch = Math.max(batch, evalBatch * viewsPerImage(a['eval-views'] ?? plan?.eval_views));
  const workerArgs = [...common, '--backend', a.backend, '--on-fallback', a['on-fallback'], '--max-batch', String(maxBatch)];
  // one word, --name=value: a value that starts with '-' (a folder, a negative number) is not read as a flag
  const opt = (name: string, v: string | number | undefined): string[] => (v === undefined ? [] : [`--${name}=${v}`]);
  const coordinatorArgs = [
    ...common,
    ...opt('steps', a.steps),
    ...opt('epochs', a.epochs),
    ...opt('batch', a.batch),
    ...opt('seed', a.seed),
    ...opt('lr', a.lr),
    ...opt('lr-schedule', a['lr-schedule']),
    ...opt('momentum', a.momentum),
    ...opt('weight-decay', a['weight-decay']),
    ...(a['decay-biases'] === undefined ? [] : [a['decay-biases'] ? '--decay-biases' : '--no-decay-biases']),
    ...opt('data', a.data),
    ...opt('cache-dir', a['cache-dir']),
    ...opt('run-dir', a['run-dir']),
    ...opt('eval-every', a['eval-every']),
    ...opt('eval-batch', a['eval-batch']),
    ...opt('eval-batches', a['eval-batches']),
    ...opt('eval-views', a['eval-views']),
    ...opt('checkpoint-every', a['checkpoint-every']),
    ...opt('checkpoint-minutes', a['checkpoint-minutes']),
    ...opt('keep', a.keep),
    // a checkpoint chosen by file goes on as that file (the coordinator resumes from it, not the newest)
    ...opt('resume', a.resume !== undefined ? (pinnedCheckpoint(a.resume) ?? a.resume) : undefined),
    ...opt('stop-after', a['stop-after']),
    ...opt('micro-batches', a['micro-batches']),
    ...opt('norms-every', a['norms-every']),
    ...(a['queue-steps'] === false ? ['--no-queue-steps'] : []),
    ...recoveryArgv(a),
  ];
  return { workerArgs, coordinatorArgs, batch, maxBatch };
}
