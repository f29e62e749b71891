/**
 * The same call on both workers at once (Step, Evaluate, inspection): the first failure cancels the other call
 * (its worker may be waiting for a tensor that will never come) and throws a WorkerFailure naming the worker that
 * failed first. Calls in flight are counted (two steps when one is queued behind the other) and can be cancelled.
 */
import * as grpc from '@grpc/grpc-js';
import { describeError, isServiceError } from '@alexnet-mp/worker';
import { isLostWorker } from './health.js';
import { WorkerFailure } from './coordinator-types.js';

export class BothWorkers {
  private readonly inFlight = new Set<AbortController>();

  /** `label`: how a worker is named in a failure ("worker 0 (tower 0) at ..."). */
  constructor(private readonly label: (t: number) => string) {}

  /** Whether no call is in flight. */
  get idle(): boolean {
    return this.inFlight.size === 0;
  }

  /** Cancels every call in flight (the workers abort them). */
  cancel(): void {
    for (const a of this.inFlight) a.abort(new Error('cancelled'));
  }

  /** `call` on tower 0 and tower 1 at once; `what` names it in a failure ("step 3"). */
  async call<R>(what: string, call: (t: number, signal: AbortSignal) => Promise<R>): Promise<[R, R]> {
    const abort = new AbortController();
    this.inFlight.add(abort);
    let firstFailed: number | null = null;
    const settled = await Promise.allSettled(
      [0, 1].map((t) =>
        call(t, abort.signal).catch((e: unknown) => {
          if (firstFailed === null) {
            firstFailed = t;
            abort.abort(new Error(`tower ${t} failed`));
          }
          throw e;
        }),
      ),
    );
    this.inFlight.delete(abort);
    if (firstFailed !== null) {
      const ft: number = firstFailed;
      const reason = (t: number) => (settled[t] as PromiseRejectedResult).reason as unknown;
      const other = 1 - ft;
      const otherFailed = settled[other]!.status === 'rejected' && !(isServiceError(reason(other)) && (reason(other) as grpc.ServiceError).code === grpc.status.CANCELLED);
      throw new WorkerFailure(`${this.label(ft)} failed at ${what}: ${describeError(reason(ft))}${otherFailed ? `; ${this.label(other)} also failed: ${describeError(reason(other))}` : ''}`, ft, isLostWorker(reason(ft)));
    }
    return settled.map((s) => (s as PromiseFulfilledResult<R>).value) as [R, R];
  }
}
