/**
 * The loop of Coordinator.run: the next batch made while the workers compute, each step sent (the next one
 * queued behind it when nothing is due between the two: run-schedule.ts), and after each step the checkpoint,
 * the evaluation and the between-step tasks due, until the steps are done or a stop is asked for.
 * The coordinator's calls on the workers are behind RunLoopHost, so that the schedule can be read (and tested)
 * on its own.
 */
import { setImmediate as turnOfTheLoop } from 'node:timers/promises';
import type { U8Batch } from './batch-source.js';
import type { CoordinatorOptions, StepMetrics } from './coordinator-types.js';
import { dueAfter } from './run-schedule.js';

/** What the loop asks of the coordinator. */
export interface RunLoopHost {
  readonly o: Pick<CoordinatorOptions, 'source' | 'batch' | 'eval' | 'checkpoint' | 'stepsPerEpoch'>;
  /** Steps done (the next step's number). */
  readonly stepsDone: number;
  /** Why the run is asked to stop (requestStop), or null. */
  readonly stopRequest: string | null;
  /** Whether a checkpoint is wanted after the current step beyond the schedule (a worker draining). */
  readonly checkpointAsked: boolean;
  /**
   * Sends step `step` with batch `b` to both workers and resolves with its metrics when both answered.
   * `previous`: the step still running that this one is queued behind (it fails if that one fails).
   */
  sendStep(step: number, b: U8Batch, previous: Promise<unknown> | null): Promise<StepMetrics>;
  /** Whether the step after the one that makes `done` steps may go out before that one has answered. */
  queueingAfter(done: number): boolean;
  /** Writes a checkpoint of the steps done (`evalDue`: their evaluation follows; `byTime`: due for the time alone); its path. */
  writeCheckpoint(evalDue?: boolean, byTime?: boolean): Promise<string>;
  /** The held-out evaluation after the step just done. */
  evaluateAfterStep(): Promise<void>;
  /** Runs the between-step tasks waiting (between-steps.ts). */
  runWaitingTasks(): Promise<void>;
  /** Cancels the steps in flight on the workers. */
  cancel(): void;
  /** The loop waited `ms` for the data source. */
  dataWaited(ms: number): void;
  /** Milliseconds since the last checkpoint was written, or since the run started (checkpoints by time). */
  sinceCheckpointMs(): number;
}

/**
 * Asks the source for the batch of `step`. A source does its work (synthetic images, decoding, augmentation) on
 * this thread when asked: in a promise, so that one that throws rather than rejects fails where the batch is
 * awaited, and only there: a batch that fails while a step runs is not an unhandled rejection, which would end
 * the process before the steps are cancelled and the workers released.
 */
export function batchOf(o: Pick<CoordinatorOptions, 'source' | 'batch'>, step: number): Promise<U8Batch> {
  const b = Promise.resolve().then(() => o.source.batch(step, o.batch));
  b.catch(() => {});
  return b;
}

export interface RunLoopResult {
  readonly steps: StepMetrics[];
  /** Set when a stop request ended the loop before its steps were done: why, and after which step. */
  readonly stopped: { reason: string; step: number } | null;
}

/**
 * Runs `steps` steps from `host.stepsDone` on; `first`: the first step's batch, already asked for (null when
 * `steps` is 0). A loop that ends otherwise than between steps (a failed step, `signal`, `onStep` throwing)
 * cancels the step queued behind the current one, leaving the workers failed until they are configured again.
 */
export async function runLoop(
  host: RunLoopHost,
  steps: number,
  first: Promise<U8Batch> | null,
  onStep: (m: StepMetrics) => void,
  o: { signal?: AbortSignal; onCheckpoint?: (file: string, step: number) => void; keepSteps?: boolean },
): Promise<RunLoopResult> {
  const all: StepMetrics[] = [];
  const keep = o.keepSteps !== false;
  const ck = host.o.checkpoint;
  const batchFor = (step: number) => batchOf(host.o, step);
  let next = first;
  let checkpointed = -1;
  /** The step sent while the one before it ran (queued steps), not yet counted. */
  let queued: Promise<StepMetrics> | null = null;
  /** The queued step's number. */
  let queuedAt = -1;
  try {
    for (let i = 0; i < steps; i++) {
      if (o.signal?.aborted) throw o.signal.reason;
      if (queued === null && host.stopRequest !== null) {
        // asked to stop (requestStop): the steps since the last checkpoint are kept in one more, written whether
        // or not a caller listens
        if (ck && i > 0 && checkpointed !== host.stepsDone) {
          const written = await host.writeCheckpoint();
          o.onCheckpoint?.(written, host.stepsDone);
        }
        return { steps: all, stopped: { reason: host.stopRequest, step: host.stepsDone } };
      }
      // the queued step's number as sent, not the host's count, which that step's own reply may already have moved
      // on (both replies in before this turn: a coordinator that stalled while the workers ran two short steps)
      const at = queued ? queuedAt : host.stepsDone;
      let stepping: Promise<StepMetrics>;
      if (queued) {
        stepping = queued;
        queued = null;
      } else {
        const tw = performance.now();
        const b = await next!;
        host.dataWaited(performance.now() - tw);
        // the step first, then the next batch while the workers compute: the Step requests leave in the
        // next turn of the event loop, which would otherwise come only after the batch is made
        stepping = host.sendStep(at, b, null);
        stepping.catch(() => {}); // awaited below
        await turnOfTheLoop();
        next = i + 1 < steps ? batchFor(at + 1) : null;
      }
      // the step after it goes out now when nothing is due between the two: the workers start it the moment
      // they end this one, with no round trip through the coordinator (a source that failed is left to fail
      // at the top of the loop, after this step)
      if (next && host.queueingAfter(at + 1)) {
        let endedAt = Infinity;
        let failed = false;
        stepping.then(
          () => (endedAt = performance.now()),
          () => (failed = true),
        );
        const tw = performance.now();
        const b = await next.catch(() => null);
        // the coordinator waited for the data only from the step's end on
        host.dataWaited(Math.max(0, performance.now() - Math.max(tw, endedAt)));
        // asked again: a stop, a task or the step's failure may have come while the batch was made
        if (b && !failed && host.queueingAfter(at + 1)) {
          queued = host.sendStep(at + 1, b, stepping);
          queuedAt = at + 1;
          queued.catch(() => {}); // awaited in the next pass of the loop
          await turnOfTheLoop();
          next = i + 2 < steps ? batchFor(at + 2) : null;
        }
      }
      const m = await stepping;
      if (keep) all.push(m);
      onStep(m);
      // nothing was due after this step if the next one is queued (queueingAfter)
      if (queued) continue;
      const done = host.stepsDone;
      const due = dueAfter(host.o, done, i === steps - 1, host.sinceCheckpointMs());
      if (host.stopRequest !== null && i < steps - 1) {
        // asked to stop while the step ran: its checkpoint at once (at the top of the loop), and an evaluation due
        // now is left to the resumed run, the checkpoint saying it is due, rather than run before the stop
        if (ck && checkpointed !== done) {
          // one due for the time alone anyway is still written as such (its successor replaces it)
          const written = await host.writeCheckpoint(due.evaluation, due.checkpoint && due.byTimeOnly);
          checkpointed = done;
          o.onCheckpoint?.(written, done);
        }
        continue;
      }
      // the checkpoint first: a worker lost during the evaluation costs the evaluation, not the steps since the last checkpoint
      if (due.checkpoint || (ck && host.checkpointAsked)) {
        // written whether or not a caller listens (`o.onCheckpoint?.(await ...)` would skip the write)
        const written = await host.writeCheckpoint(due.evaluation, due.checkpoint && due.byTimeOnly);
        checkpointed = done;
        o.onCheckpoint?.(written, done);
      }
      if (due.evaluation) await host.evaluateAfterStep();
      await host.runWaitingTasks();
    }
    return { steps: all, stopped: null };
  } finally {
    // a step queued behind one that failed (or a loop ended by its signal) is cancelled on the workers
    if (queued) {
      host.cancel();
      await queued.catch(() => {});
    }
    next?.catch(() => {});
  }
}
