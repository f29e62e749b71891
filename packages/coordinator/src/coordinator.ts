/**
 * The coordinator: checks that the two workers belong together (handshake.ts),
 * configures them for a run (configure.ts), then for each step sends the batch to both at once
 * (both-workers.ts) in the loop of run-loop.ts, the next step queued during this one when nothing falls between
 * them (run-schedule.ts), and logs the metrics (step-metrics.ts); it writes checkpoints (run-checkpoint.ts); between steps it evaluates held-out
 * batches the same way (Evaluate: forward only), and gets the logits back
 * from tower 0. It never sees a parameter or an activation: the workers
 * exchange crossing tensors directly.
 */
import { listCheckpoints, stepOfFile, type LrScheduleState, type SgdHyper } from '@alexnet-mp/core';
import {
  PROTOCOL_VERSION,
  WorkerClient,
  maxMessageBytes,
  modelIdentity,
  type ConfigureReply,
  type EvaluateReply,
  type HandshakeReply,
  type ModelIdentity,
  type StepReply,
} from '@alexnet-mp/worker';
import type { U8Batch } from './batch-source.js';
import { evalBatchResult, evalBatchSize, evaluateBatches, type EvalBatchResult, type EvalMetrics, type EvalResult } from './evaluation.js';
import { UserError } from './cli/errors.js';
import { CallDeadlines } from './health.js';
import { BothWorkers } from './both-workers.js';
import { BetweenStepTasks } from './between-steps.js';
import { dueAfter } from './run-schedule.js';
import { batchOf, runLoop, type RunLoopHost } from './run-loop.js';
import { DivergedError, LossWatch, RUN_AWAY_FACTOR, checkLoss, checkParams } from './divergence.js';
import { readCheckpointHeader } from './resume.js';
import { MicroBatchChoice } from './micro-batches.js';
import { handshakeBoth } from './handshake.js';
import { stepMetrics, workerStepMetrics } from './step-metrics.js';
import { encodeRunCheckpoint, pullParameters } from './run-checkpoint.js';
import { checkPeersReached, configureWorkers, resumeWorkers } from './configure.js';
import { CheckpointFiles } from './checkpoint-files.js';

export { newRunId, WorkerFailure, type CoordinatorOptions, type ResumePoint, type StepMetrics, type WorkerStepMetrics } from './coordinator-types.js';
import { newRunId, type CoordinatorOptions, type ResumePoint, type StepMetrics } from './coordinator-types.js';

/** How often a held-out evaluation under way says how far it is (the info lines). */
export const EVAL_PROGRESS_MS = 15_000;

export class Coordinator {
  readonly runId: string;
  readonly identity: ModelIdentity;
  readonly clients: [WorkerClient, WorkerClient];
  handshakes: [HandshakeReply, HandshakeReply] | null = null;
  configured: [ConfigureReply, ConfigureReply] | null = null;
  private readonly info: (line: string) => void;
  private stepsDone = 0;
  private queuedCount = 0;
  /** Time `run` waited for the data source, and the time it ran, in ms. */
  private dataWaitMs = 0;
  private runMs = 0;
  /** The checkpoint files written, and when (null without the checkpoint option). */
  private readonly checkpoints: CheckpointFiles | null;
  /** The training loss watched for running away (divergence.ts). */
  private readonly lossWatch: LossWatch;
  private evaluationsDone = 0;
  /** The evaluation of the step resumed from is still to do (ResumePoint.evalDue), or was done and logged (evalLogged). */
  private evalPending = false;
  private evalLogged: { readonly top1Error: number } | null = null;
  /** The calls on both workers, and those in flight (two steps when one is queued behind the other). */
  private readonly both: BothWorkers;
  /** Inside `run` (between-step tasks wait for the current step). */
  private running = false;
  /** The tasks that need the workers between steps (between-steps.ts). */
  private readonly tasks: BetweenStepTasks;
  private stopRequest: string | null = null;
  /** Whether a checkpoint is wanted after the current step beyond the schedule (a worker draining: noteDraining says so). */
  private checkpointAsked = false;
  /** The last step sent to the workers (a queued one runs after the step in progress): a drain's checkpoint comes after it. */
  private lastSentStep = -1;
  /** The towers whose draining has been said (once each). */
  private readonly drainSaid = new Set<number>();
  /** Set when `run` ended before its steps were done because of requestStop: why, and after which step. */
  stoppedEarly: { reason: string; step: number } | null = null;
  /** The largest evaluation batch the message size limits allow. */
  readonly maxEvalBatch: number;
  private readonly deadlines: CallDeadlines;
  /** The schedule's state at the start (restored when a restart goes back to step 0). */
  private readonly initialSchedule: LrScheduleState | null;
  /** How many micro-batches each step is cut into (micro-batches.ts). */
  readonly microBatches: MicroBatchChoice;

  constructor(readonly o: CoordinatorOptions) {
    this.runId = o.runId ?? newRunId();
    this.identity = modelIdentity(o.spec, o.protocolVersion ?? PROTOCOL_VERSION);
    const epochs = o.stepsPerEpoch !== undefined;
    if (o.eval && !(Number.isInteger(o.eval.every) && o.eval.every >= (epochs ? 0 : 1))) throw new UserError(`evaluation every ${o.eval.every} steps: give an integer >= ${epochs ? 0 : 1}`);
    if (epochs && !(Number.isInteger(o.stepsPerEpoch) && o.stepsPerEpoch! >= 1)) throw new Error(`stepsPerEpoch ${o.stepsPerEpoch}: give an integer >= 1`);
    this.maxEvalBatch = Math.max(o.batch, o.evalBatch ?? 0, o.eval?.set.maxBatch ?? 0);
    const limit = maxMessageBytes(o.spec, this.maxEvalBatch);
    this.clients = [new WorkerClient(o.workers[0], limit, o.security), new WorkerClient(o.workers[1], limit, o.security)];
    this.info = o.info ?? (() => {});
    this.deadlines = new CallDeadlines(o.deadlines);
    this.initialSchedule = o.schedule ? { ...o.schedule.state } : null;
    this.both = new BothWorkers((t) => this.label(t));
    this.tasks = new BetweenStepTasks(() => this.running || !this.both.idle);
    this.checkpoints = o.checkpoint ? new CheckpointFiles(o.checkpoint) : null;
    this.lossWatch = new LossWatch(o.spec.classes);
    this.microBatches = new MicroBatchChoice(o.batch, o.microBatches === 'auto' ? undefined : (o.microBatches ?? 1), this.info);
  }

  private label(t: number): string {
    return `worker ${t} (tower ${t}) at ${this.o.workers[t]}`;
  }

  /**
   * Handshake with both workers, then configure both (they say hello to each other) and continue from `from`
   * (default: the resume option; null: step 0). Called again after a lost worker (recovery.ts): a worker still
   * finishing an abandoned step is asked again until `timeoutMs`.
   */
  async start(o: { from?: ResumePoint | null; timeoutMs?: number; timeoutOption?: string } = {}): Promise<void> {
    const timeoutMs = o.timeoutMs ?? this.o.connectTimeoutMs ?? 30_000;
    const from = o.from === undefined ? (this.o.resume ?? null) : o.from;
    this.deadlines.reset();
    this.evaluationsDone = 0;
    this.stepsDone = 0;
    this.queuedCount = 0;
    this.lastSentStep = -1;
    this.evalPending = from?.evalDue === true;
    this.evalLogged = from?.evalLogged ?? null;
    this.checkpoints?.continueFrom(from?.file ?? null, from?.byTime === true);
    if (this.o.schedule) this.o.schedule.state = { ...(from?.schedule ?? this.initialSchedule!) };
    this.handshakes = await handshakeBoth(
      this.clients,
      {
        identity: this.identity,
        workers: this.o.workers,
        runId: this.runId,
        takeOver: this.o.takeOver === true,
        security: this.o.security,
        batch: this.o.batch,
        needs: { decayBiases: this.o.hyper.decayBiases, resume: this.o.resume !== undefined, evaluate: this.o.eval !== undefined },
        evalMaxBatch: this.o.eval?.set.maxBatch ?? null,
        microBatches: this.microBatches,
        info: this.info,
        timeoutMs,
      },
      (t) => this.label(t),
      o.timeoutOption ?? '--connect-timeout',
    );
    const target = { clients: this.clients, o: this.o, runId: this.runId, microBatches: this.microBatches.configured, restart: this.configured !== null, label: (t: number) => this.label(t) };
    const configured = await configureWorkers(target, timeoutMs);
    checkPeersReached(this.handshakes, configured, this.o.workers, (t) => this.label(t));
    this.configured = configured;
    // workers configured again (a restart): one that drains now is another process, said and checkpointed for anew
    this.drainSaid.clear();
    for (const t of [0, 1]) this.info(`${this.label(t)}: configured, ${configured[t]!.parameters} parameters, peer ${configured[t]!.peer_address}`);
    const r = from;
    if (r) {
      await resumeWorkers(target, r.params, r.step);
      this.stepsDone = r.step;
      this.info(`both workers continue from the checkpoint at step ${r.step}`);
    }
  }

  /** Steps sent while the one before them ran (queued steps), since `start`. */
  get stepsQueued(): number {
    return this.queuedCount;
  }

  /** Steps done (the next step's number). */
  get stepsCompleted(): number {
    return this.stepsDone;
  }

  /** The epoch of a step (0-based; 0 without stepsPerEpoch). */
  epochOf(step: number): number {
    return this.o.stepsPerEpoch ? Math.floor(step / this.o.stepsPerEpoch) : 0;
  }

  /** The SGD hyper-parameters of a step: the schedule's learning rate for its epoch. */
  hyperOf(step: number): SgdHyper {
    return { ...this.o.hyper, lr: this.o.schedule ? this.o.schedule.lr(this.epochOf(step)) : this.o.hyper.lr };
  }

  /** The share of `run`'s time spent waiting for the data source (0 when it kept ahead). */
  get dataWaitShare(): number {
    return this.runMs > 0 ? this.dataWaitMs / this.runMs : 0;
  }

  /**
   * Pulls both workers' parameters and momentum (GetParameters) and writes a checkpoint of the steps done
   * into `checkpoint.dir`; returns its path. `evalDue`: an evaluation of this step follows (a run resumed from
   * this checkpoint does it first). `byTime`: written only because `checkpoint.everyMs` passed: such a
   * checkpoint is replaced by the next checkpoint of any kind and does not count against `keep`, so the
   * checkpoints by steps and epochs stay `keep` deep however often time writes one.
   */
  async writeCheckpoint(evalDue = false, byTime = false): Promise<string> {
    if (!this.checkpoints) throw new Error('no checkpoint option');
    // a deadline as for steps (10x the slowest so far, at least --step-deadline): a worker that never sends them is lost
    const timeoutMs = this.deadlines.next('parameters');
    const tp = performance.now();
    const params = await pullParameters(this.clients, (t) => this.label(t), this.stepsDone, timeoutMs);
    this.deadlines.observe('parameters', performance.now() - tp);
    const step = this.stepsDone;
    // never a checkpoint of diverged weights: the previous one stays the latest
    checkParams(params, step);
    if (this.lossWatch.runningAway) throw new DivergedError(`the loss has run away over the last steps before step ${step} (above ${RUN_AWAY_FACTOR} times that of guessing): training diverged; no checkpoint written of these weights`, step - 1);
    const calm = this.lossWatch.noteCheckpoint(step);
    const bytes = encodeRunCheckpoint(this.o, params, { runId: this.runId, step, lr: this.hyperOf(step).lr, epoch: this.epochOf(step), evalDue, byTime, calm });
    const file = this.checkpoints.write(step, bytes, byTime);
    this.checkpointAsked = false;
    return file;
  }

  /**
   * The latest checkpoint on disk written while training was calm (divergence.ts LossWatch; one written before
   * this coordinator started counts as calm), or null: what a diverged run resumes from.
   */
  lastCalmCheckpoint(): string | null {
    if (!this.o.checkpoint) return null;
    const files = listCheckpoints(this.o.checkpoint.dir);
    const steps = files.map((f) => stepOfFile(f)).filter((s): s is number => s !== null);
    // one written before this process (a restarted coordinator) says in its header whether the loss was calm
    const kept = (s: number): boolean | undefined => {
      const f = files.find((x) => stepOfFile(x) === s);
      try {
        const c = f ? (readCheckpointHeader(f).state.extra as { loss_calm?: boolean } | undefined)?.loss_calm : undefined;
        return typeof c === 'boolean' ? c : undefined;
      } catch {
        return undefined;
      }
    };
    const step = this.lossWatch.lastCalm(steps, kept);
    return step === null ? null : (files.find((f) => stepOfFile(f) === step) ?? null);
  }

  /** The same call on both workers at once (both-workers.ts); throws WorkerFailure naming the worker that failed first. */
  private async onBoth<R>(what: string, call: (t: number, signal: AbortSignal) => Promise<R>): Promise<[R, R]> {
    try {
      return await this.both.call(what, call);
    } finally {
      // tasks asked for during a call made outside `run` (e.g. an evaluation on its own) run after it
      if (!this.running && this.tasks.pending) this.tasks.flush();
    }
  }

  /** One step on both workers; throws WorkerFailure naming the worker that failed first. */
  step(b: U8Batch): Promise<StepMetrics> {
    return this.stepAt(this.stepsDone, b, null);
  }

  /**
   * Step `step` on both workers. `previous`: the step before it, still running (queued steps): this one is sent
   * now, the workers start it as they end that one, its time counts from that one's replies, and it is counted
   * after it (abandoned when it fails: `run` then cancels this one).
   */
  private async stepAt(step: number, b: U8Batch, previous: Promise<unknown> | null): Promise<StepMetrics> {
    const labels = Array.from(b.labels);
    let t0 = performance.now();
    const h = this.hyperOf(step);
    const hyper = { lr: h.lr, momentum: h.momentum, weight_decay: h.weightDecay, no_bias_decay: h.decayBiases !== true };
    // a queued step's deadline covers the step it waits for too
    const timeoutMs = this.deadlines.next('step', previous ? 2 : 1);
    const micro = this.microBatches.next;
    // every --norms-every steps (after the N-th, 2N-th, ... step of the run) the workers read their layers' norms too
    const normsEvery = this.o.normsEvery ?? 0;
    const norms = normsEvery > 0 && (step + 1) % normsEvery === 0;
    const replying = this.onBoth(`step ${step}`, (t, signal) => this.clients[t]!.step({ run_id: this.runId, step, images: b.images, labels, hyper, micro_batches: micro, ...(norms ? { layer_norms: true } : {}) }, { signal, timeoutMs }));
    if (previous) {
      replying.catch(() => {}); // awaited below
      if (await previous.then(() => false, () => true)) {
        // `run` cancels this step's calls: they have settled when this one does
        await replying.catch(() => {});
        throw new Error(`step ${step} abandoned: step ${step - 1} failed`);
      }
      t0 = Math.max(t0, performance.now());
    }
    const replies: StepReply[] = await replying;
    this.noteDraining(replies, step);
    // a queued step's time counts from the step before's replies as this process saw them (a coordinator busy just
    // then sees its replies already there: the rates take the workers' own time as the floor, step-metrics.ts)
    const ms = performance.now() - t0;
    this.deadlines.observe('step', ms);
    const r0 = replies[0]!;
    // a diverged step ends the run before anything counts it (its update already made the weights non-finite)
    checkLoss(step, r0.loss, hyper.lr);
    this.lossWatch.observe(step, r0.loss, hyper.lr);
    this.stepsDone++;
    const workers = workerStepMetrics(replies);
    this.microBatches.observe({ ms, workers });
    return stepMetrics(step, hyper.lr, micro, ms, replies, workers);
  }

  /**
   * A worker asked to stop (worker --drain) says so in its step replies: a checkpoint after this step (when the
   * run writes checkpoints), which is what the worker waits for before it goes; the run then waits for it to come
   * back (recovery.ts) and continues from that checkpoint.
   */
  private noteDraining(replies: readonly StepReply[], step: number): void {
    for (const [t, r] of replies.entries()) {
      if (!r.draining || this.drainSaid.has(t)) continue;
      this.drainSaid.add(t);
      if (this.o.checkpoint) {
        this.checkpointAsked = true;
        // after the step queued behind this one, when there is one (the run loop checkpoints once no step is queued)
        this.info(`${this.label(t)} is draining (asked to stop): a checkpoint after step ${Math.max(step, this.lastSentStep) + 1}, which it waits for before it goes`);
      } else {
        this.info(`${this.label(t)} is draining (asked to stop), and this run writes no checkpoints (no --run-dir): what it trained is lost when it goes`);
      }
    }
  }

  /**
   * One batch through both workers' forward pass (Worker.Evaluate) with the current parameters: tower 0's
   * logits ([class][image]) and, when the batch has labels, its loss and top-1/top-5 counts. Between steps only.
   */
  async evaluateBatch(b: U8Batch): Promise<EvalBatchResult> {
    const n = evalBatchSize(this.o.spec, b, this.maxEvalBatch, this.handshakes ?? [], (t) => this.label(t));
    const classes = this.o.spec.classes;
    const evaluation = this.evaluationsDone;
    const req = { run_id: this.runId, evaluation, step: this.stepsDone, images: b.images, labels: Array.from(b.labels) };
    const kind = `eval/${n}`;
    const timeoutMs = this.deadlines.next(kind);
    const te = performance.now();
    const replies: EvaluateReply[] = await this.onBoth(`evaluation batch ${evaluation} (after step ${this.stepsDone})`, (t, signal) => this.clients[t]!.evaluate(req, { signal, timeoutMs }));
    this.deadlines.observe(kind, performance.now() - te);
    this.evaluationsDone++;
    return evalBatchResult(evaluation, n, classes, b.labels, replies);
  }

  /**
   * Evaluates a set of labelled batches with the current parameters: mean loss, top-1 and top-5 error over all
   * their images, and (by default) each batch's logits; with `views` > 1, each image from its views' averaged
   * softmax (evaluation.ts's evaluateBatches).
   */
  evaluate(batches: AsyncIterable<U8Batch> | Iterable<U8Batch | Promise<U8Batch>>, o: { logits?: boolean; views?: number } = {}): Promise<EvalResult> {
    return evaluateBatches(this, batches, o);
  }

  /** Evaluates `eval.set` (see the options), as a metrics line. */
  async evaluateHeldOut(): Promise<EvalMetrics> {
    if (!this.o.eval) throw new Error('no evaluation set: give the eval option');
    const views = this.o.eval.set.views ?? 1;
    // a long evaluation (a whole test set) says how far it is every EVAL_PROGRESS_MS, rather than a silent pause
    let scored = 0;
    const set = this.o.eval.set;
    async function* counted(): AsyncIterable<U8Batch> {
      for await (const b of set.batches()) {
        yield b;
        scored += b.labels.length;
      }
    }
    const t0 = performance.now();
    const step = this.stepsDone;
    const progress = this.o.info ? setInterval(() => this.info(`evaluation after step ${step}: ${scored} images sent to the workers, ${((performance.now() - t0) / 1000).toFixed(0)} s`), this.o.evalProgressMs ?? EVAL_PROGRESS_MS) : undefined;
    try {
      const { logits: _l, labels: _b, ...summary } = await this.evaluate(counted(), { logits: false, views });
      return views > 1 ? { event: 'eval', ...summary, views } : { event: 'eval', ...summary };
    } finally {
      clearInterval(progress);
    }
  }

  /**
   * Runs `steps` more steps from the source, prefetching the next batch while the workers compute; with the
   * eval option, evaluates the held-out set every `eval.every` steps, at each epoch's end (feeding a plateau
   * schedule) and after the last step; with the checkpoint option, writes checkpoints (see the options).
   * With queued steps (the queueSteps option) the next step goes out during this one when nothing is due
   * between them; a run that ends otherwise than between steps (a failed step, `o.signal`, `onStep`
   * throwing) cancels the step queued behind it, leaving the workers failed until they are configured again.
   * Returns the steps' metrics (none with `keepSteps` false: a long run passes them on through `onStep` only).
   */
  async run(
    steps: number,
    onStep: (m: StepMetrics) => void,
    o: { signal?: AbortSignal; onEval?: (m: EvalMetrics) => void; onCheckpoint?: (file: string, step: number) => void; onLrDrop?: (lr: number, epoch: number) => void; keepSteps?: boolean } = {},
  ): Promise<StepMetrics[]> {
    const tRun = performance.now();
    // the first batch is made while the tasks and a pending evaluation run
    const first = steps > 0 ? batchOf(this.o, this.stepsDone) : null;
    this.running = true;
    // minutes between checkpoints count from the run's start, or its last checkpoint
    this.checkpoints?.restartClock();
    try {
      // a task begun outside `run` finishes first (tasks from now on wait for the first step)
      await this.tasks.settled;
      // resumed from a checkpoint written before its evaluation: that evaluation first, unless the log has it
      if (this.evalPending && this.o.eval && steps > 0) {
        if (this.evalLogged) this.afterEvaluation(this.stepsDone, this.evalLogged.top1Error, o);
        else await this.evaluateAfterStep(o);
      }
      this.evalPending = false;
      this.evalLogged = null;
      const c = this;
      const host: RunLoopHost = {
        o: this.o,
        get stepsDone() {
          return c.stepsDone;
        },
        get stopRequest() {
          return c.stopRequest;
        },
        get checkpointAsked() {
          return c.checkpointAsked;
        },
        sendStep: (step, b, previous) => {
          if (previous) this.queuedCount++;
          this.lastSentStep = step;
          return this.stepAt(step, b, previous);
        },
        queueingAfter: (done) => this.queueingAfter(done),
        writeCheckpoint: (evalDue, byTime) => this.writeCheckpoint(evalDue, byTime),
        evaluateAfterStep: () => this.evaluateAfterStep(o),
        runWaitingTasks: () => this.tasks.runWaiting(),
        cancel: () => this.cancel(),
        dataWaited: (ms) => (this.dataWaitMs += ms),
        sinceCheckpointMs: () => this.sinceCheckpointMs(),
      };
      const r = await runLoop(host, steps, first, onStep, o);
      if (r.stopped) this.stoppedEarly = r.stopped;
      return r.steps;
    } finally {
      this.running = false;
      // tasks queued during the last step run now (nothing is in flight any more), before any later ones
      this.tasks.flush();
      this.runMs += performance.now() - tRun;
      // the workers' lease ends with the run (a later call of this run takes them back): another run may use them at once
      await this.release();
    }
  }

  /** Milliseconds since the last checkpoint was written, or `run` started (checkpoints by time). */
  private sinceCheckpointMs(): number {
    return this.checkpoints?.sinceMs() ?? 0;
  }

  /**
   * Whether the next step may be sent before the step that makes `done` steps (not the run's last) has answered:
   * both workers take queued steps, the option allows them, the micro-batch count is settled, and nothing is to
   * happen between the two (a checkpoint, an evaluation, a task, a stop).
   */
  private queueingAfter(done: number): boolean {
    if (this.o.queueSteps === false || this.stopRequest !== null || this.checkpointAsked || this.tasks.pending || !this.microBatches.settled) return false;
    if (!this.handshakes?.every((h) => h.features.includes('queued-steps'))) return false;
    const due = dueAfter(this.o, done, false, this.sinceCheckpointMs());
    return !due.checkpoint && !due.evaluation;
  }

  /** The held-out evaluation after the step just done; at an epoch's end its top-1 error feeds a plateau schedule. */
  private async evaluateAfterStep(o: { onEval?: (m: EvalMetrics) => void; onLrDrop?: (lr: number, epoch: number) => void }): Promise<void> {
    const done = this.stepsDone;
    const e = await this.evaluateHeldOut();
    o.onEval?.(e);
    this.afterEvaluation(done, e.top1_error, o);
  }

  /** An evaluation after step `done` ended with `top1Error`: at an epoch's end it feeds a plateau schedule (which may drop the rate). */
  private afterEvaluation(done: number, top1Error: number, o: { onLrDrop?: (lr: number, epoch: number) => void }): void {
    const epochEnd = this.o.stepsPerEpoch !== undefined && done % this.o.stepsPerEpoch === 0;
    if (epochEnd && this.o.schedule?.observe(top1Error)) o.onLrDrop?.(this.hyperOf(done).lr, this.epochOf(done));
  }

  /**
   * Runs `task` while no step or evaluation is in flight: during `run`, after the current step (and the one
   * queued behind it, if any: none is queued while a task waits; and the evaluation or checkpoint due) and before
   * the next, so training waits for the task once; outside `run`, at once
   * (one task at a time; `run` starts its first step after them).
   * For calls that a worker answers only between steps (GetParameters, inspection), e.g. from the dashboard.
   */
  betweenSteps<T>(task: () => Promise<T>): Promise<T> {
    return this.tasks.add(task);
  }

  /**
   * A call on both workers at once that the workers count as an evaluation (Worker.GetActivations for
   * inspection: inspect/live.ts), between steps: `call` gets the evaluation number and the steps done; the
   * number is used up only when both workers answered. Callers serialise their calls (LiveInspector does).
   */
  asEvaluation<R>(what: string, call: (t: number, evaluation: number, step: number, signal: AbortSignal) => Promise<R>): Promise<{ step: number; replies: [R, R] }> {
    return this.betweenSteps(async () => {
      const evaluation = this.evaluationsDone;
      const step = this.stepsDone;
      const replies = await this.onBoth(`${what} (after step ${step})`, (t, signal) => call(t, evaluation, step, signal));
      this.evaluationsDone++;
      return { step, replies };
    });
  }

  /** Whether `run` is going on (a stop asked for now is answered after the step in progress). */
  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Ends `run` after the step in progress (and the one queued behind it, already on the workers; and the
   * evaluation and checkpoint due after it), writing a checkpoint
   * of the steps done when the checkpoint option is on and none was just written; `stoppedEarly` then says so.
   */
  requestStop(reason: string): void {
    this.stopRequest ??= reason;
  }

  /** Why the run was asked to stop (requestStop), or null. */
  get stopRequested(): string | null {
    return this.stopRequest;
  }

  /** Cancels a step in flight (the workers abort it). */
  cancel(): void {
    this.both.cancel();
  }

  /**
   * Ends this run's lease on both workers (Release), so that another run may use them at once; best effort
   * (a lost worker or an older one without the call holds no lease worth ending), at most 2 s.
   */
  async release(): Promise<void> {
    await Promise.allSettled(this.clients.map((c) => c.release(this.runId, { timeoutMs: 2000 })));
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}
