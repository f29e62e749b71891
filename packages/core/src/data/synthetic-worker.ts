/** A worker thread of SyntheticBatches (synthetic.ts): makes the parts of batches it is sent. */
import { parentPort } from 'node:worker_threads';
import { drawPart, type SyntheticPartRequest } from './synthetic.js';

parentPort!.on('message', (r: SyntheticPartRequest) => {
  const reply = drawPart(r);
  parentPort!.postMessage(reply, [reply.images.buffer as ArrayBuffer, reply.labels.buffer as ArrayBuffer]);
});
