/**
 * What the dashboard shows of a run, kept in the coordinator's memory: the
 * metrics log's events (run, step, eval, checkpoint, lr, done, ...) as
 * chart points, the latest step in full, and subscribers that get every new
 * event as it comes (the Server-Sent Events stream).
 */
import type { StepMetrics, WorkerStepMetrics } from '../coordinator.js';
import { layerNormTotals, type LayerNormsTotal } from '../layer-norms.js';
import { rewoundTo } from '../run-rewind.js';
import { SESSION_END_EVENTS } from '../run-files.js';
import { redactRunId, type CrossingTraffic } from '@alexnet-mp/worker';
import { classesOfPreset, topFiveMeaningful } from '../error-words.js';

/** One training step as the charts plot it; `step` is the steps done after it (1 for the first). */
export interface StepPoint {
  step: number;
  loss: number;
  /** Training top-1 error of the step's batch (a step line of an old log, with `top1` the accuracy, gives 1 - top1). */
  top1_error: number;
  images_per_s: number;
  ms: number;
  lr: number;
}

/** One held-out evaluation; `step` is the steps done when it ran. */
export interface EvalPoint {
  step: number;
  loss: number;
  top1_error: number;
  /** Null for a model of five classes or fewer, where every image is in the top 5 (the log's 0 means nothing). */
  top5_error: number | null;
  images: number;
}

/** Each layer's norms after a step (--norms-every), both towers taken together (the layer's whole weight tensor); `step` is the steps done. */
export interface NormsPoint {
  step: number;
  layers: LayerNormsTotal[];
}

/** The latest step's per-worker figures (timing, bytes exchanged per crossing point). */
export interface LastStep {
  step: number;
  /** The micro-batches the step was cut into (1 from logs of older coordinators). */
  micro_batches: number;
  workers: WorkerStepMetrics[];
  traffic: CrossingTraffic[][];
}

export type FeedEvent =
  | { type: 'run'; run: Record<string, unknown> }
  | { type: 'step'; point: StepPoint; last: LastStep }
  | { type: 'eval'; point: EvalPoint }
  | { type: 'norms'; point: NormsPoint }
  /** The run went back to a checkpoint after `to` steps (a resumed session, a restart): the points past it are dropped. */
  | { type: 'rewind'; to: number }
  | { type: 'note'; event: Record<string, unknown> }
  /** A tower's conv1 kernels were fetched after `step` steps; `colour`: their mean colour share (inspect/colour.ts), null unless RGB. */
  | { type: 'kernels'; tower: number; step: number; colour: number | null }
  | { type: 'status'; workers: unknown[] };

export interface Snapshot {
  run: Record<string, unknown> | null;
  steps: StepPoint[];
  evals: EvalPoint[];
  norms: NormsPoint[];
  last: LastStep | null;
  /** checkpoint, lr, done, failed, stopped events, in order. */
  notes: Record<string, unknown>[];
  /** Only every `stride`-th step is kept once the history is long (see MAX_POINTS). */
  stride: number;
}

/** Step points kept: past this, every other one is dropped and only every 2^k-th step is kept from then on. */
export const MAX_POINTS = 20_000;

export class DashboardFeed {
  private run: Record<string, unknown> | null = null;
  private steps: StepPoint[] = [];
  private evals: EvalPoint[] = [];
  private norms: NormsPoint[] = [];
  private readonly notes: Record<string, unknown>[] = [];
  private last: LastStep | null = null;
  private stride = 1;
  private readonly subscribers = new Set<(e: FeedEvent) => void>();

  constructor(private readonly maxPoints = MAX_POINTS) {}

  /** An event as the coordinator writes it to the metrics log. */
  record(event: object): void {
    const raw = event as { event?: unknown } & Record<string, unknown>;
    // the page shows the run id with its random part hidden, as a worker's Status gives it (the whole id drives workers)
    const e = typeof raw.run_id === 'string' ? { ...raw, run_id: redactRunId(raw.run_id) } : raw;
    const to = rewoundTo(e);
    if (to !== null) this.rewind(to);
    switch (e.event) {
      case 'run':
        this.run = e;
        this.sessionEnded = false;
        this.publish({ type: 'run', run: e });
        return;
      case 'step': {
        const m = e as unknown as StepMetrics & { top1?: number };
        const top1Error = typeof m.top1_error === 'number' ? m.top1_error : 1 - Number(m.top1);
        const point: StepPoint = { step: m.step + 1, loss: m.loss, top1_error: top1Error, images_per_s: m.images_per_s, ms: m.ms, lr: m.lr };
        this.last = { step: point.step, micro_batches: m.micro_batches ?? 1, workers: m.workers, traffic: m.traffic };
        if (point.step % this.stride === 0) this.keep(point);
        this.publish({ type: 'step', point, last: this.last });
        if (Array.isArray(m.layer_norms) && m.layer_norms.length > 0) {
          const n: NormsPoint = { step: point.step, layers: layerNormTotals(m.layer_norms) };
          this.norms.push(n);
          // as many as the steps at most: past that, every other one
          if (this.norms.length > this.maxPoints) this.norms = this.norms.filter((_, i) => i % 2 === 1);
          this.publish({ type: 'norms', point: n });
        }
        return;
      }
      case 'eval': {
        const meaningful = topFiveMeaningful(classesOfPreset(this.run?.preset as string | undefined));
        const point: EvalPoint = { step: Number(e.step), loss: Number(e.loss), top1_error: Number(e.top1_error), top5_error: meaningful ? Number(e.top5_error) : null, images: Number(e.images) };
        // one point per step: an evaluation done again (a resumed run whose checkpoint was written before it) replaces the first
        this.evals = [...this.evals.filter((p) => p.step !== point.step), point];
        this.publish({ type: 'eval', point });
        return;
      }
      default:
        if (typeof e.event !== 'string') return;
        if (SESSION_END_EVENTS.includes(e.event)) this.sessionEnded = true;
        this.notes.push(e);
        this.publish({ type: 'note', event: e });
    }
  }

  /** Drops the points past `to` steps done, which the run does again (run-rewind.ts), and tells the subscribers. */
  private rewind(to: number): void {
    const past = (p: { step: number }) => p.step > to;
    if (!this.steps.some(past) && !this.evals.some(past) && !this.norms.some(past)) return;
    this.steps = this.steps.filter((p) => !past(p));
    this.evals = this.evals.filter((p) => !past(p));
    this.norms = this.norms.filter((p) => !past(p));
    this.publish({ type: 'rewind', to });
  }

  private keep(p: StepPoint): void {
    this.steps.push(p);
    if (this.steps.length > this.maxPoints) {
      this.stride *= 2;
      this.steps = this.steps.filter((q) => q.step % this.stride === 0);
    }
  }

  /** Events that are not metrics (kernels refreshed, worker status) go to the subscribers only. */
  publish(e: FeedEvent): void {
    for (const s of this.subscribers) s(e);
  }

  snapshot(): Snapshot {
    return { run: this.run, steps: [...this.steps], evals: [...this.evals], norms: [...this.norms], last: this.last, notes: [...this.notes], stride: this.stride };
  }

  /** Calls `fn` with every event from now on; returns the unsubscribe function. */
  subscribe(fn: (e: FeedEvent) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  /** Whether the run has begun (its 'run' event: the workers are configured). */
  get started(): boolean {
    return this.run !== null;
  }

  private sessionEnded = false;

  /** Whether the run's latest session has ended (a done, stopped or failed line after its run line). */
  get ended(): boolean {
    return this.sessionEnded;
  }

  get watchers(): number {
    return this.subscribers.size;
  }
}
