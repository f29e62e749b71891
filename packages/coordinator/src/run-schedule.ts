/** What falls after a step of a run (Coordinator.run): the checkpoints and evaluations, by step count and epoch. */
import type { CoordinatorOptions } from './coordinator-types.js';

/**
 * What is due after the step that makes `done` steps (`last`: the run's last): a checkpoint every
 * `checkpoint.every` steps and once `checkpoint.everyMs` have passed since the last one (`sinceCheckpointMs`),
 * an evaluation every `eval.every`, both at each epoch's end and after the last step.
 */
export function dueAfter(
  o: Pick<CoordinatorOptions, 'eval' | 'checkpoint' | 'stepsPerEpoch'>,
  done: number,
  last: boolean,
  sinceCheckpointMs = 0,
): { checkpoint: boolean; byTimeOnly: boolean; evaluation: boolean } {
  const { eval: ev, checkpoint: ck, stepsPerEpoch: spe } = o;
  const epochEnd = spe !== undefined && done % spe === 0;
  const timeDue = ck?.everyMs !== undefined && ck.everyMs > 0 && sinceCheckpointMs >= ck.everyMs;
  const bySteps = ck !== undefined && ((ck.every > 0 && done % ck.every === 0) || epochEnd || last);
  return {
    checkpoint: ck !== undefined && (bySteps || timeDue),
    // a checkpoint for the time alone replaces the previous one of its kind (Coordinator.writeCheckpoint)
    byTimeOnly: ck !== undefined && timeDue && !bySteps,
    evaluation: ev !== undefined && ((ev.every > 0 && done % ev.every === 0) || epochEnd || last),
  };
}
