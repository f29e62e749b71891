// Entry of the data module's worker threads. Node 20 does not carry the main
// thread's `--import tsx` hooks into a worker, so the worker registers tsx
// itself before importing its TypeScript entry (workerData.entry).
import { workerData } from 'node:worker_threads';

if (workerData.entry.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(workerData.entry);
