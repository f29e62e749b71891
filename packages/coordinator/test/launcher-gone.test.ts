import test from 'ava';
import { stopWhenReleased } from '../src/cli/worker-command.js';

/** A worker whose hold ends after `heldPolls` questions (never with Infinity), recording what it says and why it stops. */
function fakeWorker(heldPolls: number) {
  let asked = 0;
  const said: string[] = [];
  let stopped: (why: string) => void = () => {};
  const stoppedWith = new Promise<string>((resolve) => (stopped = resolve));
  const worker = { heldBy: () => (asked++ < heldPolls ? 'this worker belongs to run R (4 steps done; a step of it is running)' : null) };
  return { worker, said, stoppedWith, stop: (why: string) => stopped(why), asked: () => asked };
}

test('a worker no run holds stops at once when its launcher is gone', async (t) => {
  const w = fakeWorker(0);
  stopWhenReleased(w.worker, (l) => w.said.push(l), w.stop, 60_000, 5);
  t.is(await w.stoppedWith, 'stdin closed');
  t.deepEqual(w.said, []);
});

test('a worker its run holds serves until the run lets it go, and says so', async (t) => {
  const w = fakeWorker(4);
  stopWhenReleased(w.worker, (l) => w.said.push(l), w.stop, 60_000, 5);
  t.is(await w.stoppedWith, 'stdin closed, the run let this worker go');
  t.is(w.asked(), 5);
  t.is(w.said.length, 1);
  t.regex(w.said[0]!, /^stdin closed without a word from launch \(the launcher is gone\): serving until the run lets this worker go \(its coordinator ends the run after the step in progress, with a checkpoint\), 60 s at most \(this worker belongs to run R/);
});

test('a run that never lets its worker go: the worker stops at the bound', async (t) => {
  const w = fakeWorker(Infinity);
  const started = performance.now();
  stopWhenReleased(w.worker, (l) => w.said.push(l), w.stop, 100, 5);
  t.is(await w.stoppedWith, 'stdin closed, the run still held it after 0 s');
  t.true(performance.now() - started >= 100);
});
