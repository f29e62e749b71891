/**
 * What the end-of-run summary needs of every step (the 'done' line: median step time, the exchange shares, the
 * last ten losses), kept in columns of numbers rather than as the steps' metrics objects: a run of days holds
 * hundreds of thousands of steps, about 1.5 KiB each as objects (traffic, per-worker timings), 72 bytes here.
 * A restart that goes back to a checkpoint drops the steps from there on (they are done again).
 */
import { median } from '@alexnet-mp/core';
import type { StepMetrics } from './coordinator-types.js';
import { paceMs } from './step-metrics.js';
import type { EvalMetrics } from './evaluation.js';
import type { RunSummary } from './metrics-log.js';

/** Per step: its time, loss and top-1 error, and per worker its total, waiting and hidden exchange times. */
const COLUMNS = ['ms', 'loss', 'top1', 'total0', 'exchange0', 'hidden0', 'total1', 'exchange1', 'hidden1'] as const;
type Column = (typeof COLUMNS)[number];

export class StepTally {
  private readonly cols = new Map<Column, Float64Array>(COLUMNS.map((c) => [c, new Float64Array(64)]));
  private n = 0;
  /** The step number of the first step kept. */
  private first: number | null = null;
  private batch = 0;
  private crossingBytes = 0;
  private microBatches = 1;

  /** Steps kept. */
  get count(): number {
    return this.n;
  }

  add(m: StepMetrics): void {
    if (this.first === null) {
      this.first = m.step;
      this.batch = m.batch;
      this.crossingBytes = m.crossing_bytes;
    }
    if (this.n === this.cols.get('ms')!.length) {
      for (const c of COLUMNS) {
        const grown = new Float64Array(2 * this.n);
        grown.set(this.cols.get(c)!);
        this.cols.set(c, grown);
      }
    }
    const w0 = m.workers[0];
    const w1 = m.workers[1];
    // a log of older workers has no hidden time
    const row: Record<Column, number> = {
      // as the step line's rate (a queued step whose replies were already there when the coordinator looked measures near 0)
      ms: paceMs(m.ms, m.workers),
      loss: m.loss,
      top1: m.top1_error,
      total0: w0?.total_ms ?? 0,
      exchange0: w0?.exchange_ms ?? 0,
      hidden0: w0?.exchange_hidden_ms ?? 0,
      total1: w1?.total_ms ?? 0,
      exchange1: w1?.exchange_ms ?? 0,
      hidden1: w1?.exchange_hidden_ms ?? 0,
    };
    for (const c of COLUMNS) this.cols.get(c)![this.n] = row[c];
    this.n++;
    // a log of older coordinators has no micro-batches: the whole batch
    this.microBatches = m.micro_batches ?? 1;
  }

  /** Forgets step `step` and those after it (a restart continues from the checkpoint at `step`). */
  dropFrom(step: number): void {
    if (this.first === null) return;
    this.n = Math.max(0, Math.min(this.n, step - this.first));
  }

  /** The end-of-run summary. Step 0 compiles the kernels, so the rates leave it out when there are more steps. */
  summary(elapsedMs: number, evals: readonly EvalMetrics[] = []): RunSummary {
    const n = this.n;
    const col = (c: Column, from = 0, to = n) => this.cols.get(c)!.subarray(from, to);
    const sum = (xs: Float64Array) => xs.reduce((a, b) => a + b, 0);
    const from = n > 1 ? 1 : 0;
    const tail = Math.max(0, n - 10);
    const share = (t: 0 | 1, k: 'exchange' | 'hidden') => {
      const tot = sum(col(`total${t}`, from));
      return tot > 0 ? sum(col(`${k}${t}`, from)) / tot : 0;
    };
    const stepMs = n > 0 ? median(Array.from(col('ms', from))) : 0;
    const last = evals[evals.length - 1];
    return {
      event: 'done',
      steps: n,
      elapsed_s: elapsedMs / 1000,
      median_step_ms: stepMs,
      images_per_s: stepMs > 0 ? (this.batch / stepMs) * 1000 : 0,
      loss_last: n ? sum(col('loss', tail)) / (n - tail) : null,
      top1_error_last: n ? sum(col('top1', tail)) / (n - tail) : null,
      exchange_share: n ? [share(0, 'exchange'), share(1, 'exchange')] : [],
      exchange_hidden_share: n ? [share(0, 'hidden'), share(1, 'hidden')] : [],
      crossing_bytes_per_step: n ? this.crossingBytes : 0,
      micro_batches: this.microBatches,
      eval_last: last ? { step: last.step, loss: last.loss, top1_error: last.top1_error, top5_error: last.top5_error, images: last.images } : null,
    };
  }
}

/**
 * A note for the closing line when the workers waited on each other much of steps that short: the crossings'
 * latency, not their bytes, is most of such a step (docs/performance.md, "Where the wait goes").
 */
export function shortStepsNote(medianStepMs: number, exchangeShare: readonly number[]): string {
  if (!(medianStepMs < 100) || !(Math.max(...exchangeShare) >= 0.25)) return '';
  return ` (steps of ${medianStepMs.toFixed(0)} ms spend their wait mostly on the crossings' latency, not their bytes: a larger --batch or model waits a smaller share)`;
}
