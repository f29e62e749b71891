/** A worker thread for journal-gate.test.ts: a journal write through writeUnlessClosed that takes `holdMs`, then a second one. */
import { parentPort, workerData } from 'node:worker_threads';
import { writeUnlessClosed } from '../src/data/partial-decode.js';

const { gate, holdMs } = (workerData as { data: { gate: Int32Array; holdMs: number } }).data;
let endedAt = 0;
const first = writeUnlessClosed(gate, () => {
  parentPort!.postMessage('writing');
  const until = Date.now() + holdMs;
  while (Date.now() < until) {
    /* a slow write */
  }
  endedAt = Date.now();
});
const second = writeUnlessClosed(gate, () => {});
parentPort!.postMessage({ first, second, endedAt });
