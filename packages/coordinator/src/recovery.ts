/**
 * Surviving a lost worker: when a step (or an evaluation, or a checkpoint's
 * GetParameters) fails because a worker is gone or hung (health.ts), the step
 * is abandoned (the coordinator already cancelled the other worker's call),
 * the coordinator waits for both workers to answer again (a restarted worker:
 * `alexnet launch` restarts it, or its operator does), configures both again
 * and continues from the last checkpoint of this run (Worker.SetParameters,
 * as `--resume` does), or from step 0 when there is none yet. At most
 * `maxRestarts` times in a run; the steps from the checkpoint on are done and
 * logged again, with the same numbers, batches and dropout masks.
 */
import fs from 'node:fs';
import { decodeCheckpoint, type LrScheduleState, type TowerParams } from '@alexnet-mp/core';
import { describeError } from '@alexnet-mp/worker';
import { WorkerFailure, type Coordinator, type ResumePoint, type StepMetrics } from './coordinator.js';
import type { EvalMetrics } from './evaluation.js';
import { runOfCheckpointFile, type SavedRun } from './resume.js';
import { evaluationLoggedAfter } from './run-files.js';
import { StepTally } from './step-tally.js';
import { UserError } from './cli/errors.js';

export interface RecoveryOptions {
  /** Restarts allowed in the run (0: a lost worker ends it, as before). */
  readonly maxRestarts: number;
  /** How long to wait, each time, for the lost worker to answer again. */
  readonly waitMs: number;
  /** The checkpoint the run was resumed from, if any: the starting point until this run writes one. */
  readonly resumedFrom?: string;
  readonly info: (line: string) => void;
  /** Told of each restart before it happens (a metrics line). */
  readonly onRestart?: (e: RestartEvent) => void;
  /** Told of a lost worker before waiting for it (a metrics line: launch kills a worker whose process still lives, to restart it). */
  readonly onLost?: (e: LostEvent) => void;
}

export interface LostEvent {
  event: 'worker_lost';
  tower: number;
  /** The lost worker's process as its handshake said (null: not known). */
  pid: number | null;
  reason: string;
}

export interface RestartEvent {
  event: 'restart';
  /** 1 for the first restart of the run. */
  restart: number;
  max_restarts: number;
  /** The failure that caused it. */
  reason: string;
  tower: number;
  /** The step the run continues from (the checkpoint's, or 0). */
  from_step: number;
  checkpoint: string | null;
  waited_s: number;
}

export interface RunHooks {
  onEval?: (m: EvalMetrics) => void;
  onCheckpoint?: (file: string, step: number) => void;
  onLrDrop?: (lr: number, epoch: number) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Recovery {
  private lastCheckpoint: string | null;
  /** Restarts in a row: since the run last wrote a checkpoint past the step a restart continued from (--max-restarts bounds them). */
  restarts = 0;
  /** The step the last restart continued from. */
  private restartedAt = 0;
  /** True from a lost worker until the run continues (no step to end gracefully then). */
  recovering = false;

  /** The latest checkpoint of this run (the one a restart continues from), null when none yet. */
  get checkpoint(): string | null {
    return this.lastCheckpoint;
  }

  constructor(
    readonly c: Coordinator,
    readonly o: RecoveryOptions,
  ) {
    this.lastCheckpoint = o.resumedFrom ?? null;
  }

  /**
   * Runs the coordinator up to `targetSteps` steps done, restarting after lost workers; returns the tally of
   * the steps that count (after a restart, those from the checkpoint on replace the earlier ones).
   */
  async run(targetSteps: number, onStep: (m: StepMetrics) => void, hooks: RunHooks = {}): Promise<StepTally> {
    const kept = new StepTally();
    const onCheckpoint = (file: string, step: number) => {
      this.lastCheckpoint = file;
      // past its restarts, with the progress saved: a run of days may survive more than --max-restarts faults in all
      if (this.restarts > 0 && step > this.restartedAt) {
        this.o.info(`checkpoint at step ${step}, past the restart: --max-restarts counts from 0 again`);
        this.restarts = 0;
      }
      hooks.onCheckpoint?.(file, step);
    };
    for (;;) {
      try {
        const todo = Math.max(0, targetSteps - this.c.stepsCompleted);
        await this.c.run(
          todo,
          (m) => {
            kept.add(m);
            onStep(m);
          },
          { ...hooks, onCheckpoint, keepSteps: false },
        );
        return kept;
      } catch (e) {
        this.recovering = true;
        try {
          const from = await this.recover(e);
          kept.dropFrom(from);
        } finally {
          this.recovering = false;
        }
      }
    }
  }

  /** After a failure: rethrows it unless a restart is allowed; else waits, restarts and returns the step continued from. */
  private async recover(failure: unknown): Promise<number> {
    let e = failure;
    for (;;) {
      if (!(e instanceof WorkerFailure && e.lost)) throw e;
      // a run asked to stop (SIGTERM from a service manager, a pod's shutdown) does not wait minutes for a worker
      // that went with it: it ends now, from its last checkpoint
      if (this.c.stopRequested !== null) {
        e.message += ` (not waited for: the run was asked to stop, ${this.c.stopRequested})`;
        throw e;
      }
      const lost = await this.blameTheHungOne(e);
      if (this.restarts >= this.o.maxRestarts) {
        if (this.o.maxRestarts > 0) lost.message += ` (after ${this.restarts} restart${this.restarts === 1 ? '' : 's'}, the --max-restarts)`;
        throw lost;
      }
      this.restarts++;
      this.o.info(`${lost.message}`);
      this.o.info(`restart ${this.restarts} of ${this.o.maxRestarts}: step abandoned; waiting for both workers`);
      this.o.onLost?.({ event: 'worker_lost', tower: lost.tower, pid: this.c.handshakes?.[lost.tower]?.pid ?? null, reason: lost.message });
      try {
        const t0 = performance.now();
        const until = t0 + this.o.waitMs;
        await this.waitForWorkers(until);
        const from = this.load();
        const step = from?.step ?? 0;
        this.restartedAt = step;
        this.o.onRestart?.({
          event: 'restart',
          restart: this.restarts,
          max_restarts: this.o.maxRestarts,
          reason: lost.message,
          tower: lost.tower,
          from_step: step,
          checkpoint: this.lastCheckpoint,
          waited_s: (performance.now() - t0) / 1000,
        });
        this.o.info(from ? `resuming from ${this.lastCheckpoint} (step ${step})` : 'no checkpoint of this run yet: restarting the run from step 0');
        await this.startAgain(from, until, lost.tower);
        return step;
      } catch (e2) {
        e = e2;
      }
    }
  }

  /**
   * Handshakes and configures both workers again. A worker restarted unlike the run (another preset or build, a
   * smaller --max-batch) refuses the handshake: that is said and waited for, as a worker not back yet is, until
   * `until`; then a WorkerFailure (not lost) of tower `tower`, the one restarted, ends the run with the refusal.
   */
  private async startAgain(from: ResumePoint | null, until: number, tower: number): Promise<void> {
    for (;;) {
      try {
        await this.c.start({ from, timeoutMs: this.o.waitMs, timeoutOption: '--wait-for-workers' });
        return;
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        const left = until - performance.now();
        if (this.c.stopRequested !== null) throw new WorkerFailure(`${e.message} (not waited for: the run was asked to stop, ${this.c.stopRequested})`, tower);
        if (left <= 0) throw new WorkerFailure(`${e.message} (still so after ${(this.o.waitMs / 1000).toFixed(0)} s of --wait-for-workers)`, tower);
        this.o.info(`${e.message}: waiting for a worker that matches the run (${(left / 1000).toFixed(0)} s left of --wait-for-workers)`);
        await this.sleepUnlessStopped(Math.min(5000, left));
      }
    }
  }

  /**
   * A step that ran past its deadline fails on both workers, the healthy one waiting for its hung peer: the
   * failure names whichever call failed first. Both are asked for their status (2 s each): when the one named
   * answers and the other does not, the other is the lost one (launch kills and restarts the worker named).
   */
  private async blameTheHungOne(e: WorkerFailure): Promise<WorkerFailure> {
    if (!/DEADLINE_EXCEEDED|did not answer within/.test(e.message)) return e;
    const answers = await Promise.all(
      [0, 1].map((t) =>
        this.c.clients[t]!.status({ timeoutMs: 2000 }).then(
          () => true,
          () => false,
        ),
      ),
    );
    const other = 1 - e.tower;
    if (!answers[e.tower] || answers[other]) return e;
    return new WorkerFailure(`worker ${other} (tower ${other}) at ${this.c.o.workers[other]} does not answer (hung?): worker ${e.tower}'s step ran past its deadline waiting for it (${e.message})`, other, true);
  }

  /**
   * Asks both workers for their status until both answer, each as its own tower (a worker restarted by hand
   * with the other --tower is said, and waited for as one that has not come back); a WorkerFailure (not lost)
   * at `until`.
   */
  private async waitForWorkers(until: number): Promise<void> {
    const answered = [false, false];
    let lastSaid = -Infinity;
    for (let wait = 250; ; wait = Math.min(5000, wait * 2)) {
      await Promise.all(
        [0, 1].map(async (t) => {
          if (answered[t]) return;
          try {
            const { tower } = await this.c.clients[t]!.status({ timeoutMs: 2000 });
            if (tower !== t) throw new Error(`the worker there is tower ${tower}: restart it with --tower ${t}`);
            answered[t] = true;
          } catch (err) {
            const left = until - performance.now();
            if (left <= 0) {
              throw new WorkerFailure(
                `worker ${t} (tower ${t}) at ${this.c.o.workers[t]} did not come back within ${(this.o.waitMs / 1000).toFixed(0)} s (--wait-for-workers): ${describeError(err)}`,
                t,
              );
            }
            if (performance.now() - lastSaid > 4000) {
              lastSaid = performance.now();
              const why = describeError(err);
              this.o.info(`waiting for worker ${t} (tower ${t}) at ${this.c.o.workers[t]} to come back (${(left / 1000).toFixed(0)} s left of --wait-for-workers): ${why}`);
            }
          }
        }),
      );
      if (answered[0] && answered[1]) return;
      // a stop asked for while waiting (--stop-after's time is up): the run ends now, from its last checkpoint
      const stop = this.c.stopRequested;
      if (stop !== null) {
        const t = answered[0] ? 1 : 0;
        const who = answered[0] || answered[1] ? `worker ${t} (tower ${t}) at ${this.c.o.workers[t]} is` : `workers 0 and 1 at ${this.c.o.workers.join(' and ')} are`;
        throw new WorkerFailure(`${who} not back (not waited for: the run was asked to stop, ${stop})`, t);
      }
      await this.sleepUnlessStopped(wait);
    }
  }

  /** Sleeps `ms`, or less when the run is asked to stop meanwhile (looked at every 250 ms). */
  private async sleepUnlessStopped(ms: number): Promise<void> {
    const until = performance.now() + ms;
    for (let left = ms; left > 0 && this.c.stopRequested === null; left = until - performance.now()) await sleep(Math.min(250, left));
  }

  /** The last checkpoint of this run, decoded; null when there is none (step 0). */
  private load(): ResumePoint | null {
    const file = this.lastCheckpoint;
    if (!file) return null;
    const { params, state } = decodeCheckpoint(this.c.o.spec, fs.readFileSync(file), file);
    const saved = (state.extra ?? {}) as SavedRun;
    const sch = this.c.o.schedule;
    // the schedule's state as it was at that step, when it is the same schedule
    const schedule: LrScheduleState | undefined = sch && saved.lr_schedule && JSON.stringify(saved.lr_schedule.spec) === JSON.stringify(sch.spec) ? saved.lr_schedule.state : undefined;
    // an evaluation that followed the checkpoint (logged in its run's metrics.jsonl) is not done again
    const run = saved.eval_due === true ? runOfCheckpointFile(file) : null;
    const evalLogged = run !== null ? evaluationLoggedAfter(run.runDir, file, state.step) : null;
    return { params: params as [TowerParams, TowerParams], step: state.step, schedule, evalDue: saved.eval_due === true, evalLogged: evalLogged ?? undefined, file, byTime: saved.by_time === true };
  }
}
