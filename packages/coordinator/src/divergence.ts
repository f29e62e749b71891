/**
 * A run that diverged: a loss that is NaN or infinite, or weights that are no
 * longer finite or beyond core's ABSURD_MAGNITUDE (about 1.84e19: their square
 * overflows float32; a checkpoint reader calls such a value damage). The run
 * stops at that step; no checkpoint is written from such weights, so the latest
 * checkpoint on disk stays the last good one.
 */
import { ABSURD_MAGNITUDE, type TowerParams } from '@alexnet-mp/core';

export class DivergedError extends Error {
  constructor(
    message: string,
    /** The step whose loss or update was not finite. */
    readonly step: number,
  ) {
    super(message);
    this.name = 'DivergedError';
  }
}

const describe = (x: number) => (Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity');

/** Throws a DivergedError when a step's loss is not finite. */
export function checkLoss(step: number, loss: number, lr: number): void {
  if (Number.isFinite(loss)) return;
  throw new DivergedError(`the loss is ${describe(loss)} at step ${step} (learning rate ${lr}): training diverged; lower --lr and resume from the last checkpoint`, step);
}

/** The first number in a tower's weights or momentum that is not finite or is beyond ±ABSURD_MAGNITUDE, as "layer.kind[index] = value", or null. */
export function firstNonFinite(params: TowerParams): string | null {
  for (const [layer, p] of params) {
    for (const kind of ['w', 'b', 'vw', 'vb'] as const) {
      const x = p[kind];
      if (!x) continue;
      for (let i = 0; i < x.length; i++) {
        const v = x[i]!;
        if (!(Math.abs(v) <= ABSURD_MAGNITUDE)) return `${layer}.${kind}[${i}] = ${Number.isFinite(v) ? `${v.toPrecision(3)}, beyond ±${ABSURD_MAGNITUDE.toPrecision(3)}` : describe(v)}`;
      }
    }
  }
  return null;
}

/** Throws a DivergedError (writing nothing) when either tower's parameters hold a non-finite number. */
export function checkParams(params: readonly TowerParams[], stepsDone: number): void {
  for (const [t, p] of params.entries()) {
    const bad = firstNonFinite(p);
    if (bad) {
      const what = bad.includes(', beyond') ? 'have run away' : 'are not finite';
      throw new DivergedError(`tower ${t}'s parameters ${what} after step ${stepsDone - 1} (${bad}): training diverged; no checkpoint written, the previous one is kept`, stepsDone - 1);
    }
  }
}

/** How many times the loss of guessing (ln of the classes) a step's loss must pass to count as run away. */
export const RUN_AWAY_FACTOR = 10;
/** Run-away steps in a row that end the run. */
export const RUN_AWAY_STEPS = 5;
/** The steps whose median loss says whether the weights of a checkpoint came from calm training. */
const CALM_WINDOW = 10;

/**
 * A loss that runs away without becoming NaN: a learning rate too high for the model can throw the weights far
 * enough that the loss stays at many times that of guessing (ln of the classes) while every number is still
 * finite, and a checkpoint written then would hold ruined weights that verify. The run is stopped once the loss
 * has been above RUN_AWAY_FACTOR x ln(classes) for RUN_AWAY_STEPS steps in a row (69 for 1000 classes, 23 for 10,
 * 13.9 for 4: no step of a run that is learning, or just starting, comes near), and a checkpoint is not written
 * while the last steps are so. Each checkpoint's calm (the median loss of the steps before it below twice that of
 * guessing) is noted, so that a diverged run can name the last checkpoint written before its loss rose.
 */
export class LossWatch {
  private readonly limit: number;
  private readonly recent: { step: number; loss: number }[] = [];
  private readonly calm = new Map<number, boolean>();

  constructor(readonly classes: number) {
    this.limit = RUN_AWAY_FACTOR * Math.log(Math.max(2, classes));
  }

  /** Counts a step's loss; throws a DivergedError once the loss has run away for RUN_AWAY_STEPS steps. */
  observe(step: number, loss: number, lr: number): void {
    this.recent.push({ step, loss });
    if (this.recent.length > Math.max(RUN_AWAY_STEPS, CALM_WINDOW)) this.recent.shift();
    const last = this.recent.slice(-RUN_AWAY_STEPS);
    if (last.length === RUN_AWAY_STEPS && last.every((s) => s.loss > this.limit) && last.every((s, i) => i === 0 || s.step === last[i - 1]!.step + 1)) {
      throw new DivergedError(
        `the loss has run away: above ${this.limit.toFixed(1)} (${RUN_AWAY_FACTOR} times ln ${this.classes}, the loss of guessing) for ${RUN_AWAY_STEPS} steps, ${last.map((s) => s.loss.toFixed(1)).join(', ')} at steps ${last[0]!.step}-${step} (learning rate ${lr}): training diverged; lower --lr and resume from a checkpoint written before it`,
        step,
      );
    }
  }

  /** Whether the last steps' losses have run away (no checkpoint of such weights is written). */
  get runningAway(): boolean {
    const last = this.recent.slice(-3);
    return last.length === 3 && last.every((s) => s.loss > this.limit);
  }

  /** Notes whether a checkpoint written now holds weights from calm training, and returns it (the checkpoint keeps it). */
  noteCheckpoint(step: number): boolean {
    const losses = this.recent.slice(-CALM_WINDOW).map((s) => s.loss).sort((a, b) => a - b);
    const median = losses.length > 0 ? losses[Math.floor(losses.length / 2)]! : 0;
    const calm = median < (2 * this.limit) / RUN_AWAY_FACTOR;
    this.calm.set(step, calm);
    return calm;
  }

  /**
   * Of `steps` (checkpoints on disk), the latest written in calm training, or null: as this process noted it, else
   * as the checkpoint says (`kept(step)`: its loss_calm, undefined for one written before the mark existed: calm).
   */
  lastCalm(steps: readonly number[], kept: (step: number) => boolean | undefined = () => undefined): number | null {
    const ok = steps.filter((s) => (this.calm.get(s) ?? kept(s)) !== false);
    return ok.length > 0 ? Math.max(...ok) : null;
  }
}
