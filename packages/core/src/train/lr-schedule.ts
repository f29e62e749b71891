/**
 * The learning-rate schedule. The paper: "divide the learning rate by 10 when
 * the validation error rate stopped improving with the current learning rate",
 * three times over about 90 epochs. Two forms:
 *   - `steps`: divide by 10 at the given epochs (reproducible, the usual choice);
 *   - `plateau`: divide by 10 when the validation error has not improved by
 *     more than `minDelta` for `patience` evaluations, at most `maxDrops` times.
 * The schedule's state is plain JSON, saved in checkpoints.
 */
export type LrScheduleSpec =
  | { readonly kind: 'steps'; readonly base: number; readonly epochs: readonly number[] }
  | { readonly kind: 'plateau'; readonly base: number; readonly patience: number; readonly minDelta: number; readonly maxDrops: number };

export interface LrScheduleState {
  drops: number;
  best: number | null;
  since: number;
}

export class LrSchedule {
  state: LrScheduleState;
  constructor(readonly spec: LrScheduleSpec, state?: LrScheduleState) {
    this.state = state ? { ...state } : { drops: 0, best: null, since: 0 };
  }

  /** The learning rate for an epoch (0-based). */
  lr(epoch: number): number {
    const drops = this.spec.kind === 'steps' ? this.spec.epochs.filter((e) => epoch >= e).length : this.state.drops;
    return this.spec.base / 10 ** drops;
  }

  /** Tells the schedule a validation error (0..1); returns true when the rate drops. */
  observe(validationError: number): boolean {
    if (this.spec.kind !== 'plateau') return false;
    const s = this.state;
    if (s.best === null || validationError < s.best - this.spec.minDelta) {
      s.best = validationError;
      s.since = 0;
      return false;
    }
    s.since++;
    if (s.since >= this.spec.patience && s.drops < this.spec.maxDrops) {
      s.drops++;
      s.since = 0;
      s.best = validationError;
      return true;
    }
    return false;
  }
}

/** Parses the command line's --lr-schedule: "steps:30,60,80" or "plateau[:patience[:minDelta]]". */
export function parseLrSchedule(text: string, base: number): LrScheduleSpec {
  const [kind, a, b] = text.split(':');
  if (kind === 'steps') {
    const epochs = (a ?? '').split(',').filter((x) => x !== '').map(Number);
    if (epochs.length === 0 || epochs.some((e) => !Number.isInteger(e) || e <= 0) || b !== undefined) throw new Error(`--lr-schedule steps:E1,E2,... needs positive whole epochs, got "${text.slice(6)}"`);
    // each listed epoch divides the rate by 10 once: an epoch listed twice would divide it by 100 there
    const twice = epochs.find((e, i) => epochs.indexOf(e) !== i);
    if (twice !== undefined) throw new Error(`--lr-schedule steps:${a}: epoch ${twice} is listed twice (each epoch listed divides the rate by 10 once)`);
    return { kind: 'steps', base, epochs: [...epochs].sort((x, y) => x - y) };
  }
  if (kind === 'plateau') {
    const patience = a === undefined ? 2 : Number(a);
    const minDelta = b === undefined ? 0.001 : Number(b);
    if (!Number.isInteger(patience) || patience < 1 || !(minDelta >= 0) || text.split(':').length > 3) {
      throw new Error(`--lr-schedule plateau[:PATIENCE[:MIN_DELTA]]: PATIENCE is a whole number of evaluations >= 1 (default 2) and MIN_DELTA a drop of the top-1 error >= 0 (default 0.001), got "${text}"`);
    }
    return { kind: 'plateau', base, patience, minDelta, maxDrops: 3 };
  }
  throw new Error(`--lr-schedule must be "steps:E1,E2,..." or "plateau[:PATIENCE[:MIN_DELTA]]", got "${text}"`);
}
