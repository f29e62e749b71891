/**
 * Noticing a lost worker: deadlines on Step and Evaluate derived from the
 * step times seen so far, and which failures mean "the worker is gone" (worth
 * waiting for it and resuming) rather than "the worker refused" (a bug or a
 * wrong setup, which a restart would only repeat).
 *
 * A killed worker closes its connections and its calls fail at once; a host
 * that vanishes is noticed by the channels' keepalive pings (worker's
 * keepalive.ts); a worker that hangs (stopped, swapping, a wedged device) by
 * these deadlines.
 */
import * as grpc from '@grpc/grpc-js';
import { isServiceError } from '@alexnet-mp/worker';

export interface DeadlineOptions {
  /** The least time a step or an evaluation batch gets (ms). */
  readonly floorMs: number;
  /** A call may take this many times the slowest one of its kind so far. */
  readonly factor: number;
  /** The first call of a kind compiles the kernels: it gets this long (ms). */
  readonly firstMs: number;
}

/** Default: at least 60 s, or 10x the slowest so far; the first of each kind 10 minutes. */
export const DEFAULT_DEADLINES: DeadlineOptions = { floorMs: 60_000, factor: 10, firstMs: 10 * 60_000 };

/**
 * Deadlines per kind of call ("step", "eval/16": an evaluation of 16 images builds its own tower the first
 * time), from the slowest call of that kind seen so far.
 */
export class CallDeadlines {
  private readonly slowest = new Map<string, number>();
  private readonly seen = new Set<string>();

  constructor(readonly o: DeadlineOptions = DEFAULT_DEADLINES) {}

  /** The deadline, in ms from now, for the next call of `kind` (`calls`: one that waits for that many, a queued step's 2). */
  next(kind: string, calls = 1): number {
    // at most Node's longest timer (2^31 - 1 ms): a longer deadline would fire at once
    return Math.min(2 ** 31 - 1, calls * this.unbounded(kind));
  }

  private unbounded(kind: string): number {
    if (!this.seen.has(kind)) return Math.max(this.o.firstMs, this.o.floorMs);
    const s = this.slowest.get(kind);
    if (s === undefined) return this.o.floorMs;
    return Math.max(this.o.floorMs, this.o.factor * s);
  }

  /** A call of `kind` took `ms`; the first of each kind (compiling) does not set the pace of the others. */
  observe(kind: string, ms: number): void {
    if (!this.seen.has(kind)) {
      this.seen.add(kind);
      return;
    }
    this.slowest.set(kind, Math.max(ms, this.slowest.get(kind) ?? 0));
  }

  /** After the workers were restarted: their kernels compile again. */
  reset(): void {
    this.slowest.clear();
    this.seen.clear();
  }
}

/**
 * Whether a failed call means that the worker (or its peer) was lost: the connection failed or dropped
 * (UNAVAILABLE, also what a worker reports when its peer vanished), the call ran past its deadline, or the
 * worker no longer knows the run (it was restarted between steps). Anything else (a refusal, a bug) is not
 * healed by waiting.
 */
export function isLostWorker(e: unknown): boolean {
  if (!isServiceError(e)) return false;
  if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) return true;
  // a restarted worker: not configured, or configured for another run by another coordinator is not this case
  return e.code === grpc.status.FAILED_PRECONDITION && /not configured/.test(e.details);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Calls `f` until it does not fail with "busy" (a worker still finishing a step that was abandoned: it notices
 * the cancellation at its next crossing), for at most `timeoutMs`, backing off from 100 ms to 2 s.
 */
export async function retryWhileBusy<T>(f: () => Promise<T>, timeoutMs: number): Promise<T> {
  const until = performance.now() + timeoutMs;
  for (let wait = 100; ; wait = Math.min(2000, wait * 2)) {
    try {
      return await f();
    } catch (e) {
      const busy = isServiceError(e) && e.code === grpc.status.FAILED_PRECONDITION && /^busy: /.test(e.details);
      if (!busy || performance.now() + wait > until) throw e;
    }
    await sleep(wait);
  }
}
