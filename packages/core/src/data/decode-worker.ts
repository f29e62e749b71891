/** Worker thread body of buildDecodedCache (decoded-cache.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeToCache } from './decoded-cache.js';

const port = parentPort!;
const o = (workerData as { data: Parameters<typeof decodeToCache>[0] }).data;
try {
  const result = await decodeToCache({
    ...o,
    onWarning: (warning) => port.postMessage({ type: 'warning', warning }),
    onProgress: (progress) => port.postMessage({ type: 'progress', progress }),
    onResume: (done) => port.postMessage({ type: 'resumed', done }),
    onOpened: (partial) => port.postMessage({ type: 'opened', partial }),
  });
  port.postMessage({ type: 'done', result });
} catch (e) {
  const err = e as Error & { path?: string };
  port.postMessage({ type: 'error', error: { name: err.name, message: err.message, path: err.path } });
}
