/**
 * What a Configure request must be before anything of the old run is dropped: a batch within --max-batch that a
 * CPU worker's memory can hold, micro-batches that divide it, an input mean for the preset's channels, a peer address.
 */
import * as grpc from '@grpc/grpc-js';
import { MEMORY_SHARE, formatGiB, memoryShortfall, microBatchProblem } from '@alexnet-mp/core';
import { parseAddress, type ConfigureRequest } from './protocol.js';
import { RpcError } from './rpc.js';
import { inputMeanFrom } from './images.js';
import type { WorkerContext } from './run.js';

/** The checked request's input mean and the peer address to use (the worker's --peer, else the request's). */
export function checkConfigure(w: WorkerContext & { readonly peerOption?: string }, req: ConfigureRequest): { mean: readonly number[]; peerAddress: string } {
  if (!Number.isInteger(req.batch) || req.batch < 1 || req.batch > w.maxBatch) {
    throw new RpcError(grpc.status.INVALID_ARGUMENT, `batch ${req.batch} is outside 1..${w.maxBatch} (start the worker with a larger --max-batch)`);
  }
  // on the CPU the step's tensors are in this machine's memory: a batch that cannot fit is refused before anything is built
  if (w.device.mode !== 'webgpu') {
    const short = memoryShortfall(w.spec, req.batch, { tower: w.tower });
    if (short) {
      throw new RpcError(grpc.status.INVALID_ARGUMENT, `batch ${req.batch}: a step of preset ${w.spec.name} needs about ${formatGiB(short.need)} on tower ${w.tower}, more than ${Math.round(100 * MEMORY_SHARE)}% of this machine's ${formatGiB(short.total)}; at most about ${short.largest} fits`);
    }
  }
  // 0: the coordinator chooses per step
  const micro = req.micro_batches ?? 0;
  const problem = micro === 0 ? null : microBatchProblem(req.batch, micro);
  if (problem) throw new RpcError(grpc.status.INVALID_ARGUMENT, `micro_batches: ${problem}`);
  const mean = inputMeanFrom(req.input_mean, w.spec.inputChannels);
  if (typeof mean === 'string') throw new RpcError(grpc.status.INVALID_ARGUMENT, mean);
  const peerAddress = w.peerOption ?? req.peer_address;
  if (!peerAddress) throw new RpcError(grpc.status.INVALID_ARGUMENT, 'no peer address: start the worker with --peer or have the coordinator send one');
  try {
    parseAddress(peerAddress, 'peer address');
  } catch (e) {
    throw new RpcError(grpc.status.INVALID_ARGUMENT, (e as Error).message);
  }
  return { mean, peerAddress };
}
