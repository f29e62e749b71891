/**
 * How many micro-batches each step is cut into (StepRequest.micro_batches; the workers' pipeline.ts):
 * `--micro-batches N` fixes it (default 1); `auto` chooses it from the batch and the measured exchange.
 *
 * The automatic rule, measured rather than assumed:
 * 1. The first steps run whole (N = 1). Step 0 compiles the kernels and is not counted; the next
 *    MEASURED steps give each worker's share of its step spent waiting on the exchange.
 * 2. A share under LOW_SHARE (15%) leaves N = 1 for the run: there is little to hide, and smaller
 *    micro-batches only make the kernels less efficient.
 * 3. Otherwise the candidate is 2 micro-batches (share under HIGH_SHARE, 30%) or 4 (more), lowered to
 *    the largest divisor of the batch that leaves micro-batches of at least MIN_IMAGES (4) images.
 * 4. The candidate runs one untimed step (its micro-batches' kernels compile) and MEASURED timed steps;
 *    it is kept if its median step is faster than N = 1's, else the run goes back to N = 1.
 * Every decision is one line through `info`. The arithmetic is the same whatever N is (proto/README.md,
 * "Micro-batches"), so changing N part way changes nothing but the speed.
 */
import { divisors, median, microBatchProblem } from '@alexnet-mp/core';
import { UserError } from './cli/errors.js';

export const LOW_SHARE = 0.15;
export const HIGH_SHARE = 0.3;
export const MIN_IMAGES = 4;
const MEASURED = 2;

/** What the chooser needs of a step: its wall time and each worker's time and wait. */
export interface MeasuredStep {
  readonly ms: number;
  readonly workers: readonly { readonly total_ms: number; readonly exchange_ms: number }[];
}

/** The candidate N for an exchange wait of `share` of the step at N = 1 (rule 3), 1 when none fits the batch. */
export function candidateMicroBatches(batch: number, share: number): number {
  if (share < LOW_SHARE) return 1;
  const want = share < HIGH_SHARE ? 2 : 4;
  return Math.max(...divisors(batch).filter((d) => d <= want && batch / d >= MIN_IMAGES), 1);
}

export class MicroBatchChoice {
  private n: number;
  private stage: 'measure' | 'trial' | 'fixed';
  /** Steps seen at the current N since it was set (the first is not timed). */
  private seen = 0;
  private readonly shares: number[] = [];
  private readonly times: number[] = [];
  private wholeMs = 0;

  /** `forced`: --micro-batches N (undefined: auto). A forced N that does not divide the batch is a UserError. */
  constructor(readonly batch: number, readonly forced: number | undefined, private readonly info: (line: string) => void = () => {}) {
    if (forced !== undefined) {
      const problem = microBatchProblem(batch, forced);
      if (problem) throw new UserError(`--micro-batches ${forced}: ${problem}`);
    }
    this.n = forced ?? 1;
    this.stage = forced !== undefined || batch < 2 * MIN_IMAGES ? 'fixed' : 'measure';
  }

  /** The N of the next step. */
  get next(): number {
    return this.n;
  }

  /** Whether N is settled for the rest of the run (forced, or the automatic choice made). */
  get settled(): boolean {
    return this.stage === 'fixed';
  }

  /** What ConfigureRequest.micro_batches says: the forced N, or 0 (chosen per step). */
  get configured(): number {
    return this.forced ?? 0;
  }

  /**
   * At the handshake: a worker `label` without the feature "micro-batches" (an older build) makes `auto` 1
   * for the run and a forced N > 1 a UserError.
   */
  checkWorker(features: readonly string[], label: string): void {
    if (features.includes('micro-batches')) return;
    if (this.forced !== undefined && this.forced > 1) throw new UserError(`${label} takes no micro-batches (an older build): update it, or give --micro-batches 1`);
    this.disable(`${label} is an older build without micro-batches`);
  }

  /** A worker cannot take micro-batches: N = 1 for the run. */
  disable(why: string): void {
    if (this.stage === 'fixed' && this.n === 1) return;
    this.n = 1;
    this.stage = 'fixed';
    this.info(`micro-batches: 1 (${why})`);
  }

  /** After each step that ran at `next`. */
  observe(m: MeasuredStep): void {
    if (this.stage === 'fixed') return;
    if (this.seen++ === 0) return; // compiles kernels: not timed
    this.times.push(m.ms);
    if (this.stage === 'measure') this.shares.push(Math.max(...m.workers.map((w) => (w.total_ms > 0 ? w.exchange_ms / w.total_ms : 0))));
    if (this.times.length < MEASURED) return;
    const ms = median(this.times);
    this.times.length = 0;
    this.seen = 0;
    if (this.stage === 'measure') {
      const share = median(this.shares);
      this.wholeMs = ms;
      const c = candidateMicroBatches(this.batch, share);
      const waited = `the workers wait on the exchange ${(100 * share).toFixed(0)}% of their step`;
      if (c === 1) {
        this.stage = 'fixed';
        this.info(`micro-batches: 1 (${waited}${share < LOW_SHARE ? `, under ${100 * LOW_SHARE}%` : `; no micro-batch of ${MIN_IMAGES} images or more fits the batch of ${this.batch}`})`);
        return;
      }
      this.n = c;
      this.stage = 'trial';
      this.info(`micro-batches: trying ${c} (${waited} at 1, ${ms.toFixed(0)} ms a step)`);
      return;
    }
    const keep = ms < this.wholeMs;
    this.info(`micro-batches: ${keep ? this.n : 1} (${this.n} micro-batches take ${ms.toFixed(0)} ms a step, the whole batch ${this.wholeMs.toFixed(0)} ms)`);
    if (!keep) this.n = 1;
    this.stage = 'fixed';
  }
}
