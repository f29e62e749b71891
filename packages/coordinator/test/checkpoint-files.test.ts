// Which checkpoint files a run keeps (checkpoint-files.ts): those by steps and epochs rotate `keep` deep, one written
// for the time alone is replaced by the next checkpoint of any kind, also after the run was resumed from it.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { listCheckpoints, stepOfFile } from '@alexnet-mp/core';
import { CheckpointFiles } from '../src/checkpoint-files.js';

const steps = (dir: string) => listCheckpoints(dir).map((f) => stepOfFile(f));
const bytes = Buffer.from('not a real checkpoint: the rotation reads only the names');

test('a checkpoint by time is replaced by the next one and does not count against keep', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckfiles-'));
  const c = new CheckpointFiles({ dir, keep: 2 });
  c.write(2, bytes, false);
  c.write(4, bytes, false);
  c.write(5, bytes, true);
  t.deepEqual(steps(dir), [2, 4, 5]);
  c.write(6, bytes, true);
  t.deepEqual(steps(dir), [2, 4, 6], 'the one by time before it is gone, the two by steps stay');
  c.write(8, bytes, false);
  t.deepEqual(steps(dir), [4, 8]);
  fs.rmSync(dir, { recursive: true });
});

test('a run resumed from a checkpoint by time replaces it with its next checkpoint', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckfiles-'));
  const first = new CheckpointFiles({ dir, keep: 2 });
  first.write(4, bytes, false);
  first.write(8, bytes, false);
  const byTime = first.write(9, bytes, true);
  // the coordinator stops here; the resumed one continues from step 9's file, which says it was by time
  const resumed = new CheckpointFiles({ dir, keep: 2 });
  resumed.continueFrom(byTime, true);
  resumed.write(10, bytes, false);
  t.deepEqual(steps(dir), [8, 10], "step 9's is replaced, and step 8's by steps is kept");
  // resumed from an ordinary checkpoint, nothing is removed but by the rotation
  const again = new CheckpointFiles({ dir, keep: 2 });
  again.continueFrom(path.join(dir, 'step-000000010.safetensors'), false);
  again.write(12, bytes, false);
  t.deepEqual(steps(dir), [10, 12]);
  fs.rmSync(dir, { recursive: true });
});

test('minutes between checkpoints count from the last write or the restart of the clock', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckfiles-'));
  const c = new CheckpointFiles({ dir, keep: 2 });
  await new Promise((r) => setTimeout(r, 30));
  t.true(c.sinceMs() >= 25);
  c.restartClock();
  t.true(c.sinceMs() < 25);
  await new Promise((r) => setTimeout(r, 30));
  c.write(1, bytes, false);
  t.true(c.sinceMs() < 25);
  fs.rmSync(dir, { recursive: true });
});
