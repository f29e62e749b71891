/**
 * Configuring both workers for a run (Worker.Configure: the run, the batch, the seed, the peer to exchange
 * with) and, for a resumed run, giving them the checkpoint's parameters and momentum (SetParameters).
 */
import { towerParamLayers, type TowerParams } from '@alexnet-mp/core';
import { describeError, isServiceError, type ConfigureReply, type HandshakeReply, type WorkerClient } from '@alexnet-mp/worker';
import { UserError } from './cli/errors.js';
import { isLostWorker, retryWhileBusy } from './health.js';
import { WorkerFailure, type CoordinatorOptions } from './coordinator-types.js';

export interface ConfigureTarget {
  readonly clients: readonly [WorkerClient, WorkerClient];
  readonly o: CoordinatorOptions;
  readonly runId: string;
  /** The micro-batches each step is cut into, as configured (micro-batches.ts). */
  readonly microBatches: number;
  /** Configured before in this run (a restart after a lost worker): the peer addresses have worked, so a peer that does not answer is lost, not misaddressed. */
  readonly restart: boolean;
  /** "worker t (tower t) at ADDRESS", for messages. */
  label(t: number): string;
}

/** Configures both workers; a worker still finishing an abandoned step is asked again until `timeoutMs`. */
export async function configureWorkers(c: ConfigureTarget, timeoutMs: number): Promise<[ConfigureReply, ConfigureReply]> {
  return (await Promise.all(
    [0, 1].map(async (t) => {
      try {
        const configure = () =>
          c.clients[t]!.configure({
            run_id: c.runId,
            batch: c.o.batch,
            seed: c.o.seed,
            peer_address: c.o.workers[1 - t]!,
            input_mean: [...(c.o.source.inputMean ?? [])],
            micro_batches: c.microBatches,
          });
        return await retryWhileBusy(configure, timeoutMs);
      } catch (e) {
        // the worker answered, its peer did not: not a lost worker but an address to fix
        if (isServiceError(e) && /^peer at \S+ did not answer/.test(e.details)) {
          if (c.restart) throw new WorkerFailure(`${c.label(1 - t)} was lost while being configured: ${c.label(t)} could not reach it: ${e.details}`, 1 - t, true);
          throw new UserError(`${c.label(t)} could not reach its peer: ${e.details}; check worker ${t}'s --peer (without it, the address of worker ${1 - t} in --workers must reach it from worker ${t}'s machine)`);
        }
        if (isLostWorker(e)) throw new WorkerFailure(`${c.label(t)} was lost while being configured: ${describeError(e)}`, t, true);
        throw new UserError(`${c.label(t)} could not be configured: ${isServiceError(e) ? e.details : describeError(e)}`);
      }
    }),
  )) as [ConfigureReply, ConfigureReply];
}

/**
 * Whether each worker's peer is the coordinator's other worker: the instance that answered a worker's Peer.Hello
 * against the one that answered the coordinator's handshake at the other --workers address. A worker whose --peer
 * reaches another worker of the right tower (an idle one) would pass Configure and fail its first step; said here
 * in one line instead. Workers older than the instance ids ("") are not compared.
 */
export function checkPeersReached(handshakes: readonly HandshakeReply[], configured: readonly ConfigureReply[], workers: readonly string[], label: (t: number) => string): void {
  for (const t of [0, 1]) {
    const reached = configured[t]!.peer_instance ?? '';
    const other = handshakes[1 - t]!.instance ?? '';
    if (reached === '' || other === '' || reached === other) continue;
    throw new UserError(`${label(t)} reaches another tower ${1 - t} worker at its peer address ${configured[t]!.peer_address} than ${label(1 - t)}: check worker ${t}'s --peer (it must reach the worker at ${workers[1 - t]} in --workers)`);
  }
}

/** Gives both workers a checkpoint's parameters and momentum, to continue after `step`. */
export async function resumeWorkers(c: ConfigureTarget, params: readonly [TowerParams, TowerParams], step: number): Promise<void> {
  await Promise.all(
    [0, 1].map(async (t) => {
      const shapes = new Map<string, number[]>(towerParamLayers(c.o.spec, t as 0 | 1).map((l) => [l.name, [...l.shape]]));
      try {
        await c.clients[t]!.setParameters(params[t]! as ReadonlyMap<string, Required<{ w: Float32Array; b: Float32Array; vw: Float32Array; vb: Float32Array }>>, shapes, step);
      } catch (e) {
        if (isLostWorker(e)) throw new WorkerFailure(`${c.label(t)} was lost while taking the checkpoint's parameters: ${describeError(e)}`, t, true);
        throw new UserError(`${c.label(t)} did not take the checkpoint's parameters: ${isServiceError(e) ? e.details : describeError(e)}`);
      }
    }),
  );
}
