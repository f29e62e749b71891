/**
 * A decoding thread's journal writes against its process closing the journal before it exits on a signal
 * (partial-decode.ts newJournalGate): a write under way is let finish, none after, so the close is the last word.
 */
import test from 'ava';
import { Worker } from 'node:worker_threads';
import { newJournalGate, shutJournalGate, writeUnlessClosed } from '../src/data/partial-decode.js';

test('writes go through until the gate is shut, none after', (t) => {
  const gate = newJournalGate();
  const wrote: number[] = [];
  t.true(writeUnlessClosed(gate, () => wrote.push(1)));
  t.true(writeUnlessClosed(gate, () => wrote.push(2)));
  shutJournalGate(gate);
  t.false(writeUnlessClosed(gate, () => wrote.push(3)));
  t.deepEqual(wrote, [1, 2]);
  // no gate (a decoding run in this thread, as the tests do): every write goes through
  t.true(writeUnlessClosed(undefined, () => wrote.push(4)));
  t.deepEqual(wrote, [1, 2, 4]);
});

test('a write under way in another thread is waited for before the gate shuts', async (t) => {
  const gate = newJournalGate();
  // another thread takes the gate as writeUnlessClosed does and holds it 300 ms, as a slow journal write would
  const w = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
     const g = workerData;
     Atomics.compareExchange(g, 0, 0, 1);
     parentPort.postMessage('writing');
     const until = Date.now() + 300; while (Date.now() < until) {}
     Atomics.store(g, 0, 0); Atomics.notify(g, 0);`,
    { eval: true, workerData: gate },
  );
  await new Promise<void>((resolve) => w.once('message', () => resolve()));
  const started = performance.now();
  shutJournalGate(gate);
  const waited = performance.now() - started;
  t.true(waited >= 150, `waited ${waited.toFixed(0)} ms for the write under way`);
  t.is(Atomics.load(gate, 0), 2, 'shut');
  t.false(writeUnlessClosed(gate, () => t.fail('a write after the gate shut')));
  await w.terminate();
});
