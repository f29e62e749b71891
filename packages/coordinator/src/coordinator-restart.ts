/**
 * When `launch` starts a dead coordinator again, and with what command line.
 *
 * A coordinator killed by a signal it does not handle has crashed or been killed from outside: the kernel's
 * out-of-memory killer (SIGKILL), Node.js out of heap memory (SIGABRT), a native fault (SIGSEGV, SIGBUS, ...).
 * Its workers are alive and hold the run's parameters of an abandoned step; the run's last checkpoint is on
 * disk. Launch starts the coordinator again with `--resume RUN_DIR` (from step 0 when the run wrote no
 * checkpoint yet, as for a lost worker), under the same `--max-restarts` count as the workers.
 *
 * Any other end of the coordinator is its own decision and is not undone: an exit code (a finished run, a
 * user mistake, a diverged loss, a worker lost for good, SIGINT/SIGTERM/SIGHUP it handled and ended the run
 * on), or a stop launch itself asked for.
 */

/** The signals whose death launch takes as a crash of the coordinator. */
export const CRASH_SIGNALS: readonly NodeJS.Signals[] = ['SIGKILL', 'SIGABRT', 'SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGTRAP', 'SIGSYS'];

export const crashed = (exit: { code: number | null; signal: NodeJS.Signals | null } | null): boolean =>
  exit !== null && exit.signal !== null && CRASH_SIGNALS.includes(exit.signal);

export interface RestartInput {
  /** The coordinator's arguments as launch first gave them (without --workers). */
  readonly args: readonly string[];
  readonly runDir: string;
  /** The run's last checkpoint step, or null when it wrote none yet. */
  readonly checkpointStep: number | null;
  /** Seconds left of the run's --stop-after (null: none given). */
  readonly stopAfterLeftS: number | null;
  /**
   * The step of the checkpoint `--resume RUN_DIR/checkpoints/step-N` chose, while the course from it has not begun
   * (the later checkpoints, of the course it leaves, not yet set aside); null otherwise.
   */
  readonly pinnedStep?: number | null;
}

export type RestartPlan = { readonly args: string[]; readonly from: string } | { readonly refused: string };

/** Options whose value names the run or its time limit: the restarted coordinator gets its own. */
const REPLACED = new Set(['--run-dir', '--resume', '--stop-after', '--stop-after-given']);

/** The value of option `name` in `args` (`--name=V` or `--name V`), the last one given; undefined when absent. */
function valueOf(args: readonly string[], name: string): string | undefined {
  let v: string | undefined;
  for (let k = 0; k < args.length; k++) {
    if (args[k]!.startsWith(`${name}=`)) v = args[k]!.slice(name.length + 1);
    else if (args[k] === name && k + 1 < args.length) v = args[k + 1];
  }
  return v;
}

/**
 * The command line of the coordinator started again: the first one's, resuming RUN_DIR from its last
 * checkpoint (or as first given, from step 0, when there is none), with what is left of --stop-after.
 */
export function restartPlan(i: RestartInput): RestartPlan {
  if (i.stopAfterLeftS !== null && i.stopAfterLeftS < 1) return { refused: 'its --stop-after time is up' };
  // the time left, and (for the run's messages) the --stop-after first given
  const given = valueOf(i.args, '--stop-after-given') ?? valueOf(i.args, '--stop-after');
  const stopAfter = i.stopAfterLeftS !== null ? [`--stop-after=${Math.ceil(i.stopAfterLeftS)}s`, ...(given !== undefined ? [`--stop-after-given=${given}`] : [])] : [];
  const pinned = i.pinnedStep ?? null;
  if (i.checkpointStep === null || pinned !== null) {
    // nothing of this run to resume yet: the command line as first given (a run forked with --resume OTHER
    // --run-dir NEW starts again from OTHER's checkpoint, a new run from step 0); so too a run resumed from a
    // chosen checkpoint before its course began (the newest is of the course it leaves)
    const first = i.args.filter((a, k) => !['--stop-after', '--stop-after-given'].some((n) => a.startsWith(`${n}=`) || a === n || i.args[k - 1] === n));
    const from =
      pinned !== null
        ? `the checkpoint it was resumed from, step ${pinned}${i.checkpointStep !== null && i.checkpointStep > pinned ? ` (not the newest, step ${i.checkpointStep}, of the course it leaves)` : ''}`
        : first.some((a) => a === '--resume' || a.startsWith('--resume='))
          ? 'the checkpoint it was started from (no checkpoint of this run yet)'
          : 'step 0 (no checkpoint of this run yet)';
    return { args: [...first, ...stopAfter], from };
  }
  const args: string[] = [];
  for (let k = 0; k < i.args.length; k++) {
    const a = i.args[k]!;
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (!REPLACED.has(name)) {
      args.push(a);
      continue;
    }
    // `--name value` (two words) drops its value too
    if (eq < 0) k++;
  }
  args.push(`--resume=${i.runDir}`, ...stopAfter);
  return { args, from: `its last checkpoint, step ${i.checkpointStep}` };
}
