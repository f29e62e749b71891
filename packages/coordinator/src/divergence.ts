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
