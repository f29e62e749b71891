/**
 * A worker belongs to one run at a time: the run that configured it holds it while it has a call in flight, or
 * made its last call less than the lease ago on a connection that is still open, and has not released it
 * (Worker.Release). Another run's Handshake and Configure are refused meanwhile, naming the holder by its
 * start time only (the run id is what Step and Peer.Exchange require).
 */
import type { WorkerState } from './protocol.js';
import type { OpenConnections } from './connection-limits.js';
import { redactRunId, type Run } from './run.js';

export interface LeaseQuestion {
  /** The configured run, if any. */
  readonly run: Run | null;
  /** The run asking for the worker. */
  readonly runId: string;
  readonly state: WorkerState;
  readonly leaseMs: number;
  /** The worker's open connections (null: not known, the lease runs on time alone). */
  readonly connections: OpenConnections | null;
}

/** Why `q.runId` may not take the worker, in words; null when it may. */
export function leaseRefusal(q: LeaseQuestion, now = performance.now()): string | null {
  const { run, state } = q;
  if (!run || run.id === q.runId || run.released || state === 'IDLE' || state === 'FAILED') return null;
  const busy = state === 'STEPPING' || state === 'EVALUATING';
  const idleMs = now - run.lastCall;
  // a coordinator that is gone (killed: its connection closed) holds nothing
  const gone = run.holder !== undefined && q.connections !== null && !q.connections.has(run.holder);
  if (!busy && (idleMs >= q.leaseMs || gone)) return null;
  const when = busy ? `${state === 'STEPPING' ? 'a step' : 'an evaluation'} of it is running` : `its last call was ${(idleMs / 1000).toFixed(0)} s ago`;
  return `this worker belongs to run ${redactRunId(run.id)} (${run.stepsDone} steps done; ${when}); its lease lapses ${(q.leaseMs / 1000).toFixed(0)} s after its last call`;
}
