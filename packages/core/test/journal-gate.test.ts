/**
 * A decoding thread's journal writes against its process closing the journal before it exits on a signal
 * (partial-decode.ts newJournalGate): a write under way is let finish, none after, so the close is the last word.
 */
import test from 'ava';
import { startWorker } from '../src/data/threads.js';
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

/** writeUnlessClosed in a decoding thread's stead (journal-gate-writer.ts): a write of `holdMs`, then another; the process shuts the gate during the first. */
async function writerShutDuring(holdMs: number, timeoutMs: number): Promise<{ shutAt: number; gate: Int32Array; result: { first: boolean; second: boolean; endedAt: number } }> {
  const gate = newJournalGate();
  const shutting = new Int32Array(new SharedArrayBuffer(4));
  const w = startWorker(new URL('./journal-gate-writer.ts', import.meta.url), { gate, holdMs, shutting });
  const messages: unknown[] = [];
  let wake: () => void = () => {};
  w.on('message', (m) => {
    messages.push(m);
    wake();
  });
  const next = () => new Promise<unknown>((resolve) => {
    if (messages.length > 0) return resolve(messages.shift());
    wake = () => resolve(messages.shift());
  });
  {
    const m = await next();
    if (m !== 'writing') throw new Error(`unexpected ${String(m)}`);
  }
  Atomics.store(shutting, 0, 1);
  Atomics.notify(shutting, 0);
  shutJournalGate(gate, timeoutMs);
  const shutAt = Date.now();
  const result = (await next()) as { first: boolean; second: boolean; endedAt: number };
  await w.terminate();
  return { shutAt, gate, result };
}

test('a write under way in the decoding thread is waited for before the gate shuts, and none goes through after', async (t) => {
  const { shutAt, gate, result } = await writerShutDuring(300, 5000);
  t.true(shutAt >= result.endedAt, `shut at ${shutAt}, after the write under way ended at ${result.endedAt}`);
  t.like(result, { first: true, second: false });
  t.is(Atomics.load(gate, 0), 2, 'shut');
});

test('a write slower than the wait: the gate is shut anyway, and stays shut when that write ends', async (t) => {
  const { shutAt, gate, result } = await writerShutDuring(1500, 100);
  t.true(shutAt < result.endedAt, `gave up at ${shutAt}, before the slow write ended at ${result.endedAt}`);
  t.like(result, { first: true, second: false }, 'the slow write went through; the one after it did not');
  t.is(Atomics.load(gate, 0), 2, 'still shut');
});
