/** A worker thread for journal-gate.test.ts: a journal write through writeUnlessClosed that lasts until `holdMs` after the process began to shut the gate, then a second one. */
import { parentPort, workerData } from 'node:worker_threads';
import { writeUnlessClosed } from '../src/data/partial-decode.js';

const { gate, holdMs, shutting } = (workerData as { data: { gate: Int32Array; holdMs: number; shutting: Int32Array } }).data;
let endedAt = 0;
const first = writeUnlessClosed(gate, () => {
  parentPort!.postMessage('writing');
  // held until the process has begun to shut the gate, however late it reads 'writing' on a loaded machine
  while (Atomics.load(shutting, 0) === 0) Atomics.wait(shutting, 0, 0, 10);
  const until = Date.now() + holdMs;
  while (Date.now() < until) {
    /* a slow write */
  }
  endedAt = Date.now();
});
const second = writeUnlessClosed(gate, () => {});
parentPort!.postMessage({ first, second, endedAt });
