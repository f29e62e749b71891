/**
 * Where a worker's exchange wait goes (`alexnet worker --trace-crossings FILE`): one JSON line a step with, for
 * each crossing tensor, when this worker sent its own, when the peer's arrived, and the spans the step waited for
 * it; and the garbage collector's pauses during the step. Times are milliseconds since the epoch on this host's
 * clock (performance.timeOrigin + performance.now()), so that the files of two workers on one host lay side by
 * side: `crossingWaits` splits each wait into the time before the peer sent its tensor (the peer still
 * computing, or paused) and the time after (the tensor travelling and being read), which
 * `bench/crossing-waits.ts` prints. A diagnostic: the file is emptied when the worker starts, a line is written
 * at the end of each step (one write a step, on a file kept open), and a file that cannot be written stops the
 * trace, never the training.
 */
import fs from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { crc32c, median } from '@alexnet-mp/core';
import type { Direction } from './protocol.js';
import { redactRunId } from './run.js';

/**
 * A crossing tensor of a step: "pool2/FORWARD/0" (point, direction, micro-batch); "acks" for the end-of-step
 * wait for the peer's acknowledgements, "sends" for a wait for this worker's own tensors to be on their way
 * (those it sends without taking one back: tower 1's fc7 forward cut into micro-batches).
 */
export type CrossingKey = string;

export const crossingKey = (point: string, dir: Direction, micro: number): CrossingKey => `${point}/${dir}/${micro}`;

export interface StepTrace {
  /** The run's id, redacted as the worker shows it to others (a file may hold several runs, one after the other). */
  run: string;
  /** The run told apart from others (the CRC-32C of its whole id, in hex): two runs' redacted ids may be the same. */
  runKey: string;
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
  /**
   * [from, to]: the garbage collector's pauses of this process reported since the line before (Node.js reports
   * a pause a little after it: the last ones of a step are in the next step's line).
   */
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
  /** The trace file, opened (emptied) at the first step traced: a worker that does not start leaves an earlier trace as it was; null once it failed or closed. */
  private fd: number | null | undefined = undefined;

  /** Traces into `file` (the caller checks beforehand that it can be written: worker-command.ts). */
  constructor(
    readonly file: string,
    readonly tower: number,
    private readonly log: (line: string) => void,
  ) {
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

  /** Forgets every step not written (a run configured again or dropped: a failed step's crossings are not its next attempt's). */
  forget(): void {
    this.records.clear();
  }

  /** The step begins: what a failed attempt at it sent and waited is dropped (the peer's tensors that came already are kept). */
  beginStep(run: string, step: number): void {
    const r = this.record(run, step);
    r.sent = {};
    r.waited = [];
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
    const r = this.record(runId, step);
    for (const key of this.records.keys()) {
      const at = key.lastIndexOf('/');
      if (key.slice(0, at) !== runId || Number(key.slice(at + 1)) <= step) this.records.delete(key);
    }
    const gc = this.gc;
    this.gc = [];
    if (this.fd === undefined) {
      try {
        this.fd = fs.openSync(this.file, 'w');
      } catch (e) {
        this.fd = null;
        this.log(`--trace-crossings: cannot write ${this.file} (${(e as Error).message}): no trace, training goes on`);
      }
    }
    if (this.fd === null) return;
    const runKey = crc32c(Buffer.from(runId, 'utf8')).toString(16).padStart(8, '0');
    const line: StepTrace = { run: redactRunId(runId), runKey, step, tower: this.tower, begin: performance.timeOrigin + begin, end: performance.timeOrigin + end, ...r, gc };
    try {
      fs.writeSync(this.fd, `${JSON.stringify(line)}\n`);
    } catch (e) {
      this.closeFile();
      this.log(`--trace-crossings: cannot write ${this.file} (${(e as Error).message}): the trace stops, training goes on`);
    }
  }

  private closeFile(): void {
    if (this.fd === null || this.fd === undefined) {
      this.fd = null;
      return;
    }
    try {
      fs.closeSync(this.fd);
    } catch {
      // closed already
    }
    this.fd = null;
  }

  close(): void {
    this.observer.disconnect();
    this.closeFile();
  }
}

/** One crossing's waits over the steps read, in milliseconds a step. */
export interface CrossingWait {
  /** "pool2 forward"; "acks" (the peer's acknowledgements at the end of the step); "sends" (this worker's own tensors leaving). */
  crossing: string;
  /** takes: this worker takes the peer's tensor here; sends: it only sends (tower 1's fc7 forward, tower 0's fc7 backward), or waits for its own sends; acks: the acknowledgements. */
  kind: 'takes' | 'sends' | 'acks';
  /** Blocked waiting at this crossing. */
  waitedMs: number;
  /** takes: of the waiting, the time before the peer sent its tensor (the peer not there yet). */
  beforePeerSentMs: number;
  /** takes: of the waiting, the time after the peer sent it (travelling, read). */
  afterPeerSentMs: number;
  /** Of the waiting, the time the peer was paused by its garbage collector. */
  peerGcMs: number;
}

export interface TowerWaits {
  tower: number;
  steps: number;
  medianStepMs: number;
  /** The mean step (the waits below are means a step: their share of it is their share of all the steps' time). */
  meanStepMs: number;
  waitedMs: number;
  /** Of `waitedMs`, before and after the peer sent the tensors waited for (the crossings where this worker takes one). */
  beforePeerSentMs: number;
  afterPeerSentMs: number;
  /** Of `waitedMs`, waiting for this worker's own tensors to leave and for the peer's acknowledgements. */
  ownSendsMs: number;
  /** Of `waitedMs`, the time the peer was paused by its garbage collector. */
  peerGcMs: number;
  /** The garbage collector's pauses of this worker, a step. */
  gcMs: number;
  crossings: CrossingWait[];
}

const overlap = (a: number, b: number, spans: readonly [number, number][]): number => spans.reduce((s, [x, y]) => s + Math.max(0, Math.min(b, y) - Math.max(a, x)), 0);

/**
 * Lays two workers' traces side by side (the steps of one run, the last one in the first file, that both files
 * have; one host's clock) and splits each tower's waits by crossing: at a crossing where it takes the peer's
 * tensor, before and after the peer sent it; and how much of each wait the peer spent in its garbage collector
 * (any of the peer's pauses in that run, the ones reported in the lines of other steps included). Means a step
 * over the steps from the `skip`-th on (the warm-up, or steps of another micro-batch count, left out).
 */
export function crossingWaits(traces: readonly [readonly StepTrace[], readonly StepTrace[]], skip = 1): TowerWaits[] {
  const runKey = traces[0].at(-1)?.runKey;
  const ofRun = traces.map((t) => t.filter((s) => s.runKey === runKey));
  const byStep = ofRun.map((t) => new Map(t.map((s) => [s.step, s])));
  const steps = [...byStep[0]!.keys()].filter((s) => byStep[1]!.has(s)).sort((a, b) => a - b).slice(skip);
  const gcOf = ofRun.map((t) => t.flatMap((s) => s.gc));
  return ([0, 1] as const).map((t) => {
    const rows = new Map<string, CrossingWait>();
    const takes = new Set<string>();
    const nameOf = (key: CrossingKey) => (key === 'acks' || key === 'sends' ? key : key.split('/').slice(0, 2).join(' ').toLowerCase());
    const rowOf = (key: CrossingKey): CrossingWait => {
      const crossing = nameOf(key);
      let row = rows.get(crossing);
      if (!row) {
        row = { crossing, kind: key === 'acks' ? 'acks' : 'sends', waitedMs: 0, beforePeerSentMs: 0, afterPeerSentMs: 0, peerGcMs: 0 };
        rows.set(crossing, row);
      }
      return row;
    };
    let gc = 0;
    const durations: number[] = [];
    const peerGc = gcOf[1 - t]!;
    for (const n of steps) {
      const mine = byStep[t]!.get(n)!;
      const peer = byStep[1 - t]!.get(n)!;
      durations.push(mine.end - mine.begin);
      gc += overlap(mine.begin, mine.end, gcOf[t]!);
      // every crossing this worker sent or took at, waited for or not, in the order of the step
      const events: [CrossingKey, number][] = [...Object.entries(mine.sent), ...Object.entries(mine.arrived), ...mine.waited.map(([key, from]): [CrossingKey, number] => [key, from])];
      for (const [key] of events.sort((a, b) => a[1] - b[1])) rowOf(key);
      for (const key of Object.keys(mine.arrived)) {
        rowOf(key).kind = 'takes';
        takes.add(key);
      }
      for (const [key, from, to] of mine.waited) {
        const row = rowOf(key);
        row.waitedMs += to - from;
        row.peerGcMs += overlap(from, to, peerGc);
        const sent = peer.sent[key];
        if (!takes.has(key) && mine.arrived[key] === undefined) continue;
        const split = sent === undefined ? from : Math.min(Math.max(sent, from), to);
        row.beforePeerSentMs += split - from;
        row.afterPeerSentMs += to - split;
      }
    }
    const k = Math.max(1, steps.length);
    const crossings = [...rows.values()].map((r) => ({ ...r, waitedMs: r.waitedMs / k, beforePeerSentMs: r.beforePeerSentMs / k, afterPeerSentMs: r.afterPeerSentMs / k, peerGcMs: r.peerGcMs / k }));
    const total = (f: (c: CrossingWait) => number, which: (c: CrossingWait) => boolean = () => true) => crossings.filter(which).reduce((s, c) => s + f(c), 0);
    return {
      tower: t,
      steps: steps.length,
      medianStepMs: durations.length ? median(durations) : 0,
      meanStepMs: durations.length ? durations.reduce((a, b) => a + b, 0) / durations.length : 0,
      waitedMs: total((c) => c.waitedMs),
      beforePeerSentMs: total((c) => c.beforePeerSentMs),
      afterPeerSentMs: total((c) => c.afterPeerSentMs),
      ownSendsMs: total((c) => c.waitedMs, (c) => c.kind !== 'takes'),
      peerGcMs: total((c) => c.peerGcMs),
      gcMs: gc / k,
      crossings,
    };
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
    if (!s || typeof s.run !== 'string' || typeof s.runKey !== 'string' || typeof s.step !== 'number' || typeof s.begin !== 'number' || !Array.isArray(s.waited) || typeof s.sent !== 'object' || !Array.isArray(s.gc)) {
      throw new Error(`${file} line ${i + 1} is not a step of a crossing trace (alexnet worker --trace-crossings writes them)`);
    }
    return s as StepTrace;
  });
}
