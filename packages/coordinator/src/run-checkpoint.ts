/**
 * A checkpoint of a two-worker run: both towers' parameters and momentum with the run state a resumed run
 * needs (hyper-parameters, the schedule's state, the data position), encoded by core's checkpoint format.
 */
import { encodeCheckpoint, type TowerParams } from '@alexnet-mp/core';
import { describeError, type WorkerClient } from '@alexnet-mp/worker';
import { WorkerFailure, type CoordinatorOptions } from './coordinator-types.js';
import { isLostWorker } from './health.js';

export interface RunCheckpointState {
  readonly runId: string;
  /** Steps done. */
  readonly step: number;
  /** The learning rate and epoch of the next step. */
  readonly lr: number;
  readonly epoch: number;
  /** An evaluation of this step follows (a run resumed from this checkpoint does it first). */
  readonly evalDue: boolean;
  /** Written for the time alone (`--checkpoint-minutes`): the next checkpoint replaces it, also in a resumed run. */
  readonly byTime?: boolean;
  /** Whether the loss was calm when it was written (divergence.ts LossWatch): a diverged run resumes from a calm one. */
  readonly calm?: boolean;
}

export function encodeRunCheckpoint(o: CoordinatorOptions, params: [TowerParams, TowerParams], s: RunCheckpointState): Buffer {
  const schedule = o.schedule;
  return encodeCheckpoint(o.spec, params, {
    step: s.step,
    seed: o.seed,
    preset: o.spec.name,
    extra: {
      run_id: s.runId,
      batch: o.batch,
      // the bias rule always explicit: a checkpoint without it is read as one from before the option (legacyHyper)
      hyper: { ...o.hyper, decayBiases: o.hyper.decayBiases === true },
      lr: s.lr,
      lr_schedule: schedule ? { spec: schedule.spec, state: schedule.state } : null,
      // the data order is a function of (seed, position): batch k is images k*batch .. of the endless sequence of seeded epochs
      data: { position: s.step * o.batch, epoch: s.epoch, steps_per_epoch: o.stepsPerEpoch ?? null, order_seed: o.seed, source: o.source.description },
      eval_due: s.evalDue,
      ...(s.byTime ? { by_time: true } : {}),
      ...(s.calm === undefined ? {} : { loss_calm: s.calm }),
      ...(o.checkpoint?.extra?.() ?? {}),
    },
  });
}

/**
 * Both workers' parameters and momentum (GetParameters) for a checkpoint of `step` steps, within `timeoutMs`; a
 * worker that fails to send them is named in a WorkerFailure (lost or not, as health.ts tells: one past the
 * deadline is lost, and the run restarts rather than waiting for it forever).
 */
export async function pullParameters(clients: readonly [Pick<WorkerClient, 'parameters'>, Pick<WorkerClient, 'parameters'>], label: (t: number) => string, step: number, timeoutMs: number): Promise<[TowerParams, TowerParams]> {
  return (await Promise.all(
    [0, 1].map(async (t) => {
      try {
        return (await clients[t]!.parameters(true, { timeoutMs })) as TowerParams;
      } catch (e) {
        throw new WorkerFailure(`${label(t)} failed to send its parameters for the checkpoint at step ${step}: ${describeError(e)}`, t, isLostWorker(e));
      }
    }),
  )) as [TowerParams, TowerParams];
}
