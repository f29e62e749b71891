/**
 * Where a worker's exchange wait goes (`alexnet worker --trace-crossings FILE`): one JSON line a step with, for
 * each crossing tensor, when this worker sent its own, when the peer's arrived, and the spans the step waited for
 * it; and the garbage collector's pauses during the step. Times are milliseconds since the epoch on this host's
 * clock (performance.timeOrigin + performance.now()), so that the files of two workers on one host lay side by
 * side: `crossingWaits` splits each wait into the time before the peer sent its tensor (the peer still
 * computing, or paused) and the time after (the tensor travelling and being read), which
 * `bench/crossing-waits.ts` prints. A diagnostic: a line is written at the end of each step (one write a step),
 * and a file that cannot be written stops the trace, never the training.
 */
import fs from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { median } from '@alexnet-mp/core';
import type { Direction } from './protocol.js';
import { redactRunId } from './run.js';

/** A crossing tensor of a step: "pool2/FORWARD/0" (point, direction, micro-batch); "acks" for the end-of-step wait for the peer's acknowledgements. */
export type CrossingKey = string;

export const crossingKey = (point: string, dir: Direction, micro: number): CrossingKey => `${point}/${dir}/${micro}`;

export interface StepTrace {
  /** The run's id, redacted as the worker shows it to others (a file may hold several runs, one after the other). */
  run: string;
  step: number;
  tower: number;
  /** When the worker began and ended the step. */
  begin: number;
  end: number;
  /** When this worker sent its tensor of each crossing. */
  sent: Record<CrossingKey, number>;
  /** When the peer's tensor of each crossing arrived (was checked and filed). */
  arrived: Record<CrossingKey, number>;
  /** [crossing, from, to]: the spans the step was blocked waiting. */
  waited: [CrossingKey, number, number][];
  /** [from, to]: the garbage collector's pauses of this process during the step. */
  gc: [number, number][];
}

const now = () => performance.timeOrigin + performance.now();

interface StepRecord {
  sent: Record<CrossingKey, number>;
  arrived: Record<CrossingKey, number>;
  waited: [CrossingKey, number, number][];
}

export class CrossingTrace {
  /** What was noted for each step of each run not yet written ("RUN/STEP"): the peer's tensors of a step may arrive before this worker begins it. */
  private readonly records = new Map<string, StepRecord>();
  private gc: [number, number][] = [];
  private readonly observer: PerformanceObserver;
  private broken = false;

  /** Starts `file` empty; throws (a user error to the caller) when it cannot be written. */
  constructor(
    readonly file: string,
    readonly tower: number,
    private readonly log: (line: string) => void,
  ) {
    fs.writeFileSync(file, '');
    this.observer = new PerformanceObserver((list) => {
      // a worker left without steps keeps the last few thousand pauses only
      if (this.gc.length > 4096) this.gc.splice(0, 2048);
      for (const e of list.getEntries()) this.gc.push([performance.timeOrigin + e.startTime, performance.timeOrigin + e.startTime + e.duration]);
    });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  private record(run: string, step: number): StepRecord {
    const key = `${run}/${step}`;
    let r = this.records.get(key);
    if (!r) {
      r = { sent: {}, arrived: {}, waited: [] };
      this.records.set(key, r);
    }
    return r;
  }

  noteSent(run: string, step: number, key: CrossingKey): void {
    this.record(run, step).sent[key] = now();
  }

  noteArrived(run: string, step: number, key: CrossingKey): void {
    this.record(run, step).arrived[key] = now();
  }

  /** `from`, `to`: performance.now() times. */
  noteWaited(run: string, step: number, key: CrossingKey, from: number, to: number): void {
    this.record(run, step).waited.push([key, performance.timeOrigin + from, performance.timeOrigin + to]);
  }

  /**
   * Writes the step's line (`begin`, `end`: performance.now() times) and forgets what was noted for it, for the
   * steps before it (one that failed part way) and for other runs.
   */
  endStep(runId: string, step: number, begin: number, end: number): void {
    const b = performance.timeOrigin + begin;
    const r = this.record(runId, step);
    for (const key of this.records.keys()) {
      const at = key.lastIndexOf('/');
      if (key.slice(0, at) !== runId || Number(key.slice(at + 1)) <= step) this.records.delete(key);
    }
    const gc = this.gc.filter(([, to]) => to >= b);
    this.gc = [];
    if (this.broken) return;
    const line: StepTrace = { run: redactRunId(runId), step, tower: this.tower, begin: b, end: performance.timeOrigin + end, ...r, gc };
    try {
      fs.appendFileSync(this.file, `${JSON.stringify(line)}\n`);
    } catch (e) {
      this.broken = true;
      this.log(`--trace-crossings: cannot write ${this.file} (${(e as Error).message}): the trace stops, training goes on`);
    }
  }

  close(): void {
    this.observer.disconnect();
  }
}

/** One crossing's waits over the steps read, in milliseconds a step. */
export interface CrossingWait {
  crossing: string;
  /** Blocked waiting for this crossing. */
  waitedMs: number;
  /** Of which before the peer sent its tensor (the peer not there yet). */
  beforePeerSentMs: number;
  /** Of which after the peer sent it (travelling, read, the acknowledgement written). */
  afterPeerSentMs: number;
  /** Of the waiting, the time the peer was paused by its garbage collector. */
  peerGcMs: number;
  /** This worker only sends at this crossing (tower 1's fc7 forward, tower 0's fc7 backward): nothing to wait for. */
  sendsOnly: boolean;
}

export interface TowerWaits {
  tower: number;
  steps: number;
  medianStepMs: number;
  waitedMs: number;
  /** The garbage collector's pauses of this worker, a step. */
  gcMs: number;
  crossings: CrossingWait[];
}

const overlap = (a: number, b: number, spans: readonly [number, number][]): number => spans.reduce((s, [x, y]) => s + Math.max(0, Math.min(b, y) - Math.max(a, x)), 0);

/**
 * Lays two workers' traces side by side (the same steps of the same run, the last one in the files; one host's clock) and splits each tower's waits by
 * crossing: before and after the peer sent the tensor waited for, and how much of it the peer spent in its
 * garbage collector. Per step means over the steps both traces have (minus `skip` first ones: the warm-up).
 * The "acks" wait (the end of the step, the peer's acknowledgements) has no send of the peer to split at.
 */
export function crossingWaits(traces: readonly [readonly StepTrace[], readonly StepTrace[]], skip = 1): TowerWaits[] {
  // the steps of the last run in the first trace that both traces have
  const run = traces[0].at(-1)?.run;
  const byStep = traces.map((t) => new Map(t.filter((s) => s.run === run).map((s) => [s.step, s])));
  const steps = [...byStep[0]!.keys()].filter((s) => byStep[1]!.has(s)).sort((a, b) => a - b).slice(skip);
  return ([0, 1] as const).map((t) => {
    const rows = new Map<string, CrossingWait>();
    const rowOf = (key: CrossingKey, mine: StepTrace): CrossingWait => {
      const crossing = key === 'acks' ? key : key.split('/').slice(0, 2).join(' ').toLowerCase();
      const row = rows.get(crossing) ?? { crossing, waitedMs: 0, beforePeerSentMs: 0, afterPeerSentMs: 0, peerGcMs: 0, sendsOnly: true };
      rows.set(crossing, row);
      if (key === 'acks' || mine.arrived[key] !== undefined) row.sendsOnly = false;
      return row;
    };
    let waited = 0;
    let gc = 0;
    const durations: number[] = [];
    for (const n of steps) {
      const mine = byStep[t]!.get(n)!;
      const peer = byStep[1 - t]!.get(n)!;
      durations.push(mine.end - mine.begin);
      gc += mine.gc.reduce((s, [a, b]) => s + (b - a), 0);
      // every crossing this worker sent or took at, waited for or not, in the order of the step
      const events: [CrossingKey, number][] = [...Object.entries(mine.sent), ...Object.entries(mine.arrived), ...mine.waited.map(([key, from]): [CrossingKey, number] => [key, from])];
      for (const [key] of events.sort((a, b) => a[1] - b[1])) rowOf(key, mine);
      for (const [key, from, to] of mine.waited) {
        const row = rowOf(key, mine);
        const sent = peer.sent[key];
        const split = sent === undefined ? from : Math.min(Math.max(sent, from), to);
        row.waitedMs += to - from;
        row.beforePeerSentMs += split - from;
        row.afterPeerSentMs += to - split;
        row.peerGcMs += overlap(from, to, peer.gc);
        waited += to - from;
      }
    }
    const k = Math.max(1, steps.length);
    const crossings = [...rows.values()].map((r) => ({ ...r, waitedMs: r.waitedMs / k, beforePeerSentMs: r.beforePeerSentMs / k, afterPeerSentMs: r.afterPeerSentMs / k, peerGcMs: r.peerGcMs / k }));
    return { tower: t, steps: steps.length, medianStepMs: durations.length ? median(durations) : 0, waitedMs: waited / k, gcMs: gc / k, crossings };
  });
}

/** Reads a trace file (`--trace-crossings`); a line that is not a step's trace is an error naming the line. */
export function readCrossingTrace(file: string): StepTrace[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  return lines.map((l, i) => {
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch {
      v = null;
    }
    const s = v as Partial<StepTrace> | null;
    if (!s || typeof s.run !== 'string' || typeof s.step !== 'number' || typeof s.begin !== 'number' || !Array.isArray(s.waited) || typeof s.sent !== 'object' || !Array.isArray(s.gc)) {
      throw new Error(`${file} line ${i + 1} is not a step of a crossing trace (alexnet worker --trace-crossings writes them)`);
    }
    return s as StepTrace;
  });
}
