/** Starting the data module's worker threads (TypeScript entries, through worker-boot.mjs). */
import { Worker } from 'node:worker_threads';

export function startWorker(entry: URL, data: unknown): Worker {
  return new Worker(new URL('./worker-boot.mjs', import.meta.url), { workerData: { entry: entry.href, data } });
}
