/**
 * A batch too large for the machine or for gRPC, said up front in one line (it would otherwise be an
 * allocation failure with a stack trace, or gigabytes of work before anything says no).
 */
import os from 'node:os';
import { MEMORY_SHARE, formatGiB, memoryShortfall, type ModelSpec } from '@alexnet-mp/core';
import { MAX_GRPC_MESSAGE_BYTES, maxMessageBytes } from '@alexnet-mp/worker';
import { UserError } from './errors.js';

/** Refuses a batch whose largest message (images, a crossing tensor) would pass gRPC's 2 GiB limit. */
export function checkMessageFits(spec: ModelSpec, batch: number, option: string): void {
  if (maxMessageBytes(spec, batch) <= MAX_GRPC_MESSAGE_BYTES) return;
  let lo = 1;
  let hi = batch;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (maxMessageBytes(spec, mid) <= MAX_GRPC_MESSAGE_BYTES) lo = mid;
    else hi = mid - 1;
  }
  throw new UserError(`${option} ${batch}: a message of it would be ${formatGiB(maxMessageBytes(spec, batch))}, more than gRPC's 2 GiB; preset ${spec.name} allows at most ${lo}`);
}

/**
 * Refuses a batch whose training step would need more than MEMORY_SHARE of this machine's memory for
 * `workers` workers on CPU backends (on a GPU the device's own memory is what counts; the worker checks that).
 */
export function checkMemoryFits(spec: ModelSpec, batch: number, workers: number, option: string, totalBytes = os.totalmem()): void {
  const short = memoryShortfall(spec, batch, { workers, totalBytes });
  if (!short) return;
  const each = workers > 1 ? ` (${workers} workers of ${formatGiB(short.each)} each)` : '';
  throw new UserError(
    `${option} ${batch}: a training step of preset ${spec.name} needs about ${formatGiB(short.need)}${each}, more than ${Math.round(100 * MEMORY_SHARE)}% of this machine's ${formatGiB(short.total)}; ` +
      `at most about ${short.largest} fits`,
  );
}
