/** The options of `coordinator` and `launch` about lost workers (recovery.ts, health.ts) and their checks. */
import type { Options } from 'yargs';
import { DEFAULT_DEADLINES, type DeadlineOptions } from '../health.js';
import { UserError } from './errors.js';

export const DEFAULT_MAX_RESTARTS = 3;

export const recoveryOptions = {
  'max-restarts': {
    type: 'number',
    default: DEFAULT_MAX_RESTARTS,
    describe:
      'times in a row a run survives a lost worker (killed, crashed, unreachable or hung): the step is abandoned, the worker restarted (launch) or waited for (coordinator), ' +
      'and the run continues from its last checkpoint (from step 0 when there is none yet); the count starts again once the run writes a checkpoint past the restart; 0: a lost worker ends the run',
  },
  'wait-for-workers': { type: 'number', default: 600, describe: 'seconds the coordinator waits, after losing a worker, for it to answer again before giving up' },
  'step-deadline': {
    type: 'number',
    default: DEFAULT_DEADLINES.floorMs / 1000,
    describe: `seconds a step or an evaluation batch may take at least before its worker is taken as hung: the deadline is the larger of this and ${DEFAULT_DEADLINES.factor}x the slowest so far (the first step, which compiles the kernels, gets ${DEFAULT_DEADLINES.firstMs / 60_000} minutes)`,
  },
} satisfies Record<string, Options>;

export interface RecoveryArgs {
  'max-restarts': number;
  'wait-for-workers': number;
  'step-deadline': number;
}

/** The longest --wait-for-workers and --step-deadline, in seconds (under Node's longest timer). */
const MAX_SECONDS = 2_000_000;

/** Checks the options; returns the deadlines they give. */
export function checkRecoveryArgs(a: RecoveryArgs): DeadlineOptions {
  if (!Number.isInteger(a['max-restarts']) || a['max-restarts'] < 0) throw new UserError(`--max-restarts must be an integer >= 0, got ${a['max-restarts']}`);
  // Node's timers hold at most 2^31 - 1 ms (24.8 days): a longer one fires at once
  for (const k of ['wait-for-workers', 'step-deadline'] as const) {
    if (!(a[k] > 0) || a[k] > MAX_SECONDS) throw new UserError(`--${k} must be > 0 and at most ${MAX_SECONDS} seconds (23 days), got ${a[k]}`);
  }
  const floorMs = a['step-deadline'] * 1000;
  return { ...DEFAULT_DEADLINES, floorMs, firstMs: Math.max(DEFAULT_DEADLINES.firstMs, floorMs) };
}

/** The same options again, for launch to hand to the coordinator. */
export const recoveryArgv = (a: RecoveryArgs): string[] => ['--max-restarts', String(a['max-restarts']), '--wait-for-workers', String(a['wait-for-workers']), '--step-deadline', String(a['step-deadline'])];
