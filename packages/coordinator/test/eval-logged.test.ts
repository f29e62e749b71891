/**
 * evaluationLoggedAfter (run-files.ts): whether a run's metrics.jsonl has the evaluation that followed a
 * checkpoint, read back from the log's end, across the chunks it reads (1 MiB each).
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { evaluationLoggedAfter } from '../src/run-files.js';

const ck = (step: number) => `/runs/a/checkpoints/step-${String(step).padStart(9, '0')}.safetensors`;
const line = (o: object) => JSON.stringify(o);
const checkpoint = (step: number) => line({ event: 'checkpoint', step, file: ck(step), time: 't' });
const evaluation = (step: number) => line({ event: 'eval', step, loss: 1, top1_error: 0.5, images: 100 });
const steps = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => line({ event: 'step', step: from + i, loss: 1, padding: 'x'.repeat(200) }));

function runWith(t: import('ava').ExecutionContext, lines: string[] | null): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alexnet-evallog-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  if (lines) fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
  return dir;
}

test('the evaluation after a checkpoint is found in the log; one not logged (killed during it), a log without the checkpoint, or no log is not', (t) => {
  t.deepEqual(evaluationLoggedAfter(runWith(t, [...steps(0, 5), checkpoint(5), evaluation(5), ...steps(5, 8)]), ck(5), 5), { top1Error: 0.5 });
  // the evaluation never logged
  t.is(evaluationLoggedAfter(runWith(t, [...steps(0, 5), checkpoint(5)]), ck(5), 5), null);
  // an evaluation of the step with no checkpoint line of that file before it (another run's log, say)
  t.is(evaluationLoggedAfter(runWith(t, [...steps(0, 5), evaluation(5)]), ck(5), 5), null);
  t.is(evaluationLoggedAfter(runWith(t, null), ck(5), 5), null);
  // another step's evaluation does not count
  t.is(evaluationLoggedAfter(runWith(t, [checkpoint(5), ...steps(5, 7), evaluation(7)]), ck(5), 5), null);
  // the file is matched by name: a run folder moved since still finds it
  t.truthy(evaluationLoggedAfter(runWith(t, [checkpoint(5), evaluation(5)]), '/elsewhere/checkpoints/step-000000005.safetensors', 5));
});

test('a checkpoint written again at the same step (a run gone back to an earlier one) needs an evaluation after its own line', (t) => {
  const again = [checkpoint(5), evaluation(5), ...steps(5, 9), checkpoint(5)];
  t.is(evaluationLoggedAfter(runWith(t, again), ck(5), 5), null);
  t.truthy(evaluationLoggedAfter(runWith(t, [...again, evaluation(5)]), ck(5), 5));
});

test('a log of several MiB is read back across chunks, lines cut by a chunk edge included, a torn last line skipped', (t) => {
  // about 5 MiB of step lines after the checkpoint and its evaluation: both lie four chunks back
  const long = [checkpoint(5), evaluation(5), ...steps(5, 22_000)];
  const dir = runWith(t, long);
  t.true(fs.statSync(path.join(dir, 'metrics.jsonl')).size > 4 << 20);
  t.truthy(evaluationLoggedAfter(dir, ck(5), 5));
  // every line is found whatever the chunk edges: the checkpoint line at each offset from a chunk's start
  for (const pad of [0, 1, 100, 217, 1000]) {
    const d = runWith(t, [line({ event: 'note', pad: 'y'.repeat(pad) }), checkpoint(5), evaluation(5), ...steps(5, 4_700)]);
    t.truthy(evaluationLoggedAfter(d, ck(5), 5), `pad ${pad}`);
  }
  // a chunk's edge (1 MiB from the end) inside the checkpoint line, and inside the evaluation line
  const filler = (bytes: number) => line({ event: 'note', pad: 'z'.repeat(bytes - 1 - line({ event: 'note', pad: '' }).length) });
  const evalBytes = evaluation(5).length + 1;
  for (const [what, k] of [['checkpoint', 10], ['evaluation', -20]] as const) {
    const d = runWith(t, [line({ event: 'note' }), checkpoint(5), evaluation(5), filler((1 << 20) - evalBytes - k)]);
    t.truthy(evaluationLoggedAfter(d, ck(5), 5), `a chunk's edge inside the ${what} line`);
  }
  const torn = runWith(t, [checkpoint(5)]);
  fs.appendFileSync(path.join(torn, 'metrics.jsonl'), '{"event":"eval","step":5,"lo');
  t.is(evaluationLoggedAfter(torn, ck(5), 5), null);
});
