/**
 * What a worker is doing (Status's WorkerState: IDLE, READY, STEPPING, EVALUATING, FAILED) and the rules of its
 * calls: one step or evaluation at a time; a step sent while the one before it runs (feature "queued-steps")
 * held until that one ends; the coordinator cancelling a call aborts it; any failure leaves the worker FAILED
 * (its peer may be waiting for a tensor that will never come) until the next Configure.
 */
import type { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { WorkerState } from './protocol.js';
import { RpcError, describeError, isServiceError } from './rpc.js';
import { describePhase, type Phase } from './exchange.js';
import { redactRunId, touch, type Run } from './run.js';

export class Activity {
  state: WorkerState = 'IDLE';
  /** Why the worker is FAILED ('' otherwise). */
  lastError = '';
  /** Settles when the step now running ends, either way (null between steps); whether a step waits for it. */
  private stepEnds: Promise<void> | null = null;
  private stepQueued = false;

  constructor(
    private readonly tower: number,
    private readonly log: (line: string) => void,
  ) {}

  /** A step or an evaluation is running. */
  get busy(): boolean {
    return this.state === 'STEPPING' || this.state === 'EVALUATING';
  }

  /** Configured (READY), nothing failed. */
  ready(): void {
    this.state = 'READY';
    this.lastError = '';
  }

  /** FAILED for `why`, outside any call (a lost device). */
  fail(why: string): void {
    this.state = 'FAILED';
    this.lastError = why;
  }

  /** Refuses a step or evaluation while another runs or after a failure. */
  checkIdle(run: Run): void {
    if (this.state === 'STEPPING') throw new RpcError(grpc.status.FAILED_PRECONDITION, `busy: step ${run.stepsDone} is running`);
    if (this.state === 'EVALUATING') throw new RpcError(grpc.status.FAILED_PRECONDITION, `busy: evaluation ${run.evaluationsDone} is running`);
    if (this.state === 'FAILED') throw new RpcError(grpc.status.FAILED_PRECONDITION, `the run failed earlier (${this.lastError}); configure again`);
  }

  /**
   * Holds step `step`, sent while the step before it runs (feature "queued-steps"), until that step ends; the
   * caller then checks the worker as for any step (a failed step before it refuses it). One step waits at most;
   * a wait cancelled by the coordinator leaves the worker as it is. `current`: the worker's run after the wait.
   */
  async afterCurrentStep(run: Run, step: number, call: EventEmitter, current: () => Run | null): Promise<void> {
    const ends = this.stepEnds;
    if (ends === null || this.stepQueued) throw new RpcError(grpc.status.FAILED_PRECONDITION, `busy: step ${run.stepsDone} is running and step ${step} waits for it already`);
    this.stepQueued = true;
    let onCancel = () => {};
    const cancelled = new Promise<never>((_, reject) => {
      onCancel = () => reject(new RpcError(grpc.status.CANCELLED, `step ${step} cancelled by the coordinator while it waited for step ${step - 1}`));
    });
    call.on('cancelled', onCancel);
    try {
      await Promise.race([ends, cancelled]);
    } finally {
      this.stepQueued = false;
      call.removeListener('cancelled', onCancel);
    }
    if (current() !== run) throw new RpcError(grpc.status.FAILED_PRECONDITION, `run ${redactRunId(run.id)} was replaced while step ${step} waited for step ${step - 1}`);
  }

  /**
   * Runs a step or an evaluation in state `state`: the coordinator cancelling the call aborts it;
   * on any failure the worker is FAILED.
   */
  async guarded<T>(run: Run, phase: Phase, state: 'STEPPING' | 'EVALUATING', call: EventEmitter, f: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const what = describePhase(phase);
    this.state = state;
    let ended = () => {};
    if (state === 'STEPPING') this.stepEnds = new Promise<void>((resolve) => (ended = resolve));
    const abort = new AbortController();
    run.abort = abort;
    const onCancel = () => abort.abort(new RpcError(grpc.status.CANCELLED, `${what} cancelled by the coordinator`));
    call.on('cancelled', onCancel);
    try {
      const reply = await f(abort.signal);
      // FAILED meanwhile (a lost device) stays FAILED
      if (this.state === state) this.state = 'READY';
      return reply;
    } catch (e) {
      const err = abort.signal.aborted && abort.signal.reason instanceof Error ? abort.signal.reason : e;
      this.state = 'FAILED';
      this.lastError = `${what}: ${describeError(err)}`;
      run.mailbox.close(new Error(`the run failed at ${what}`));
      this.log(`${what} failed: ${describeError(err)}`);
      if (err instanceof RpcError) throw err;
      throw new RpcError(isServiceError(err) ? err.code : grpc.status.INTERNAL, `tower ${this.tower}, ${what}: ${describeError(err)}`);
    } finally {
      touch(run);
      run.abort = null;
      call.removeListener('cancelled', onCancel);
      if (state === 'STEPPING') this.stepEnds = null;
      ended();
    }
  }
}
